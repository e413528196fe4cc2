"""The search loop of `hydra/sweeper=lightsweep`, on top of the stock OptunaSweeperImpl (whose search-space
parsing and trial configuration it reuses). What it adds:

- pruning: each job gets `+optuna_trial=<number>`, reattaches to its trial through the storage and reports
  the monitored metric every epoch; a job that returns the pruned marker is told PRUNED;
- failures: a failed job, a NaN or a non-number is told FAIL and the sweep goes on until the failed
  trials exceed max_failure_rate x n_trials;
- resume: the study is loaded by name, trials left RUNNING by an interrupted sweep are told FAIL and
  marked interrupted (not done: they do not count towards n_trials), only the trials missing to n_trials
  are run, and the sampler continues the search instead of replaying its seeded sequence; job dirs are
  numbered by trial, so numbers never repeat;
- a report (report.md, plots, best/) when the sweep ends.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from lightsweep.errors import ConfigError
from lightsweep.sweep.study import (
    INTERRUPTED,
    PRUNED,
    STOP_REQUEST,
    TRIAL_KEY,
    absolute_storage,
    open_storage,
    read_study_json,
    write_study_json,
)

from ._ctrl_c import CtrlCWatch

log = logging.getLogger(__name__)


class LightsweepSweeperImpl(OptunaSweeperImpl):
    def __init__(
        self,
        *stock_args: Any,
        sampler_spec: DictConfig,
        pruner: DictConfig,
        monitor: str | None,
        monitor_direction: str | None,
        spaces: DictConfig,
        report: bool,
    ) -> None:
        super().__init__(*stock_args)
        self.sampler_spec = sampler_spec
        self.pruner_spec = OmegaConf.to_container(pruner, resolve=True)
        self.monitor = monitor
        self.monitor_direction = monitor_direction
        self.spaces = OmegaConf.to_container(spaces, resolve=True) if spaces else {}
        self.report = report
        self.ctrl_c = CtrlCWatch()

    def sweep(self, arguments: list[str]) -> None:
        directions = self._get_directions()
        storage_url = absolute_storage(self.storage, os.getcwd())
        self._check(directions, storage_url)
        space, fixed_params, fixed_overrides = create_params_from_overrides(self._search_space(arguments))
        for name in fixed_params:  # a fixed value on the command line replaces the searched one
            space.pop(name, None)
        study = optuna.create_study(
            study_name=self.study_name,
            storage=open_storage(storage_url) if storage_url else None,
            sampler=self.sampler,
            pruner=instantiate(self.pruner_spec, _execution_whitelist_=["optuna.pruners.*"]),
            directions=directions,
            load_if_exists=True,
        )
        command = list(self.config.hydra.overrides.task)
        _check_resumable(study, directions, command)
        study.sampler = self._continued_sampler(len(study.trials))
        study.set_user_attr("pruner", self.pruner_spec)
        study.set_user_attr("monitor", self.monitor)
        study.set_user_attr("command", command)
        _fail_running_trials(study, "interrupted: left running by an earlier sweep")
        write_study_json(
            self.sweep_dir,
            {
                "study_name": study.study_name,
                "storage": storage_url,
                "directions": directions,
                "objective": OmegaConf.to_container(self.config.objective, resolve=True),
                "n_trials": self.n_trials,
            },
        )
        log.info(
            f"Study {study.study_name} in {storage_url or 'memory'}: {_counted(study)} of "
            f"{self.n_trials} trials done; sampler {type(self.sampler).__name__}, "
            f"pruner {self.pruner_spec['_target_'].rsplit('.', 1)[-1]}, directions {directions}"
        )
        with self.ctrl_c:
            try:
                self._run_trials(study, space, fixed_params, fixed_overrides, len(directions))
            except BaseException as exc:
                self._stopped(study, exc, storage_url)
                raise
        if self._write_report(storage_url):
            self._announce_best()

    def _stopped(self, study: optuna.Study, exc: BaseException, storage_url: str | None) -> None:
        """A sweep stopped by `exc`: on Ctrl-C, however it surfaced (inside fit Lightning turns it into
        SystemExit(1)), the running trials are marked interrupted and it exits 130; on an error, the report
        of what ran so far is written beside it (not on Ctrl-C: `lightsweep report DIR` writes one then)."""
        interrupted = self.ctrl_c.seen or isinstance(exc, KeyboardInterrupt)
        if interrupted or not isinstance(exc, Exception):
            _fail_running_trials(study, "interrupted: the sweep was stopped during this trial")
        if interrupted:
            log.warning(
                "Sweep interrupted: rerun the same command to resume it (the stopped trial is not "
                "counted towards n_trials)."
            )
            raise SystemExit(130) from exc  # the shell's code for a command stopped by SIGINT
        if isinstance(exc, Exception):
            self._write_report(storage_url)

    def _announce_best(self) -> None:
        """The sweep's last lines: the best value and the command that reruns that trial (from the report)."""
        best = (read_study_json(self.sweep_dir).get("best") or [None])[0]
        if best:
            values = best["values"]
            shown = (
                f"{next(iter(values.values())):.4f}"
                if len(values) == 1
                else ", ".join(f"{name} {value:.4f}" for name, value in values.items())
            )
            log.info(f"Best value {shown} (trial {best['number']}); run it again with:")
            log.info(best["command"] or "(its run dir is missing)")

    def _write_report(self, storage_url: str | None) -> Path | None:
        """The study report's path; None when none is written. A failure here is logged, never hides the
        sweep's own outcome."""
        if not (self.report and storage_url):
            return None
        from lightsweep.sweep.report import write_report

        try:
            path = write_report(self.sweep_dir)
        except Exception as exc:
            log.warning(
                f"Report not written ({type(exc).__name__}: {exc}); retry with `lightsweep report {self.sweep_dir}`"
            )
            return None
        log.info(f"Report: {path}")
        return path

    def _run_trials(
        self, study: optuna.Study, space: dict, fixed_params: dict, fixed_overrides: list[str], n_objectives: int
    ) -> None:
        failures: list[str] = []
        remaining = self.n_trials - _counted(study)
        while remaining > 0:
            self.ctrl_c.check()
            trials = [study.ask() for _ in range(min(remaining, self.n_jobs))]
            returns = self._launch(study, trials, space, fixed_params, fixed_overrides)
            self.ctrl_c.check()  # a job that failed from a Ctrl-C did not fail on its own: leave it RUNNING
            for trial, ret in zip(trials, returns):
                error = _tell(study, trial, ret, n_objectives)
                if error:
                    failures.append(f"trial {trial.number}: {error}")
            remaining -= len(trials)
            if len(failures) > self.max_failure_rate * self.n_trials:
                raise ConfigError(
                    f"{len(failures)} trials failed, more than max_failure_rate={self.max_failure_rate} x "
                    f"n_trials={self.n_trials} allows; first: {failures[0].rstrip('.')}. Fix the cause (see the "
                    "trial's run.json), or raise hydra.sweeper.max_failure_rate; rerun the same command to resume."
                )
        self.ctrl_c.check()

    def _launch(
        self,
        study: optuna.Study,
        trials: list[optuna.Trial],
        space: dict,
        fixed_params: dict,
        fixed_overrides: list[str],
    ) -> list[JobReturn | None]:
        """Run one batch of trials: one result (or None, a job the launcher lost) per trial."""
        try:
            overrides = self._configure_trials(trials, space, fixed_params, fixed_overrides)
            overrides = [(*o, f"+{TRIAL_KEY}={t.number}") for o, t in zip(overrides, trials)]
            # Job dir = trial number: a resumed sweep writes next to the earlier trials, never over them.
            with self.ctrl_c.raising():
                returns = list(self.launcher.launch(overrides, initial_job_idx=trials[0].number))
        except Exception:
            if not self.ctrl_c.seen:  # e.g. a search-space value the config refuses: no trial of this batch ran
                for trial in trials:
                    study.tell(trial, state=TrialState.FAIL)
            raise
        return returns + [None] * (len(trials) - len(returns))

    def _continued_sampler(self, n_asked: int) -> Any:
        """The sampler, seeded from hydra.sweeper.sampler.seed and the trials the study already holds: a
        fresh sweep (none) stays repeatable, a resumed or extended one draws new points instead of replaying
        the seeded sequence (TPE's first n_startup_trials are random draws of that sequence)."""
        seed = self.sampler_spec.get("seed")
        if not n_asked or seed is None:
            return self.sampler
        import numpy as np

        # SeedSequence mixes (seed, count) into an independent stream: seeds n and n+1 are not related.
        continued = int(np.random.SeedSequence(seed, spawn_key=(n_asked,)).generate_state(1)[0])
        log.info(f"Resuming after {n_asked} trials: sampler seed {seed} continued as {continued}")
        return instantiate(
            self.sampler_spec,
            seed=continued,
            _execution_whitelist_=("hydra_plugins.hydra_optuna_sweeper.*", "optuna.samplers.*"),
        )

    def _search_space(self, arguments: list[str]) -> list[str]:
        """The family's space, then hydra.sweeper.params, then the command line (later entries win)."""
        self._process_searchspace_config()
        family, auto = self._family()
        chosen = [f"{k}={v}" for k, v in (self.spaces.get(family) or {}).items()]
        if not chosen and not self.params:
            known = ", ".join(sorted(self.spaces)) or "none"
            raise ConfigError(
                f"no search space for model family {family!r} (spaces: {known}). Add "
                f"hydra.sweeper.spaces.{family} or hydra.sweeper.params, or sweep a family that has one."
            )
        # model=auto has none of the family's keys: every job picks the family explicitly.
        return [f"model={family}"] * auto + chosen + self._parse_sweeper_params_config() + list(arguments)

    def _family(self) -> tuple[str, bool]:
        """(model family of the run, whether it was model=auto: then the dataset's modality decides)."""
        from lightsweep.models.registry import dataset_modality, resolve_model_config

        model = OmegaConf.to_container(self.config.model, resolve=True)
        auto = model.get("family") == "auto"
        modality = dataset_modality(self.config.dataset._target_) if auto else ""
        return resolve_model_config(model, modality)[0], auto

    def _check(self, directions: list[str], storage_url: str | None) -> None:
        """Refuse, before any trial runs, what would make every trial fail or the pruning impossible."""
        from lightsweep.objective import check_objective, names_of, pruning_monitor

        callbacks = {k: {"_target_": v.get("_target_")} for k, v in (self.config.get("callbacks") or {}).items() if v}
        objective = OmegaConf.to_container(self.config.objective, resolve=True)
        check_objective({"objective": objective, "callbacks": callbacks}, in_sweep=True)
        if isinstance(self.sampler, functools.partial):  # the stock grid sampler, built from the space later
            raise ConfigError(
                "hydra/sweeper/sampler=grid is not supported by the lightsweep sweeper: use tpe, "
                "random, cmaes or nsgaii (or hydra/sweeper=optuna for a grid)."
            )
        if self.pruner_spec["_target_"].endswith("NopPruner"):
            return
        if len(directions) > 1:
            raise ConfigError(
                "Optuna cannot prune multi-objective studies: use hydra/sweeper/pruner=none with a list "
                "objective (e.g. +sweep=efficiency), or a single objective.name to prune."
            )
        self.monitor = pruning_monitor(
            names_of(objective["name"])[0], self.monitor, self.monitor_direction, directions[0]
        )
        if not storage_url:
            raise ConfigError(
                "pruning needs a study storage the jobs can reach, but hydra.sweeper.storage=null keeps it "
                "in memory: set a file or URL (e.g. sqlite:///multirun/optuna.db) or hydra/sweeper/pruner=none."
            )


def _check_resumable(study: optuna.Study, directions: list[str], command: list[str]) -> None:
    """A stored study is resumed only by the command that started it (n_trials and hydra.* may differ)."""
    stored_directions = [d.name.lower() for d in study.directions]
    stored_command = study.user_attrs.get("command")
    if stored_directions != directions or (stored_command is not None and stored_command != command):
        raise ConfigError(
            f"study {study.study_name!r} already exists in the storage with other settings "
            f"({' '.join(stored_command or [])}; directions {stored_directions}). Rerun that command to "
            "resume it, or start a new study with hydra.sweeper.study_name=<new name>."
        )


def _fail_running_trials(study: optuna.Study, error: str) -> None:
    """Trials left RUNNING by an interrupted sweep will never report: tell them FAIL, marked interrupted."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):  # WAITING ones are queued work
        request = trial.user_attrs.get(STOP_REQUEST)  # a stop asked for (e.g. by the service): say so
        study._storage.set_trial_user_attr(trial._trial_id, "error", f"stopped: {request}" if request else error)
        study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        log.warning(f"Trial {trial.number}: {error}; recorded as FAIL, not counted towards n_trials")


def _counted(study: optuna.Study) -> int:
    """Trials that count towards n_trials: an interrupted one is not done (a rerun makes up for it); one
    that failed on its own (an error, NaN, out of memory) is done, or a broken config would run forever."""
    return sum(not t.user_attrs.get(INTERRUPTED) for t in study.get_trials(deepcopy=False))


def _tell(study: optuna.Study, trial: optuna.Trial, ret: JobReturn | None, n_objectives: int) -> str | None:
    """Record one job's outcome; return the reason when the trial failed."""
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
