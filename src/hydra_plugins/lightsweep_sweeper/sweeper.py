"""`hydra/sweeper=lightsweep`: the stock OptunaSweeper with lightsweep's search loop (see _impl.py).

Hydra imports this module while scanning plugins on every start, so it imports nothing heavy."""

from __future__ import annotations

from typing import Any

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper
from omegaconf import DictConfig

from . import config as config  # registers hydra/sweeper=lightsweep and hydra/sweeper/pruner=...


class LightsweepSweeper(OptunaSweeper):
    def __init__(
        self,
        sampler: Any,
        direction: Any,
        storage: Any | None,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        custom_search_space: str | None,
        params: DictConfig | None,
        pruner: DictConfig,
        monitor: str | None,
        monitor_direction: str | None,
        spaces: DictConfig,
        report: bool,
        heartbeat_interval: float,
        grace_period: float,
        retry_failed: int,
    ) -> None:
        stock_args = (direction, storage, study_name, n_trials, n_jobs, max_failure_rate, custom_search_space, params)
        super().__init__(sampler, *stock_args)  # instantiates the sampler
        from lightsweep.sweep.drivers import Liveness

        from ._impl import LightsweepSweeperImpl

        self.sweeper = LightsweepSweeperImpl(
            self.sweeper.sampler,
            *stock_args,
            sampler_spec=sampler,
            pruner=pruner,
            monitor=monitor,
            monitor_direction=monitor_direction,
            spaces=spaces,
            report=report,
            liveness=Liveness(heartbeat_interval, grace_period, retry_failed),
        )
