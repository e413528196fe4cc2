"""A finished job's outcome told to its trial: COMPLETE with its value(s), PRUNED, or FAIL with the reason (a
failed job, a NaN or a non-number); a trial another driver recorded meanwhile keeps that record."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import optuna
from hydra.core.utils import JobReturn, JobStatus
from optuna.trial import TrialState

from lightsweep.sweep.study import PRUNED

log = logging.getLogger(__name__)


def tell(study: optuna.Study, trial: optuna.Trial, ret: JobReturn | None, n_objectives: int) -> str | None:
    """Record one job's outcome; return the reason when the trial failed."""
    if study._storage.get_trial(trial._trial_id).state.is_finished():  # e.g. another driver thought us lost
        log.warning(f"Trial {trial.number} was recorded by another driver meanwhile: this result is not kept")
        return None
    if ret is not None and ret.hydra_cfg is not None:
        trial.set_user_attr("run_dir", str(Path(ret.hydra_cfg.hydra.runtime.output_dir)))
    state, values, error = _outcome(ret, n_objectives)
    if error:
        trial.set_user_attr("error", error[:500])
        log.warning(f"Trial {trial.number} failed: {error}")
    study.tell(trial, state=state, values=values)
    if state is not TrialState.FAIL:
        log.info(f"Trial {trial.number}: {state.name} {values if values else ''}".rstrip())
    return error


def _outcome(ret: JobReturn | None, n_objectives: int) -> tuple[TrialState, list[float] | None, str | None]:
    if ret is None:
        return TrialState.FAIL, None, "the launcher returned no result for this job"
    if ret.status is JobStatus.FAILED:  # _return_value holds the job's exception (return_value re-raises it)
        exc = ret._return_value
        return TrialState.FAIL, None, f"{type(exc).__name__}: {exc}" if exc is not None else "the job failed"
    value = ret.return_value
    if isinstance(value, str) and value == PRUNED:
        return TrialState.PRUNED, None, None
    raw = [value] if n_objectives == 1 else value
    try:
        values = [float(v) for v in raw]
    except (TypeError, ValueError):
        return TrialState.FAIL, None, f"the job returned {value!r}, not {n_objectives} number(s)"
    if len(values) != n_objectives or not all(math.isfinite(v) for v in values):
        return TrialState.FAIL, None, f"the objective is {value!r}: expected {n_objectives} finite number(s)"
    return TrialState.COMPLETE, values, None
