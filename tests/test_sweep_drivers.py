"""Many drivers on one study (lightsweep.sweep.drivers): the study's n_trials is never overshot, trials of a
lost driver are recorded FAIL "worker lost" by the others and re-queued with the same parameters. The rules on
a real SQLite study, then real sweeps: three `python train.py -m` drivers of one 24-trial study, one of them
killed (or frozen) mid-trial."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState
from test_sweep import TINY_CNN, run_json

from conftest import PROJECT_ROOT
from lightsweep.sweep.drivers import (
    HEARTBEAT,
    RETRIES,
    RETRY_OF,
    WORKER,
    Liveness,
    claim,
    fail_lost_trials,
    lost_reason,
    slots,
)

LIVENESS = Liveness(heartbeat_interval=1, grace_period=5, retry_failed=1)


def _study(tmp_path, name="s"):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    return optuna.create_study(study_name=name, storage=storage, load_if_exists=True)


def _running_trial(study, heartbeat_age: float, worker: str | None = None):
    trial = study.ask()
    trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    trial.set_user_attr(WORKER, worker or f"elsewhere:{os.getpid()}")
    trial.set_user_attr(HEARTBEAT, time.time() - heartbeat_age)
    return trial


def test_a_trial_asked_past_n_trials_is_dropped_as_surplus_and_not_counted(tmp_path):
    study = _study(tmp_path)
    first, second = study.ask(), study.ask()
    late = study.ask()  # a third driver asked while the other two counted one open slot each
    assert claim(study, first, 2) and claim(study, second, 2)
    assert not claim(study, late, 2)
    frozen = study.trials[late.number]
    assert frozen.state is TrialState.FAIL and frozen.user_attrs["error"].startswith("surplus")
    assert slots(study).counted == 2 and slots(study).unfinished == 2


def test_a_trial_without_heartbeat_past_the_grace_period_is_failed_and_requeued_with_its_parameters(tmp_path):
    study = _study(tmp_path)
    alive = _running_trial(study, heartbeat_age=1)
    silent = _running_trial(study, heartbeat_age=30)
    assert fail_lost_trials(study, LIVENESS) == [silent.number]
    lost = study.trials[silent.number]
    assert lost.state is TrialState.FAIL and lost.user_attrs["interrupted"] is True
    assert lost.user_attrs["error"].startswith(f"worker lost: elsewhere:{os.getpid()} sent no heartbeat for 30 s")
    assert study.trials[alive.number].state is TrialState.RUNNING
    retry = study.trials[-1]
    assert retry.state is TrialState.WAITING and retry.user_attrs[RETRY_OF] == silent.number
    assert slots(study) == slots(study).__class__(counted=2, unfinished=2, waiting=1)  # the lost one is made up
    asked = study.ask()  # the next ask of any driver takes the re-queued parameters first
    assert asked.number == retry.number and asked.suggest_float("lr", 1e-4, 1e-1, log=True) == lost.params["lr"]
    assert fail_lost_trials(study, LIVENESS) == []  # recorded once


def test_retries_stop_after_retry_failed(tmp_path):
    study = _study(tmp_path)
    retried = _running_trial(study, heartbeat_age=30)
    retried.set_user_attr(RETRY_OF, 0)
    retried.set_user_attr(RETRIES, 1)  # already the first retry of trial 0
    assert fail_lost_trials(study, LIVENESS) == [retried.number]
    assert all(t.state is not TrialState.WAITING for t in study.trials)


def test_a_driver_whose_process_on_this_host_is_gone_is_lost_at_once(tmp_path):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(ended.stdout)
    study = _study(tmp_path)
    trial = _running_trial(study, heartbeat_age=0, worker=f"{socket.gethostname()}:{pid}")
    frozen = study.trials[trial.number]
    assert lost_reason(frozen, grace_period=60, now=time.time()) == (
        f"worker lost: {socket.gethostname()}:{pid} (its process on this host has ended)"
    )
    mine = _running_trial(study, heartbeat_age=0, worker=f"{socket.gethostname()}:{os.getpid()}")
    assert lost_reason(study.trials[mine.number], grace_period=60, now=time.time()) is None


def test_two_drivers_noticing_the_same_lost_trial_requeue_it_once(tmp_path):
    study = _study(tmp_path)
    silent = _running_trial(study, heartbeat_age=30)
    other = _study(tmp_path)  # a second driver: its own storage connection to the same study
    assert fail_lost_trials(study, LIVENESS) == [silent.number]
    assert fail_lost_trials(other, LIVENESS) == []
    assert sum(t.state is TrialState.WAITING for t in study.trials) == 1


# -- real drivers ----------------------------------------------------------------------------------------------

N_TRIALS = 24


def _drivers(tmp_path, storage: str, n: int = 3) -> tuple[list[subprocess.Popen], object]:
    sweep_dir, launch = tmp_path / "sweep", tmp_path / "launch"
    launch.mkdir()
    command = [
        sys.executable,
        str(PROJECT_ROOT / "train.py"),
        "-m",
        f"hydra.sweep.dir={sweep_dir}",
        *TINY_CNN,
        "+sweep=simple",
        "callbacks=[model_checkpoint]",
        "hydra/sweeper/pruner=none",
        f"hydra.sweeper.n_trials={N_TRIALS}",
        "trainer.max_epochs=1",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.heartbeat_interval=1",
        "hydra.sweeper.grace_period=6",
        "hydra.sweeper.retry_failed=1",
    ]
    drivers = []
    for i in range(n):
        log = open(tmp_path / f"driver{i}.log", "w")
        drivers.append(subprocess.Popen(command, cwd=launch, stdout=log, stderr=subprocess.STDOUT))
    return drivers, sweep_dir


def _load(sweep_dir, storage: str):
    from lightsweep.sweep.study import open_storage, read_study_json

    return optuna.load_study(study_name=read_study_json(sweep_dir)["study_name"], storage=open_storage(storage))


def _wait_for_running_trial_of(driver: subprocess.Popen, sweep_dir, storage: str, after_complete: int) -> int:
    """The number of a trial `driver` runs (all its parameters drawn), once the study has `after_complete` finished
    trials."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and driver.poll() is None:
        if (sweep_dir / "study.json").is_file():
            trials = _load(sweep_dir, storage).get_trials(deepcopy=False)
            drawn = max((len(t.params) for t in trials if t.state is TrialState.COMPLETE), default=-1)
            mine = [
                t
                for t in trials
                if t.state is TrialState.RUNNING
                and len(t.params) == drawn
                and t.user_attrs.get(WORKER, "").endswith(f":{driver.pid}")
            ]
            if sum(t.state is TrialState.COMPLETE for t in trials) >= after_complete and mine:
                return mine[0].number
        time.sleep(0.2)
    pytest.fail("the driver never ran a trial")


def _check_study_ended_at_n_trials_with_the_lost_trial_retried(sweep_dir, storage: str, lost: int, reason: str):
    study = _load(sweep_dir, storage)
    trials = study.get_trials(deepcopy=False)
    counted = [t for t in trials if not (t.state is TrialState.FAIL and t.user_attrs.get("interrupted"))]
    assert len(counted) == N_TRIALS and all(t.state is TrialState.COMPLETE for t in counted)
    assert len({t.number for t in trials}) == len(trials)  # no number twice
    gone = study.trials[lost]
    assert gone.state is TrialState.FAIL and gone.user_attrs["error"].startswith(reason)
    retries = [t for t in counted if t.user_attrs.get(RETRY_OF) == lost]
    assert len(retries) == 1 and retries[0].params == gone.params  # the same parameters, run again
    surplus = [t for t in trials if t.user_attrs.get("error", "").startswith("surplus")]
    assert len(trials) == N_TRIALS + 1 + len(surplus)  # only the lost trial (and dropped surplus asks) beside them
    for trial in counted:  # every finished trial has its own folder with its run.json
        assert run_json(sweep_dir / str(trial.number))["status"] == "ok"


def _finish(drivers: list[subprocess.Popen], tmp_path) -> None:
    for i, driver in enumerate(drivers):
        code = driver.wait(timeout=1200)
        assert code in (0, -signal.SIGKILL), (tmp_path / f"driver{i}.log").read_text()[-3000:]


@pytest.mark.slow
def test_three_drivers_share_a_journal_study_and_make_up_for_a_killed_one(tmp_path):
    storage = f"journal:///{tmp_path}/study.log"
    drivers, sweep_dir = _drivers(tmp_path, storage)
    victim = drivers[0]
    lost = _wait_for_running_trial_of(victim, sweep_dir, storage, after_complete=3)
    victim.kill()  # kill -9: a crash or a lost node, its trial stays RUNNING in the storage
    _finish(drivers, tmp_path)
    host = socket.gethostname()
    reason = f"worker lost: {host}:{victim.pid}"
    _check_study_ended_at_n_trials_with_the_lost_trial_retried(sweep_dir, storage, lost, reason)


@pytest.mark.slow
@pytest.mark.postgres
def test_three_drivers_share_a_postgres_study_and_make_up_for_a_frozen_one(tmp_path, postgres_url):
    drivers, sweep_dir = _drivers(tmp_path, postgres_url)
    victim = drivers[0]
    lost = _wait_for_running_trial_of(victim, sweep_dir, postgres_url, after_complete=3)
    victim.send_signal(signal.SIGSTOP)  # alive but silent, like a node cut off: only its heartbeat tells
    try:
        _finish(drivers[1:], tmp_path)
    finally:
        victim.kill()
        victim.wait()
    reason = f"worker lost: {socket.gethostname()}:{victim.pid} sent no heartbeat"
    _check_study_ended_at_n_trials_with_the_lost_trial_retried(sweep_dir, postgres_url, lost, reason)
