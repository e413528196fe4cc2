"""Config of the lightsweep sweeper (`hydra/sweeper=lightsweep`): the stock Optuna sweeper's settings plus
a trial pruner, the per-epoch metric it watches, and one search space per model family."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf
from omegaconf import MISSING


@dataclass
class PrunerConfig:
    _target_: str = MISSING


@dataclass
class NopPrunerConfig(PrunerConfig):
    """No pruning: every trial trains its full budget."""

    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConfig(PrunerConfig):
    """Stop a trial whose metric is worse than the median of earlier trials at the same epoch."""

    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5  # trials that always finish before pruning starts
    n_warmup_steps: int = 0  # epochs of each trial that are never pruned
    interval_steps: int = 1  # check every n epochs
    n_min_trials: int = 1  # trials reported at an epoch before it can be compared


@dataclass
class PercentilePrunerConfig(MedianPrunerConfig):
    """Stop a trial below the given percentile of earlier trials (25.0: keep the best 75%)."""

    _target_: str = "optuna.pruners.PercentilePruner"
    percentile: float = 25.0


@dataclass
class SuccessiveHalvingPrunerConfig(PrunerConfig):
    """Asynchronous successive halving: keep the best 1/reduction_factor at each rung."""

    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    min_resource: Any = "auto"  # epochs before the first rung (auto: from the first finished trial)
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0
    bootstrap_count: int = 0


@dataclass
class HyperbandPrunerConfig(PrunerConfig):
    """Hyperband: several successive-halving brackets with different first rungs."""

    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    max_resource: Any = "auto"  # the epoch budget (auto: from the first finished trial)
    reduction_factor: int = 3
    bootstrap_count: int = 0


@dataclass
class LightsweepSweeperConf(OptunaSweeperConf):
    _target_: str = "hydra_plugins.lightsweep_sweeper.sweeper.LightsweepSweeper"
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}])
    pruner: PrunerConfig = MISSING
    # Metric reported to the pruner after every validation epoch; null: the objective's own (val_accuracy:
    # val/acc). It must improve in the study's direction, or the sweep is refused before any trial.
    monitor: str | None = None
    # maximize|minimize for a monitor whose name does not say it (*/acc, */f1* maximize; */loss minimize).
    monitor_direction: str | None = None
    # Search space of each model family (family -> {key: sweep expression}); the sweeper uses the one of
    # the run's family, then `params` and command-line sweeps on top.
    spaces: dict[str, Any] = field(default_factory=dict)
    # Write report.md, plots and best/ into the sweep dir when the sweep ends.
    report: bool = True
    # Many drivers on one study (lightsweep.sweep.drivers): each stamps its running trials every
    # heartbeat_interval seconds; a trial without a stamp for grace_period seconds (or whose driver's
    # process on this host is gone) is FAIL "worker lost" and, retry_failed times, re-queued as it was.
    heartbeat_interval: float = 10.0
    grace_period: float = 60.0
    retry_failed: int = 0


_PRUNERS = {
    "none": NopPrunerConfig,
    "median": MedianPrunerConfig,
    "percentile": PercentilePrunerConfig,
    "successive_halving": SuccessiveHalvingPrunerConfig,
    "hyperband": HyperbandPrunerConfig,
}

_store = ConfigStore.instance()
_store.store(group="hydra/sweeper", name="lightsweep", node=LightsweepSweeperConf, provider="lightsweep")
for _name, _node in _PRUNERS.items():
    _store.store(group="hydra/sweeper/pruner", name=_name, node=_node, provider="lightsweep")
