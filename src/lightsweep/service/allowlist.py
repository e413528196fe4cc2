"""The overrides allowlist of `POST /optimize`: which config keys a request may set and what each accepts,
taken from the composed config of its dataset and model (the family's search space plus the typed scalar
knobs of model., dataset. and trainer.); keys naming files, folders, URLs, sources or classes never."""

from __future__ import annotations

import difflib
import functools
import math
import re
import threading
import typing
from dataclasses import dataclass
from typing import Any, Literal

from lightsweep.paths import CONF_DIR

MAX_NUMBER = 1e6  # no knob needs more (steps, units, filters); a bigger one builds a model no machine holds
RUN_DIR_PLACEHOLDER = "<run dir>"  # paths.output_dir while composing: Hydra sets it per trial
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_WORD = re.compile(r"[A-Za-z0-9_.\-]+")  # every enumerated value; nothing of the override grammar
# Keys a typed field owns -> the field; objective.* as a prefix.
_OWNED = {"trainer.max_epochs": "max_epochs", "seed": "seed", "dataset": "dataset", "model": "model"}
_OWNED |= {"executor": "executor", "sweep": "kind and mode", "objective": "objective, mode and health_weight"}
COMPOSE_LOCK = threading.Lock()  # Hydra's compose uses a process-wide singleton


@dataclass(frozen=True)
class Allowed:
    """What one overrides key accepts: values of `type` (an int also for a float key), from `choices` when
    it has any (always for strings), and no negative number when the config's value is non-negative."""

    type: type
    choices: tuple[Any, ...] = ()
    non_negative: bool = False

    def problem(self, value: Any) -> str | None:
        if type(value) is not self.type and not (self.type is float and type(value) is int):
            expected = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[self.type]
            return f"has the wrong type: expected {expected}."
        if self.choices and value not in self.choices:
            return f"is not one of {', '.join(map(str, self.choices))}."
        if self.non_negative and value < 0:
            return "must not be negative (the config's value is not)."
        return None


def syntax_problem(key: str, value: Any) -> str | None:
    """Refusals that need no config: key grammar, keys never settable or owned by a field, unsafe values."""
    if not _KEY.fullmatch(key):
        return (
            f"overrides key {key!r} is not a plain config key: only letters, digits, _ and . are allowed "
            "(no +, ~, @, =, / or spaces: Hydra's add, delete and package syntax is not available here)."
        )
    owner = _OWNED.get(key) or (_OWNED["objective"] if key.startswith("objective.") else None)
    if owner:
        return f"overrides.{key} is set by the request's {owner} field: use that instead of overrides."
    if reason := _never_settable(key):
        return f"overrides.{key} {reason}: it is never settable through the service."
    if isinstance(value, str) and not _WORD.fullmatch(value):
        return (
            f"overrides.{key}={value[:40]!r} contains characters of Hydra's override grammar, quotes, commas, "
            "interpolations (${...}) or whitespace: values are single words such as relu or 16-mixed."
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            return f"overrides.{key}={value} is out of range: numbers must be finite and within ±{MAX_NUMBER:.0e}."
    return None


def _never_settable(key: str) -> str | None:
    parts = key.split(".")
    if parts[0] in ("hydra", "paths"):
        return f"belongs to {parts[0]}.* (where the service runs and writes)"
    if "_target_" in key:
        return "names a class (_target_)"
    leaf_words = ("path", "url", "root", "file")
    if any(p.endswith("_dir") or p == "source" or any(w in p for w in leaf_words) for p in parts):
        return "names a file, folder, URL or data source"
    if parts[0] == "dataset" and parts[-1].endswith("name"):
        return "names the data source"
    return None


def allowlist_problem(key: str, value: Any, allowed: dict[str, Allowed]) -> str | None:
    if key not in allowed:
        near = difflib.get_close_matches(key, list(allowed), n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(near)}?" if near else ""
        return (
            f"overrides.{key} is not a settable key for this dataset and model.{hint} Settable: {', '.join(allowed)}."
        )
    problem = allowed[key].problem(value)
    return f"overrides.{key}={value!r} {problem}" if problem else None


@functools.lru_cache(maxsize=64)
def allowlist(dataset: str, model: str) -> dict[str, Allowed]:
    """The search space of the family the request runs, then the config's own scalar knobs (their types and
    Literal choices win over the space's), minus keys never settable or owned by a field."""
    from omegaconf import OmegaConf

    from lightsweep.config import auto_family_overrides, compose, normalize_overrides
    from lightsweep.models.registry import resolve_model_config

    with COMPOSE_LOCK:  # model=auto: the family the dataset picks, as the CLI does when model keys are set
        overrides, _ = auto_family_overrides(normalize_overrides([f"dataset={dataset}", f"model={model}"]), force=True)
        cfg = compose(overrides, output_dir=RUN_DIR_PLACEHOLDER)
    family, _ = resolve_model_config(OmegaConf.to_container(cfg.model), "")
    spaces = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "hydra" / "sweeper" / "spaces" / "default.yaml"))
    allowed = {key: a for key, expression in (spaces.get(family) or {}).items() if (a := _from_expression(expression))}
    for part in ("model", "dataset", "trainer"):
        _add_leaves(OmegaConf.to_container(cfg[part]), part, allowed)
    return {key: a for key, a in sorted(allowed.items()) if syntax_problem(key, 0) is None}  # owned, never settable


def _from_expression(expression: Any) -> Allowed | None:
    """A search-space entry: choice(...) of scalars, (int(...)) interval(...), or a fixed scalar."""
    if not isinstance(expression, str):
        return _from_value(expression, None)
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep

    swept = parser().parse_override(f"key={expression}").value()
    if isinstance(swept, IntervalSweep):
        kind = int if isinstance(swept.start, int) and isinstance(swept.end, int) else float
        return Allowed(kind, non_negative=swept.start >= 0)
    if not isinstance(swept, ChoiceSweep):
        return _from_value(swept, None)
    values = swept.list
    for kind in (bool, int, str):
        if all(type(v) is kind for v in values):
            return Allowed(kind, tuple(values) if kind is str else (), kind is int and min(values) >= 0)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return Allowed(float, non_negative=min(values) >= 0)
    return None  # choices of lists: not a scalar knob


def _add_leaves(node: dict[str, Any], where: str, allowed: dict[str, Allowed]) -> None:
    """Every scalar leaf under a config node, typed by its value, or by the constructor's hint when null."""
    from hydra.utils import get_object

    from lightsweep.validate import _parameters

    hints = _parameters(get_object(node["_target_"]))[0] if "_target_" in node else {}
    for key, value in node.items():
        if isinstance(value, dict):
            _add_leaves(value, f"{where}.{key}", allowed)
        elif found := _from_value(value, hints.get(key)):
            allowed[f"{where}.{key}"] = found


def _from_value(value: Any, hint: Any) -> Allowed | None:
    choices = _literal_members(hint)
    if isinstance(value, bool):
        return Allowed(bool)
    if isinstance(value, int):
        return Allowed(int, tuple(c for c in choices if type(c) is int), value >= 0)
    if isinstance(value, float):
        return Allowed(float, non_negative=value >= 0)
    if isinstance(value, str):
        words = tuple(c for c in choices if isinstance(c, str))
        return Allowed(str, words) if value in words else None  # a free string may name anything
    members = {a for a in (typing.get_args(hint) or (hint,)) if a is not type(None)}  # null: the hint's type
    if value is None and members and members <= {int, float, bool} and (bool not in members or len(members) == 1):
        return Allowed(float if float in members else members.pop())
    return None


def _literal_members(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    return tuple(m for arg in typing.get_args(hint) for m in _literal_members(arg))


@functools.cache
def parser() -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()
