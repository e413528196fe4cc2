"""The efficiency techniques: conf/technique/<name>.yaml read into `Technique`s, where each applies, and the
command-line overrides that switch one (or several) on over a baseline.

A technique file holds: description (one line); overrides (Hydra overrides, `{teacher}` filled with the
baseline run's checkpoint); callbacks (callback files added to the baseline's callbacks list); scale
({dotted key: factor} on the baseline's composed value, or {family: {...}}); devices (default cpu and cuda);
requires (named checks, REQUIREMENTS); not_applicable ({family or family@device: reason}); kind (training | inference);
full_only (only with --full or by name); combine (false: never part of the greedy combination)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lightsweep.errors import ConfigError
from lightsweep.paths import CONF_DIR

TECHNIQUE_DIR = CONF_DIR / "technique"
KINDS = ("training", "inference")
DEVICES = ("cpu", "cuda")
FIELDS = {"description", "overrides", "callbacks", "scale", "devices", "requires", "not_applicable", "kind"}
FIELDS |= {"full_only", "combine"}


def _cxx_compiler(baseline: Baseline) -> str | None:
    """torch.compile's CPU backend (inductor) builds C++ kernels: the same check as speed.compile's."""
    from lightsweep.speed import missing_cpp_compiler

    if baseline.device != "cpu" or (compiler := missing_cpp_compiler()) is None:
        return None
    return f"torch.compile on CPU needs a C++ compiler ({compiler}) and none is installed (apt-get install g++)"


def _baseline_checkpoint(baseline: Baseline) -> str | None:
    """Distillation's teacher is the baseline run's last checkpoint."""
    if "model_checkpoint" in baseline.callbacks:
        return None
    return "the baseline writes no checkpoint to learn from (add model_checkpoint to its callbacks)"


# name -> the reason it fails for a baseline, or None
REQUIREMENTS: dict[str, Callable[[Baseline], str | None]] = {
    "cxx_compiler": _cxx_compiler,
    "baseline_checkpoint": _baseline_checkpoint,
}


@dataclass(frozen=True)
class Technique:
    name: str
    description: str
    overrides: tuple[str, ...] = ()
    callbacks: tuple[str, ...] = ()
    scale: Mapping[str, Any] = field(default_factory=dict)
    devices: tuple[str, ...] = DEVICES
    requires: tuple[str, ...] = ()
    not_applicable: Mapping[str, str] = field(default_factory=dict)
    kind: str = "training"
    full_only: bool = False
    combine: bool = True

    def scale_for(self, family: str) -> dict[str, float]:
        """{dotted key: factor}: the family's own entry when the file has one per family."""
        if any(isinstance(v, Mapping) for v in self.scale.values()):
            return dict(self.scale.get(family, {}))
        return dict(self.scale)


@dataclass(frozen=True)
class Baseline:
    """What the techniques are judged against: the composed baseline run."""

    family: str  # timehut | cnn | lstm
    device: str  # cpu | cuda
    callbacks: tuple[str, ...]  # the callbacks in the baseline's config, by name
    values: Mapping[str, Any]  # dotted key -> composed value, for the keys techniques scale


def available() -> list[str]:
    return sorted(path.stem for path in TECHNIQUE_DIR.glob("*.yaml"))


def load(name: str) -> Technique:
    import yaml

    path = TECHNIQUE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"unknown technique {name!r}: valid techniques are {', '.join(available())} (conf/technique/)."
        )
    data = yaml.safe_load(path.read_text()) or {}
    problems = [f"unknown field {key!r}" for key in data if key not in FIELDS]
    if not isinstance(data.get("description"), str):
        problems.append("description (one line) is missing")
    if data.get("kind", "training") not in KINDS:
        problems.append(f"kind={data.get('kind')!r} is not one of {', '.join(KINDS)}")
    if not set(data.get("devices", DEVICES)) <= set(DEVICES):
        problems.append(f"devices={data.get('devices')} must be a subset of {list(DEVICES)}")
    problems += [
        f"requires {r!r}, which is not a known check" for r in data.get("requires", ()) if r not in REQUIREMENTS
    ]
    if problems:
        raise ConfigError(f"conf/technique/{name}.yaml: {'; '.join(problems)}.")
    lists = {key: tuple(data.get(key, ())) for key in ("overrides", "callbacks", "devices", "requires") if key in data}
    return Technique(name=name, **{**data, **lists})


def select(names: list[str] | None, full: bool) -> list[Technique]:
    """The techniques named (all given ones, whatever full_only says), or every technique (full) or every
    one that is not full_only."""
    if names:
        return [load(name) for name in names]
    return [t for t in map(load, available()) if full or not t.full_only]


def not_applicable(technique: Technique, baseline: Baseline) -> str | None:
    """Why `technique` cannot apply to `baseline` here, or None when it can."""
    reasons = technique.not_applicable
    if reason := reasons.get(f"{baseline.family}@{baseline.device}") or reasons.get(baseline.family):
        return reason
    if baseline.device not in technique.devices:
        return (
            f"needs {' or '.join(d.upper() for d in technique.devices)}; this run trains on {baseline.device.upper()}"
        )
    for requirement in technique.requires:
        if reason := REQUIREMENTS[requirement](baseline):
            return reason
    if present := [c for c in technique.callbacks if c in baseline.callbacks]:
        return f"already in the baseline (callbacks.{present[0]})"
    for key in technique.scale_for(baseline.family):
        if not isinstance(baseline.values.get(key), int):
            return f"{key} is not set to a number in the baseline, so it cannot be scaled"
    return None


def overrides_for(techniques: list[Technique], baseline: Baseline, teacher: str | None = None) -> list[str]:
    """The Hydra overrides that turn `techniques` on over the baseline's command line."""
    overrides: list[str] = []
    scaled: dict[str, float] = {}
    for technique in techniques:
        overrides += [o.replace("{teacher}", teacher or "") for o in technique.overrides]
        for key, factor in technique.scale_for(baseline.family).items():
            scaled[key] = scaled.get(key, 1.0) * factor
    for key, factor in scaled.items():
        overrides.append(f"{key}={max(1, math.floor(baseline.values[key] * factor + 0.5))}")
    added = [c for t in techniques for c in t.callbacks]
    if added:
        overrides.append(f"callbacks=[{','.join([*baseline.callbacks, *added])}]")
    return overrides


def conflicts(techniques: list[Technique], baseline: Baseline) -> bool:
    """Whether two of `techniques` set the same key (e.g. two precisions): they cannot be combined."""
    keys: list[str] = []
    for technique in techniques:
        keys += [o.lstrip("+").partition("=")[0] for o in technique.overrides]
        keys += list(technique.scale_for(baseline.family))
    return len(keys) != len(set(keys))
