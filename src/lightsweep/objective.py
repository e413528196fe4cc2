"""The number(s) a run hands to a sweeper: named objectives read from what the run measured.

An objective is a validation metric, a cost the run measured (time, memory, speed) or a health score.
mode=simple hands it over as is; mode=health blends it with the overall health score,
(1 - w) * objective + w * overall_health, for objectives that are scores on [0, 1]. A list of names is a
multi-objective sweep. Test-data objectives can be reported by single runs but never drive a sweep.
Imports nothing heavy: the `objective_direction` resolver uses this module while configs are composed."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lightsweep.errors import ConfigError

HEALTH_CALLBACK = "lightsweep.callbacks.health.HealthMonitor"
EFFICIENCY_CALLBACK = "lightsweep.callbacks.efficiency.EfficiencyProfiler"
MODES = ("simple", "health")


@dataclass(frozen=True)
class Objective:
    read: Callable[[Mapping[str, Any]], float]  # measurements {metrics, timings, health, efficiency} -> value
    direction: str = "maximize"
    score: bool = True  # a [0, 1] score, higher is better: health mode can blend it
    needs: str | None = None  # the callback whose run.json record it reads: health | efficiency
    health_only: bool = False  # a health score: only in mode=health
    test_data: bool = False  # read from the test set: reported by single runs, refused in sweeps
    monitor: str | None = None  # the metric logged every epoch that tracks it: what a pruner watches


def _metric(name: str) -> Callable[[Mapping[str, Any]], float]:
    return lambda m: m["metrics"][name]


def _health_component(name: str) -> Callable[[Mapping[str, Any]], float]:
    return lambda m: m["health"]["components"][name]


def _parameter_efficiency(m: Mapping[str, Any]) -> float:
    from lightsweep.health.scores import parameter_efficiency

    return parameter_efficiency(m["metrics"]["val/acc"], m["efficiency"]["parameters"])


def _peak_memory_mb(m: Mapping[str, Any]) -> float:
    efficiency = m["efficiency"]
    cuda = efficiency.get("peak_cuda_memory_mb")
    return cuda if cuda is not None else efficiency["peak_cpu_rss_mb"]


OBJECTIVES: dict[str, Objective] = {
    "val_accuracy": Objective(_metric("val/acc"), monitor="val/acc"),
    "accuracy": Objective(_metric("val/acc"), monitor="val/acc"),  # the seed's name for val_accuracy
    "test_accuracy": Objective(_metric("test/acc"), test_data=True),
    "f1_macro": Objective(_metric("test/f1_macro"), test_data=True),
    "training_time": Objective(lambda m: m["timings"]["train_s"], "minimize", score=False),  # seconds of fit
    "parameter_efficiency": Objective(_parameter_efficiency, needs="efficiency"),  # val acc, scaled down >100k params
    "memory_efficiency": Objective(_peak_memory_mb, "minimize", score=False, needs="efficiency"),  # peak MiB in fit
    "inference_speed": Objective(  # samples/s of a no-grad forward pass on the probe batch
        lambda m: m["efficiency"]["inference_samples_per_second"], score=False, needs="efficiency"
    ),
    "overall_health": Objective(lambda m: m["health"]["overall"], needs="health", health_only=True),
    **{
        name: Objective(_health_component(name), needs="health", health_only=True)
        for name in ("neuron_utilization", "training_stability", "gradient_health")
    },
}


def names_of(name: str | Sequence[str]) -> list[str]:
    """objective.name as a list of known names (a ConfigError names the valid ones)."""
    names = [name] if isinstance(name, str) else list(name)
    unknown = [n for n in names if n not in OBJECTIVES]
    if not names or unknown or len(set(names)) != len(names):
        raise ConfigError(
            f"objective.name={name!r} is not valid: give one of {', '.join(OBJECTIVES)}, "
            "or a list of distinct ones for a multi-objective sweep."
        )
    return names


def direction(name: str | Sequence[str]) -> str | list[str]:
    """maximize|minimize for one name, a list of them for a list (the objective_direction resolver)."""
    directions = [OBJECTIVES[n].direction for n in names_of(name)]
    return directions[0] if isinstance(name, str) else directions


def metric_direction(metric: str) -> str | None:
    """maximize|minimize for a logged metric whose name says it (<split>/acc, <split>/f1*, <split>/loss)."""
    last = metric.rsplit("/", 1)[-1]
    if last == "acc" or last.startswith("f1"):
        return "maximize"
    return "minimize" if last == "loss" else None


def monitor_of(name: str | Sequence[str], monitor: str | None) -> str | None:
    """hydra.sweeper.monitor, or when null the per-epoch metric of the (single) objective `name`."""
    return monitor or OBJECTIVES[names_of(name)[0]].monitor


def pruning_monitor(name: str, monitor: str | None, monitor_direction: str | None, study_direction: str) -> str:
    """monitor_of(name, monitor), refused unless it improves in the study's direction: a pruner compares
    it as if it were the objective, so a maximised metric in a minimising study would stop the best trials."""
    if monitor_direction not in (None, "maximize", "minimize"):
        raise ConfigError(
            f"hydra.sweeper.monitor_direction={monitor_direction!r} is not valid: use maximize, "
            "minimize, or null for a metric whose name says it (*/acc, */f1*, */loss)."
        )
    monitor = monitor_of(name, monitor)
    if monitor is None:
        raise ConfigError(
            f"objective.name={name} ({study_direction}) has no per-epoch metric for the pruner to watch: use "
            f"hydra/sweeper/pruner=none, or set hydra.sweeper.monitor to a logged metric that is {study_direction}d "
            "like the study (with hydra.sweeper.monitor_direction if its name does not say)."
        )
    known = metric_direction(monitor)
    if known and monitor_direction and known != monitor_direction:
        raise ConfigError(
            f"hydra.sweeper.monitor_direction={monitor_direction} contradicts {monitor}, which is "
            f"{known}d: remove the monitor_direction override."
        )
    watched = monitor_direction or known
    if watched is None:
        raise ConfigError(
            f"hydra.sweeper.monitor={monitor}: its direction is unknown (known: */acc and */f1* "
            "maximize, */loss minimize): set hydra.sweeper.monitor_direction=maximize or minimize."
        )
    if watched != study_direction:
        raise ConfigError(
            f"hydra.sweeper.monitor={monitor} is {watched}d but the study {study_direction}s objective.name="
            f"{name}, so its pruner would stop the trials that do best: set hydra.sweeper.monitor to a metric "
            f"that is {study_direction}d, or use hydra/sweeper/pruner=none."
        )
    return monitor


def check_objective(cfg: Mapping[str, Any], in_sweep: bool) -> None:
    """Refuse objectives this run cannot compute honestly: before anything is trained."""
    objective = cfg["objective"]
    unknown = sorted(set(objective) - {"name", "mode", "health_weight", "direction"})
    if unknown:
        raise ConfigError(
            f"objective.{unknown[0]} is not a setting: use objective.name, objective.mode, objective.health_weight."
        )
    names = names_of(objective["name"])
    mode = objective.get("mode")
    if mode not in MODES:
        raise ConfigError(f"objective.mode={mode!r} is not valid: use simple or health.")
    weight = objective.get("health_weight")
    if isinstance(weight, bool) or not (isinstance(weight, (int, float)) and 0.0 <= weight <= 1.0):
        raise ConfigError(f"objective.health_weight={weight!r} must be a number in [0, 1] (default 0.3).")
    if objective.get("direction") != direction(objective["name"]):
        raise ConfigError(
            f"objective.direction={objective.get('direction')!r} contradicts objective.name: it is derived "
            f"({direction(objective['name'])!r}); remove the objective.direction override."
        )
    for name in names:
        spec = OBJECTIVES[name]
        if spec.health_only and mode != "health":
            raise ConfigError(f"objective.name={name} is a health score: use it with objective.mode=health.")
        if spec.test_data and in_sweep:
            raise ConfigError(
                f"objective.name={name} reads test data and a sweep must never optimise on it: "
                "use val_accuracy (or another validation objective); test metrics are still in run.json."
            )
        if mode == "health" and not spec.score and len(names) == 1:
            raise ConfigError(
                f"objective.mode=health blends a [0, 1] score with overall health; {name} is a measured "
                f"quantity ({spec.direction}). Use objective.mode=simple, or a list such as "
                f"objective.name=[val_accuracy,{name}]."
            )
    needed = {OBJECTIVES[n].needs for n in names} | ({"health"} if mode == "health" else set())
    targets = {node.get("_target_") for node in (cfg.get("callbacks") or {}).values() if node}
    for need, target in (("health", HEALTH_CALLBACK), ("efficiency", EFFICIENCY_CALLBACK)):
        if need in needed and target not in targets:
            raise ConfigError(
                f"objective {objective['name']} (mode={mode}) needs the {need} callback: "
                f"use callbacks=default or add it, e.g. callbacks=[model_checkpoint,{need}]."
            )


def objective_value(objective: Mapping[str, Any], measured: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(value or list of values, run.json record of how it was made). NaN when a value is not finite
    (a diverged run: the sweeper records the trial as failed)."""
    names = names_of(objective["name"])
    raw = {name: _read(name, measured) for name in names}
    record: dict[str, Any] = {
        "name": objective["name"],
        "mode": objective["mode"],
        "direction": direction(objective["name"]),
        "components": dict(raw),
    }
    values = raw
    if objective["mode"] == "health":
        weight, overall = float(objective["health_weight"]), _measured("overall_health", measured["health"]["overall"])
        record.update(health_weight=weight, formula="(1 - health_weight) * objective + health_weight * overall_health")
        record["components"]["overall_health"] = overall
        values = {n: (1 - weight) * v + weight * overall if OBJECTIVES[n].score else v for n, v in raw.items()}
    result = [values[n] for n in names]
    return (result[0] if isinstance(objective["name"], str) else result), record


def _read(name: str, measured: Mapping[str, Any]) -> float:
    try:
        return _measured(name, OBJECTIVES[name].read(measured))
    except KeyError as missing:
        available = ", ".join(sorted(k for k in measured["metrics"] if not k.startswith("test/")))
        raise ConfigError(
            f"objective {name} needs {missing}, which this run did not produce (validation metrics it did "
            f"produce: {available or 'none'}). Pick another objective.name."
        ) from None


def _measured(name: str, value: Any) -> float:
    """A health component that could not be measured (too few epochs, no accuracy during fit) is None:
    an objective made of it is refused, never replaced by a made-up score."""
    if value is None:
        raise ConfigError(
            f"objective {name} was not measured in this run (the health callback needs more epochs or an "
            "accuracy history for it; run.json health.unmeasured lists what was not). Train longer or pick "
            "another objective.name."
        )
    return _finite(value)


def _finite(value: Any) -> float:
    value = float(value)
    return value if math.isfinite(value) else math.nan
