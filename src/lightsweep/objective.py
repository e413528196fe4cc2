"""The one number a run hands to a sweeper: a chosen metric, with its direction."""

from __future__ import annotations

import math
from collections.abc import Mapping

from lightsweep.errors import ConfigError


def check_objective(objective: Mapping[str, str]) -> None:
    """Refuse objectives that would leak test data into a search."""
    metric = objective["metric"]
    if metric.startswith("test/"):
        raise ConfigError(
            f"objective.metric={metric!r} reads test data: a sweep must optimise a validation metric "
            "(e.g. val/acc or val/loss); test metrics are reported beside it in run.json."
        )


def objective_value(metrics: Mapping[str, float], objective: Mapping[str, str]) -> float:
    """The objective metric's value; NaN when training diverged (a sweeper records it as failed)."""
    metric = objective["metric"]
    if metric not in metrics:
        available = ", ".join(sorted(k for k in metrics if not k.startswith("test/")))
        raise ConfigError(f"objective.metric={metric!r} was not produced by this run. Available: {available}.")
    value = float(metrics[metric])
    return value if math.isfinite(value) else math.nan
