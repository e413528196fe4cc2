"""The search loop of `hydra/sweeper=lightsweep`, on top of the stock OptunaSweeperImpl (whose search-space
parsing and trial configuration it reuses). What it adds:

- pruning: each job gets `+optuna_trial=<number>`, reattaches to its trial through the storage and reports
  the monitored metric every epoch; a job that returns the pruned marker is told PRUNED;
- failures: a failed job, a NaN or a non-number is told FAIL and the sweep goes on until the failed
  trials exceed max_failure_rate x n_trials;
- many drivers, resume: the study is loaded by name and n_trials is its total, whoever runs the trials
  (lightsweep.sweep.drivers): the same command started again, or on other machines, runs only the trials
  missing; trials of a lost driver (killed, its node gone: no heartbeat) are told FAIL, marked interrupted
  (not done), and re-queued up to retry_failed times; the sampler continues the search instead of
  replaying its seeded sequence; job dirs are numbered by trial, so numbers never repeat;
- a report (report.md, plots, best/) when the sweep ends.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn
from hydra.utils import instantiate
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from lightsweep.errors import ConfigError
from lightsweep.sweep.drivers import Heartbeat, Liveness, claim, fail_lost_trials, fail_own_trials, slots
from lightsweep.sweep.study import TRIAL_KEY, absolute_storage, open_storage, read_study_json, write_study_json

from ._checks import check_resumable, check_sweep, checked_pruning
from ._ctrl_c import CtrlCWatch
from ._outcome import tell

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
        liveness: Liveness,
    ) -> None:
        super().__init__(*stock_args)
        self.sampler_spec = sampler_spec
        self.pruner_spec = OmegaConf.to_container(pruner, resolve=True)
        self.monitor = monitor
        self.monitor_direction = monitor_direction
        self.spaces = OmegaConf.to_container(spaces, resolve=True) if spaces else {}
        self.report = report
        self.liveness = liveness
        self.ctrl_c = CtrlCWatch()
        self.in_flight: dict[int, int] = {}  # number -> trial id of the trials this driver runs now

    def sweep(self, arguments: list[str]) -> None:
        directions = self._get_directions()
        storage_url = absolute_storage(self.storage, os.getcwd())
        check_sweep(self.config, self.sampler, self.n_jobs, self.liveness, storage_url)
        self.pruner_spec, self.monitor = checked_pruning(
            self.config, self.pruner_spec, self.monitor, self.monitor_direction, directions, storage_url
        )
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
        check_resumable(study, directions, command)
        study.sampler = self._continued_sampler(len(study.trials))
        study.set_user_attr("pruner", self.pruner_spec)
        study.set_user_attr("monitor", self.monitor)
        study.set_user_attr("command", command)
        fail_lost_trials(study, self.liveness)  # e.g. a killed earlier run of this command
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
            f"Study {study.study_name} in {storage_url or 'memory'}: {slots(study).counted} of "
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
            fail_own_trials(study, self.in_flight, "interrupted: the sweep was stopped during this trial")
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
        with Heartbeat(study, self.liveness, self.in_flight):  # stamps the trials in flight while they run
            while (trials := self._next_trials(study)) is not None:
                self.in_flight.update((t.number, t._trial_id) for t in trials)
                returns = self._launch(study, trials, space, fixed_params, fixed_overrides)
                self.ctrl_c.check()  # a job that failed from a Ctrl-C did not fail on its own: leave it RUNNING
                for trial, ret in zip(trials, returns):
                    error = tell(study, trial, ret, n_objectives)
                    self.in_flight.pop(trial.number, None)
                    if error:
                        failures.append(f"trial {trial.number}: {error}")
                self._check_failures(failures)
        self.ctrl_c.check()

    def _next_trials(self, study: optuna.Study) -> list[optuna.Trial] | None:
        """The next batch of trials for this driver (up to n_jobs); None once the study holds n_trials
        counted trials and none is running or waiting anywhere. While other drivers' last trials run it
        waits: one of them may be lost and need making up for."""
        waited = False
        while True:
            self.ctrl_c.check()
            fail_lost_trials(study, self.liveness)
            now = slots(study)
            wanted = min(self.n_jobs, self.n_trials - now.counted + now.waiting)
            if wanted > 0:
                trials = [trial for trial in (study.ask() for _ in range(wanted)) if claim(study, trial, self.n_trials)]
                if trials:
                    return trials
                continue
            if not now.unfinished:
                return None
            if not waited:
                log.info(f"Waiting for {now.unfinished} trial(s) of other drivers to finish")
                waited = True
            time.sleep(min(self.liveness.heartbeat_interval, 2.0))

    def _check_failures(self, failures: list[str]) -> None:
        if len(failures) > self.max_failure_rate * self.n_trials:
            raise ConfigError(
                f"{len(failures)} trials failed, more than max_failure_rate={self.max_failure_rate} x "
                f"n_trials={self.n_trials} allows; first: {failures[0].rstrip('.')}. Fix the cause (see the "
                "trial's run.json), or raise hydra.sweeper.max_failure_rate; rerun the same command to resume."
            )

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
            # Job dir = trial number: a resumed sweep, or another driver of the study, writes next to the other
            # trials, never over them (a batch's numbers need not follow each other when drivers share a study).
            overrides = [
                (*o, f"+{TRIAL_KEY}={t.number}", f"hydra.sweep.subdir={t.number}") for o, t in zip(overrides, trials)
            ]
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
