"""Dataset files from their official source, and arrays decoded once then cached.

`fetch` downloads a missing file over HTTP(S) into the data dir, checks its SHA-256 and renames it into
place only when complete, so an interrupted or corrupt download never looks like a dataset.
`cached_arrays` keeps decoded arrays as an uncompressed .npz in the cache dir (paths.cache_dir: beside the
files unless set), so only the first run pays for decoding (gzip, pickles, images, text); the cache is
rebuilt when its source files change. A cache dir that cannot be written (a read-only shared data dir)
falls back to the user's cache, $XDG_CACHE_HOME/lightsweep/ (~/.cache/lightsweep/).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import numpy as np

from lightsweep.errors import ConfigError
from lightsweep.runinfo import write_atomically

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TIMEOUT_S = 60  # per socket operation, not for the whole file
OFFLINE_ENV = "LIGHTSWEEP_OFFLINE"  # =1: never try the network, fail at once with the message


def fetch(url: str, dest: Path, sha256: str | None, what: str) -> Path:
    """`dest` if present; otherwise download `url` to it (checked against `sha256` when given).

    Offline or unreachable: ConfigError naming the expected path, the official URL and what to do."""
    dest = Path(dest)
    if dest.is_file():
        return dest
    by_hand = (
        f"Download {url} into {dest.parent.resolve()}/ (or point paths.data_dir at a folder that holds "
        f"{dest.parent.name}/{dest.name})."
    )
    if os.environ.get(OFFLINE_ENV) == "1":
        raise ConfigError(f"{what}: {dest.resolve()} is missing and {OFFLINE_ENV}=1 forbids downloading. {by_hand}")

    def download(handle: IO[bytes]) -> None:
        digest = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            while block := response.read(CHUNK):
                handle.write(block)
                digest.update(block)
        if sha256 and digest.hexdigest() != sha256.lower():
            raise ConfigError(
                f"{what}: the file downloaded from {url} has SHA-256 {digest.hexdigest()}, expected {sha256}; "
                f"it was discarded (a corrupt transfer or a changed source). {by_hand}"
            )

    log.info("downloading %s from %s", what, url)
    created = _missing_folders(dest.parent)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(dest, download)
    except (urllib.error.URLError, OSError) as exc:  # HTTPError and timeouts are both of these
        _remove_empty(created)
        raise ConfigError(
            f"{what}: {dest.resolve()} is missing and downloading it failed ({_reason(exc)}). {by_hand}"
        ) from exc
    except BaseException:
        _remove_empty(created)
        raise
    return dest


def _remove_empty(folders: list[Path]) -> None:
    """A failed download leaves no empty folders behind (innermost first; one holding anything stays)."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _missing_folders(folder: Path) -> list[Path]:
    """The folders that mkdir(parents=True) would create for `folder`, innermost first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    reason = getattr(exc, "reason", None) or exc
    return " ".join(str(reason).split())


def _source_key(sources: Sequence[Path]) -> str:
    """Names, sizes and modification times of the source files: any change means a stale cache."""
    stats = []
    for path in sorted(Path(p) for p in sources):
        info = path.stat()
        stats.append([path.name, info.st_size, info.st_mtime_ns])
    return json.dumps(stats)


def cached_arrays(
    cache_file: Path, build: Callable[[], dict[str, np.ndarray]], sources: Sequence[Path] = ()
) -> dict[str, np.ndarray]:
    """The arrays `build()` returns, saved to `cache_file` (.npz) on first use and loaded from it later.

    `sources` are the files `build` reads: the cache is rebuilt when any of them changes. Put the
    settings that change the arrays (image size, vocabulary size...) in the cache file's name.
    Where `cache_file` cannot be written the cache goes to the user's cache instead; where neither can,
    there is no cache (a warning, not an error)."""
    places = (Path(cache_file), user_cache_file(Path(cache_file)))
    key = _source_key(sources)
    for place in places:
        if (arrays := _read_cache(place, key)) is not None:
            return arrays
    log.info("reading %s into arrays, once: later runs load %s", _what(sources), places[0].name)
    arrays = build()
    for place in places:
        try:
            place.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(place, lambda handle: np.savez(handle, _sources=np.array(key), **arrays))
            return arrays
        except OSError as exc:
            log.warning("could not write the cache %s (%s)", place, exc)
    log.warning("no cache written: decoding again next time")
    return arrays


def _what(sources: Sequence[Path]) -> str:
    names = [Path(s).name for s in sources[:2]]
    return ", ".join(names) + (f" and {len(sources) - 2} more" if len(sources) > 2 else "") or "the dataset files"


def user_cache_file(cache_file: Path) -> Path:
    """Where `cache_file` goes when its own folder cannot be written: the same absolute path under the
    user's cache, so caches of different data dirs never collide."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lightsweep"
    absolute = cache_file.resolve()
    return root / absolute.relative_to(absolute.anchor)


def _read_cache(cache_file: Path, key: str) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when the file is absent, stale (other sources) or unreadable."""
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as stored:
            if str(stored["_sources"]) == key:
                return {name: stored[name] for name in stored.files if name != "_sources"}
    except (OSError, ValueError, KeyError) as exc:  # truncated or foreign file: rebuild it
        log.warning("ignoring unreadable cache %s (%s)", cache_file, exc)
    return None
