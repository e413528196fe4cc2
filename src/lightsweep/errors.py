"""User-facing errors: bad configs and inputs become one clear line and exit code 2."""

from __future__ import annotations

import os
import re
import sys
import traceback
from pathlib import Path

from lightsweep.paths import CONF_DIR


class ConfigError(ValueError):
    """A config or input the user can fix. The message says what is wrong and what is valid."""


def group_choices(group: str) -> list[str]:
    """The choices of a config group, from the files in conf/<group>/."""
    folder = CONF_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def describe_user_error(exc: BaseException) -> str | None:
    """One line for an error caused by the config or overrides; None when it is a bug (show the traceback)."""
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

    if isinstance(exc, ConfigError):
        return str(exc)
    if isinstance(exc, (HydraException, OmegaConfBaseException)):
        if ours := _config_error_cause(exc):
            return str(ours)  # raised inside one of our resolvers: our message, not Hydra's/OmegaConf's wrapping
        if _bug_underneath(exc):
            return None
    if unknown := _unknown_key(exc):
        return unknown
    if isinstance(exc, MissingConfigException):
        found = re.search(r"Could not find '([^']+)'", str(exc))
        missing = found.group(1) if found else (exc.missing_cfg_file or "?")
        group, _, choice = missing.strip("/").rpartition("/")
        if group:
            valid = ", ".join(group_choices(group)) or "(none)"
            return f"unknown {group} '{choice}'. Valid {group} choices: {valid}. Pick one with {group}=<choice>."
        return first_line(exc)
    if isinstance(exc, OverrideParseException):
        return f"cannot parse override '{exc.override}': {first_line(exc.message.splitlines()[-2:][0])}"
    if isinstance(exc, HydraException):
        cause = f" ({first_line(exc.__cause__)})" if exc.__cause__ else ""
        return " ".join(str(exc).split("\n")[:2]).strip() + cause
    if isinstance(exc, MissingMandatoryValue) and getattr(exc, "full_key", None):
        return f"{exc.full_key} has no value (??? in the config): set it, e.g. {exc.full_key}=<value>."
    if isinstance(exc, OmegaConfBaseException):
        return first_line(exc)
    return None


def _unknown_key(exc: BaseException) -> str | None:
    """Hydra refuses `trainer.max_epoch=3` with "To append to your config use +trainer.max_epoch=3", which
    only leads to the validator's refusal: a typo is the usual cause, so name the nearest key first."""
    import difflib

    from hydra.errors import ConfigCompositionException
    from omegaconf import DictConfig
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    cause = exc.__cause__
    if not (
        isinstance(exc, ConfigCompositionException)
        and isinstance(cause, (ConfigAttributeError, ConfigKeyError))
        and isinstance(cause.parent_node, DictConfig)
        and cause.full_key
    ):
        return None
    overridden = re.search(r"Could not override '([^']+)'", str(exc))
    key = overridden.group(1) if overridden else cause.full_key
    if cause.parent_node.get("family") == "auto":  # left so only by a sweep over datasets (config.py picks it)
        families = "|".join(choice for choice in group_choices("model") if choice != "auto")
        return (
            f"{key}: model=auto picks the family of each dataset, so a model setting needs one: add model=<{families}>."
        )
    parent, _, name = cause.full_key.rpartition(".")
    keys = [k for k in cause.parent_node if not (k.startswith("_") and k.endswith("_"))]
    near = difflib.get_close_matches(name, keys, n=1, cutoff=0.6)
    prefix = f"{parent}." if parent else ""
    known = f"Did you mean {prefix}{near[0]}?" if near else f"Keys of {parent or 'the config'}: {', '.join(keys)}."
    if "_target_" in cause.parent_node:  # a constructor's settings: +key adds one the config leaves out
        known += f" (add it with +{key}=... only for a key the constructor takes)"
    return f"{cause.full_key} is not a key of the config. {known}"


def _config_error_cause(exc: BaseException) -> ConfigError | None:
    while (exc := exc.__cause__ or exc.__context__) is not None:  # OmegaConf chains by context, not cause
        if isinstance(exc, ConfigError):
            return exc
    return None


def _bug_underneath(exc: BaseException) -> bool:
    """Hydra and OmegaConf wrap what the code they call raises (a resolver, the module of a `_target_`): an
    exception raised there is a bug in that code, unless it is a ValueError (a value refused on purpose;
    ConfigError is one). What Hydra, OmegaConf or Python's import system raise themselves is about the config
    (a missing key, a module that does not exist)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    while (exc := exc.__cause__ or exc.__context__) is not None:
        if not isinstance(exc, (HydraException, OmegaConfBaseException, ValueError)) and not _raised_by_library(exc):
            return True
    return False


def _raised_by_library(exc: BaseException) -> bool:
    import hydra
    import omegaconf

    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return True
    libraries = tuple(str(Path(module.__file__).parent) + os.sep for module in (hydra, omegaconf))
    return frames[-1].filename.startswith((*libraries, "<frozen importlib"))


def first_line(obj: object) -> str:
    """The first line of an exception's (or any object's) message; its type name when the message is empty."""
    text = str(obj).strip()
    return text.splitlines()[0] if text else type(obj).__name__


def debug_enabled() -> bool:
    return os.environ.get("LIGHTSWEEP_DEBUG") == "1"


def exit_on_user_error(exc: BaseException) -> None:
    """Print a user error as one line and exit 2; return (so the caller re-raises) for bugs or in debug."""
    message = describe_user_error(exc)
    if message is None or debug_enabled():
        return
    print(f"lightsweep: error: {message}", file=sys.stderr)
    sys.exit(2)
