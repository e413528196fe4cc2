"""The stock submitit launchers with two additions:

- a job that ends without handing back a result (scancel, killed, out of time or memory, crashed before its
  trial started) becomes a FAILED JobReturn carrying the reason, so the sweeper records that trial as failed
  and goes on (or stops within max_failure_rate) instead of the whole sweep dying on the exception;
- `lightsweep_submitit_slurm` first checks that a SLURM scheduler answers (and that `sacct` works, without
  which a cancelled job is waited for forever); if not, it runs the jobs locally with a warning, or stops with
  one clear line when `fallback_local=false`.

Hydra imports this module while scanning plugins on every start: submitit is imported only when used.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher
from omegaconf import DictConfig, OmegaConf

from lightsweep.errors import ConfigError

from . import config as config  # registers hydra/launcher=lightsweep_submitit_local|lightsweep_submitit_slurm

log = logging.getLogger(__name__)

_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\w*: ")  # "pkg.SomeError: message"


class JobLostError(RuntimeError):
    """A job ended without handing back a result."""


class _LostJobsAsFailures:
    """Mixin for a stock submitit launcher: lost jobs become FAILED returns instead of an exception."""

    _EXECUTOR: str

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from submitit.core.core import Job
        from submitit.core.utils import UncompletedJobError

        stock_results = Job.results
        executor = self._EXECUTOR

        def results(job: Job) -> list[Any]:
            try:
                return stock_results(job)
            except UncompletedJobError as exc:  # FailedJobError too: the job crashed outside its trial
                return [_failed_return(job, exc, executor)]

        # The stock launch() collects every job with job.results(), which raises for a lost job and so would
        # end the sweep: answer for such a job with a FAILED JobReturn while this launch runs.
        Job.results = results
        try:
            return super().launch(job_overrides, initial_job_idx)  # type: ignore[misc]
        finally:
            Job.results = stock_results


def _failed_return(job: Any, exc: Exception, executor: str) -> JobReturn:
    from submitit.core.utils import FailedJobError

    # The stock launcher submits (overrides, job_dir_key, job_num, job_id, singleton_state) per job.
    overrides = list(job.submission().args[0])
    if isinstance(exc, FailedJobError):  # its message is the job's traceback: keep the exception's line
        raised = [line for line in str(exc).splitlines() if _EXCEPTION_LINE.match(line)]
        what = f"crashed before its trial could report ({raised[-1] if raised else 'no exception line'})"
    else:
        what = f"ended without a result (state {job.state}: cancelled, killed, or out of time or memory)"
    error = JobLostError(f"{executor} job {job.job_id} {what}; its log: {job.paths.stderr}")
    error.__cause__ = exc
    return JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=error)


class LightsweepLocalLauncher(_LostJobsAsFailures, LocalLauncher):
    """submitit_local: each job a local process, `n_jobs` of them at once."""


class LightsweepSlurmLauncher(_LostJobsAsFailures, SlurmLauncher):
    """submitit_slurm, or the local launcher with the same resources when no scheduler answers."""

    def __init__(self, fallback_local: bool = True, **params: Any) -> None:
        super().__init__(**params)
        self.fallback_local = fallback_local
        self.local: LightsweepLocalLauncher | None = None  # set when the jobs run locally instead

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        from ._scheduler import partitions, scheduler_problem

        problem = scheduler_problem()
        if problem is None:
            _check_partition(self.params.get("partition"), partitions())
            return
        if not self.fallback_local:
            raise ConfigError(
                f"executor=slurm cannot reach a scheduler: {problem}. Reach a SLURM cluster (tools/slurm/"
                "start-slurm.sh starts a local one) or set hydra.launcher.fallback_local=true to run locally."
            )
        log.warning(f"executor=slurm: {problem}; running the jobs locally instead (hydra.launcher.fallback_local=true)")
        shared = set(OmegaConf.structured(BaseQueueConf).keys())  # resources both executors understand
        self.local = LightsweepLocalLauncher(**{k: v for k, v in self.params.items() if k in shared})
        self.local.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        if self.local is not None:
            return self.local.launch(job_overrides, initial_job_idx)
        return super().launch(job_overrides, initial_job_idx)


def _check_partition(partition: str | None, known: list[str]) -> None:
    if partition and partition not in known:
        raise ConfigError(
            f"SLURM partition {partition!r} does not exist on this cluster; partitions: {', '.join(known) or 'none'}. "
            "Set hydra.launcher.partition=<one of them> (or the SLURM_PARTITION environment variable)."
        )
