"""What the lightsweep sweeper refuses (or turns off) before any trial runs: settings that would make every
trial fail, a pruner that cannot watch the objective, a study stored by another command."""

from __future__ import annotations

import functools
import logging
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf

from lightsweep.errors import ConfigError
from lightsweep.sweep.drivers import Liveness
from lightsweep.sweep.study import storage_warning

log = logging.getLogger(__name__)

NO_PRUNER = {"_target_": "optuna.pruners.NopPruner"}


def check_sweep(config: DictConfig, sampler: Any, n_jobs: int, liveness: Liveness, storage_url: str | None) -> None:
    """Refuse the objective, sampler and liveness settings no trial could run with; warn about SQLite on a
    cluster."""
    from lightsweep.objective import check_objective

    callbacks = {k: {"_target_": v.get("_target_")} for k, v in (config.get("callbacks") or {}).items() if v}
    objective = OmegaConf.to_container(config.objective, resolve=True)
    check_objective({"objective": objective, "callbacks": callbacks}, in_sweep=True)
    if isinstance(sampler, functools.partial):  # the stock grid sampler, built from the space later
        raise ConfigError(
            "hydra/sweeper/sampler=grid is not supported by the lightsweep sweeper: use tpe, "
            "random, cmaes or nsgaii (or hydra/sweeper=optuna for a grid)."
        )
    on_cluster = "slurm" in str(config.hydra.launcher.get("_target_", "")).lower()
    if warning := storage_warning(storage_url, parallel_nodes=on_cluster and n_jobs > 1):
        log.warning(warning)
    if not 0 < liveness.heartbeat_interval < liveness.grace_period or liveness.retry_failed < 0:
        raise ConfigError(
            f"hydra.sweeper: heartbeat_interval={liveness.heartbeat_interval:g}, grace_period="
            f"{liveness.grace_period:g}, retry_failed={liveness.retry_failed}: the interval must be positive and "
            "below the grace period (a few missed beats, e.g. 10 and 60 s), and retry_failed 0 or more."
        )


def checked_pruning(
    config: DictConfig,
    pruner_spec: dict[str, Any],
    monitor: str | None,
    monitor_direction: str | None,
    directions: list[str],
    storage_url: str | None,
) -> tuple[dict[str, Any], str | None]:
    """(pruner spec, monitored metric) the sweep runs with. A pruner the user chose that cannot work is
    refused; the default one of +sweep=simple|health is turned off instead (e.g. objective.name=training_time
    has no per-epoch metric), with a line in the log, so that the default never refuses a valid sweep."""
    from lightsweep.objective import names_of, pruning_monitor

    if pruner_spec["_target_"].endswith("NopPruner"):
        return pruner_spec, monitor
    try:
        if len(directions) > 1:
            raise ConfigError(
                "Optuna cannot prune multi-objective studies: use hydra/sweeper/pruner=none with a list "
                "objective (e.g. +sweep=efficiency), or a single objective.name to prune."
            )
        objective = OmegaConf.to_container(config.objective, resolve=True)
        monitor = pruning_monitor(names_of(objective["name"])[0], monitor, monitor_direction, directions[0])
        if not storage_url:
            raise ConfigError(
                "pruning needs a study storage the jobs can reach, but hydra.sweeper.storage=null keeps it "
                "in memory: set a file or URL (e.g. sqlite:///multirun/optuna.db) or hydra/sweeper/pruner=none."
            )
    except ConfigError as exc:
        if _pruner_chosen(config):
            raise
        log.info(f"Pruning off for this sweep (the default pruner cannot work here): {exc}")
        return NO_PRUNER, None
    return pruner_spec, monitor


def _pruner_chosen(config: DictConfig) -> bool:
    """Whether the command line picked or set the pruner (rather than +sweep=simple|health's default)."""
    overrides = [*config.hydra.overrides.hydra, *config.hydra.overrides.task]
    return any(o.lstrip("+~").startswith(("hydra/sweeper/pruner", "hydra.sweeper.pruner")) for o in overrides)


def check_resumable(study: optuna.Study, directions: list[str], command: list[str]) -> None:
    """A stored study is resumed only by the command that started it (n_trials and hydra.* may differ)."""
    stored_directions = [d.name.lower() for d in study.directions]
    stored_command = study.user_attrs.get("command")
    if stored_directions != directions or (stored_command is not None and stored_command != command):
        raise ConfigError(
            f"study {study.study_name!r} already exists in the storage with other settings "
            f"({' '.join(stored_command or [])}; directions {stored_directions}). Rerun that command to "
            "resume it, or start a new study with hydra.sweeper.study_name=<new name>."
        )
