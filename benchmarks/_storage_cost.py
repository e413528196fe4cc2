"""The storage operations one trial of a lightsweep sweep makes, timed one by one in this process with the
sweeper's and the job's own functions (benchmarks/sweep_scale.py, part 2)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from lightsweep.paths import CONF_DIR

REPORTS = 4  # intermediate values per trial: one per epoch of a 4-epoch trial
OPS = ("check", "ask", "claim", "heartbeat", "attach", f"{REPORTS} reports", "tell")
NOP_PRUNER = {"_target_": "optuna.pruners.NopPruner"}  # as stored by a sweep with hydra/sweeper/pruner=none


def cnn_space() -> tuple[dict[str, Any], dict[str, Any]]:
    """The CNN family's search space as the sweeper builds it: (distributions, fixed values)."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

    spaces = yaml.safe_load((CONF_DIR / "hydra" / "sweeper" / "spaces" / "default.yaml").read_text())
    space, fixed, _ = create_params_from_overrides([f"{key}={value}" for key, value in spaces["cnn"].items()])
    return space, fixed


def _timed(times: dict[str, list[float]], op: str, action: Callable[..., Any], *args: Any) -> Any:
    start = time.perf_counter()
    result = action(*args)
    times[op].append(time.perf_counter() - start)
    return result


def storage_cost(url: str, n_trials: int, folder: Path) -> tuple[float, dict[str, float]]:
    """(median ms per trial, {operation: median ms}) over n_trials trials of a fresh study in `url`."""
    import optuna
    from hydra.core.utils import JobReturn, JobStatus
    from omegaconf import OmegaConf

    from hydra_plugins.lightsweep_sweeper._outcome import tell
    from hydra_plugins.lightsweep_sweeper.config import LightsweepSweeperConf
    from lightsweep.sweep.drivers import HEARTBEAT, Liveness, claim, fail_lost_trials, slots
    from lightsweep.sweep.study import close_storage, load_trial, open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    defaults = LightsweepSweeperConf()
    liveness = Liveness(defaults.heartbeat_interval, defaults.grace_period, defaults.retry_failed)
    space, fixed = cnn_space()
    storage = open_storage(url)
    # A random sampler: ask measures the storage, not TPE's model of the earlier trials.
    study = optuna.create_study(
        study_name="storage-cost", storage=storage, sampler=optuna.samplers.RandomSampler(seed=0)
    )
    study.set_user_attr("pruner", NOP_PRUNER)  # the job's load_trial rebuilds the pruner from it
    times: dict[str, list[float]] = {op: [] for op in OPS}

    def check() -> None:  # what the driver does before it asks (_next_trials)
        fail_lost_trials(study, liveness)
        slots(study)

    def ask() -> optuna.Trial:  # the sweeper's study.ask and its _configure_trials
        trial = study.ask()
        for name, distribution in space.items():
            trial._suggest(name, distribution)
        for name, value in fixed.items():
            trial.set_user_attr(name, value)
        return trial

    def job(number: int) -> None:  # the job's pruning callback: reattach, then report every epoch
        attached = _timed(times, "attach", load_trial, url, study.study_name, number)
        start = time.perf_counter()
        for epoch in range(REPORTS):
            attached.report(0.5 + epoch / 100, step=epoch)
            attached.should_prune()
        times[f"{REPORTS} reports"].append(time.perf_counter() - start)
        close_storage(attached.study._storage)

    try:
        for number in range(n_trials):
            _timed(times, "check", check)
            trial = _timed(times, "ask", ask)
            if not _timed(times, "claim", claim, study, trial, n_trials):
                raise RuntimeError(f"{url}: trial {trial.number} of a lone driver was dropped as surplus")
            _timed(times, "heartbeat", study._storage.set_trial_user_attr, trial._trial_id, HEARTBEAT, time.time())
            job(trial.number)
            ret = JobReturn(
                hydra_cfg=OmegaConf.create({"hydra": {"runtime": {"output_dir": str(folder / str(number))}}}),
                status=JobStatus.COMPLETED,
                _return_value=0.9,
            )
            if error := _timed(times, "tell", tell, study, trial, ret, 1):
                raise RuntimeError(f"{url}: trial {trial.number} was not told COMPLETE: {error}")
    finally:
        close_storage(storage)
    totals = [sum(per_op) for per_op in zip(*times.values())]
    return 1000 * statistics.median(totals), {op: 1000 * statistics.median(t) for op, t in times.items()}
