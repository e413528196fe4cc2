"""Config values that become parts of file paths or URLs, checked before any path is built: a setting
such as dataset.name=../../etc must not reach outside the data dir (or the archive site)."""

from __future__ import annotations

import re
from typing import Any

from lightsweep.errors import ConfigError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# tensorflow-datasets' "name[/config][:version]", e.g. imdb_reviews/plain_text:1.0.0
_TFDS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?(:[0-9][0-9.*]*)?")


def check_name(value: Any, setting: str, what: str, examples: str) -> str:
    """`value` if it is a plain name: letters, digits, '_' and '-', starting with a letter or digit."""
    if isinstance(value, str) and _NAME.fullmatch(value):
        return value
    raise ConfigError(
        f"{setting}={value!r} is not {what}: use letters, digits, '_' and '-' only, starting with a letter "
        f"or digit (e.g. {examples})."
    )


def check_file_names(files: dict[str, Any], setting: str) -> dict[str, Any]:
    """`files` if every key is a bare file name (no folder, not hidden), as the official file lists are."""
    for name in files:
        if not (isinstance(name, str) and _FILE_NAME.fullmatch(name)):
            raise ConfigError(
                f"{setting} has {name!r}: each entry must be a bare file name in the data dir (letters, digits, "
                "'.', '_' and '-'; no folders), e.g. train-images-idx3-ubyte.gz."
            )
    return files


def check_tfds_name(value: Any) -> str:
    if isinstance(value, str) and _TFDS_NAME.fullmatch(value):
        return value
    raise ConfigError(
        f"dataset.tfds_name={value!r} is not a tensorflow-datasets name: use name[/config][:version] made of "
        "letters, digits and '_' (e.g. mnist, imdb_reviews/plain_text:1.0.0)."
    )
