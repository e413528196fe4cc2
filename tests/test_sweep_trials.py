"""Trial outcomes of the lightsweep sweeper: pruning through the study storage, failed trials within
max_failure_rate, and resuming an interrupted sweep."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time

import pytest
from hydra.core.utils import JobReturn, JobStatus
from optuna.trial import TrialState
from test_sweep import TINY_CNN, load_study, run_json, sweep

from conftest import PROJECT_ROOT

QUICK = [*TINY_CNN, "+sweep=simple", "callbacks=[model_checkpoint]"]


@pytest.mark.slow
def test_median_pruner_stops_poor_trials_and_saves_epochs(tmp_path):
    proc, sweep_dir = sweep(
        tmp_path,
        *QUICK,
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=1",
        "hydra.sweeper.n_trials=4",
        "trainer.max_epochs=3",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study, meta = load_study(sweep_dir)
    assert meta["study_name"] == "cnn-digits-simple-median"
    pruned = [t for t in study.trials if t.state is TrialState.PRUNED]
    assert pruned and all(t.state in (TrialState.PRUNED, TrialState.COMPLETE) for t in study.trials)
    for trial in pruned:  # the job stopped at the epoch it reported last, and says so
        record = run_json(sweep_dir / str(trial.number))
        assert record["status"] == "pruned" and record["pruned_at_epoch"] == max(trial.intermediate_values)
        assert record["epochs_trained"] == record["pruned_at_epoch"] + 1 < 3
    summary = json.loads((sweep_dir / "study.json").read_text())
    assert summary["epochs_trained"] < summary["epochs_without_pruning"] == 4 * 3
    assert "pruned" in (sweep_dir / "report.md").read_text().lower()


@pytest.mark.slow
def test_jobs_in_other_processes_report_to_their_trials(tmp_path):
    # submitit_local runs each job in its own process, two at a time: they reach the study through SQLite.
    proc, sweep_dir = sweep(
        tmp_path,
        *QUICK,
        "executor=submitit_local",
        "hydra.sweeper.n_jobs=2",
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=1",
        "hydra.sweeper.n_trials=4",
        "trainer.max_epochs=2",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study, _ = load_study(sweep_dir)
    assert all(t.intermediate_values for t in study.trials)
    assert {t.state for t in study.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert TrialState.PRUNED in {t.state for t in study.trials}


@pytest.mark.parametrize(
    "args, message",
    [
        (["+sweep=simple", "hydra/sweeper/pruner=median", "hydra.sweeper.storage=null"], "keeps it in memory"),
        (["+sweep=efficiency", "hydra/sweeper/pruner=median"], "cannot prune multi-objective"),
    ],
)
def test_pruning_that_cannot_work_is_refused_in_one_line(tmp_path, args, message):
    proc, _ = sweep(tmp_path, *TINY_CNN, *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "objective.name=training_time (minimize) has no per-epoch metric for the pruner"),
        (
            ["hydra.sweeper.monitor=val/acc"],
            "val/acc is maximized but the study minimizes objective.name=training_time",
        ),
        (["hydra.sweeper.monitor=val/speed"], "hydra.sweeper.monitor=val/speed: its direction is unknown"),
    ],
)
def test_a_pruner_watching_a_metric_against_the_studys_direction_is_refused_in_one_line(tmp_path, args, message):
    # a minimised objective with a maximised monitor would prune the most accurate trials
    proc, sweep_dir = sweep(
        tmp_path,
        *TINY_CNN,
        "+sweep=simple",
        "objective.name=training_time",
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.n_trials=1",
        "trainer.max_epochs=1",
        *args,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr[-3000:]
    assert not (sweep_dir / "0").exists()


@pytest.mark.slow
def test_a_minimised_objective_prunes_on_a_minimised_monitor(tmp_path):
    proc, sweep_dir = sweep(
        tmp_path,
        *QUICK,
        "objective.name=training_time",
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.monitor=val/loss",
        "hydra.sweeper.n_trials=1",
        "trainer.max_epochs=2",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    import csv

    study, _ = load_study(sweep_dir)
    with open(sweep_dir / "0" / "metrics.csv") as handle:  # the job's per-epoch curves
        logged = {int(r["epoch"]): float(r["val/loss"]) for r in csv.DictReader(handle) if r.get("val/loss")}
    assert study.trials[0].intermediate_values == pytest.approx(logged) and len(logged) == 2


@pytest.mark.slow
def test_failed_trials_are_recorded_and_the_sweep_stops_past_max_failure_rate(tmp_path):
    # A negative learning rate makes torch.optim refuse to build the optimizer inside the job; with seed 42
    # TPE draws it for trials 0 and 3. max_failure_rate=0.25 x 4 trials tolerates one failure.
    proc, sweep_dir = sweep(
        tmp_path,
        *QUICK,
        "model.optimizer.lr=choice(0.003,-1.0)",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.max_failure_rate=0.25",
        "trainer.max_epochs=1",
    )
    study, _ = load_study(sweep_dir)
    fail, complete = TrialState.FAIL, TrialState.COMPLETE
    assert [t.state for t in study.trials] == [fail, complete, complete, fail]
    for trial in (study.trials[0], study.trials[3]):
        assert trial.params["model.optimizer.lr"] == -1.0 and "Invalid learning rate" in trial.user_attrs["error"]
        assert run_json(sweep_dir / str(trial.number))["status"] == "failed"
    # the first failure was within the budget (the sweep went on); the second is past it: one clear line
    assert proc.returncode == 2 and "2 trials failed, more than max_failure_rate=0.25" in proc.stderr
    assert "| 3 | FAIL |" in (sweep_dir / "report.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT], ids=["killed", "ctrl-c"])
def test_an_interrupted_sweep_resumes_to_n_done_trials_without_duplicate_numbers(tmp_path, stop):
    sweep_dir = tmp_path / "sweep"
    args = ["-m", f"hydra.sweep.dir={sweep_dir}", *QUICK, "hydra.sweeper.n_trials=3", "trainer.max_epochs=1"]
    command = [sys.executable, str(PROJECT_ROOT / "train.py"), *args]
    first = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not _running_trials(sweep_dir, after=0) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # trial 0 finished and a later trial is running (the storage says so)
    first.send_signal(stop)  # SIGKILL: a crash or a lost node, the running trial stays RUNNING in the storage
    first.wait()
    if stop == signal.SIGINT:  # Ctrl-C: the sweeper itself records the running trial as interrupted
        assert first.returncode == 130 and not _running_trials(sweep_dir, after=0)
        stopped = [t.number for t in load_study(sweep_dir)[0].trials if t.user_attrs.get("interrupted")]
    else:
        stopped = _running_trials(sweep_dir, after=0)
    assert stopped, "the sweep ended before it could be interrupted mid-trial"

    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    study, _ = load_study(sweep_dir)
    numbers = list(range(3 + len(stopped)))  # the interrupted trials are not done: as many more ran
    assert [t.number for t in study.trials] == numbers
    expected = [TrialState.FAIL if t.number in stopped else TrialState.COMPLETE for t in study.trials]
    assert [t.state for t in study.trials] == expected
    # Ctrl-C: the sweep recorded its own trial; killed: the rerun found it lost (its driver's process gone, or,
    # killed before it stamped the trial, no heartbeat within the grace period)
    why = "interrupted" if stop == signal.SIGINT else "worker lost: "
    assert all(study.trials[n].user_attrs["error"].startswith(why) for n in stopped)
    drawn = [tuple(sorted(t.params.items())) for t in study.trials if t.params]  # a trial killed at once has none
    assert len(set(drawn)) == len(drawn) >= 3  # the resumed sweep drew new parameters
    assert {p.name for p in sweep_dir.iterdir() if p.name.isdigit()} <= set(map(str, numbers))  # one dir per trial
    assert all(run_json(sweep_dir / str(t.number))["status"] == "ok" for t in study.trials if t.number not in stopped)


def test_ctrl_c_waits_while_the_sweeper_writes_to_the_study_and_stops_jobs_at_once():
    # a KeyboardInterrupt inside a storage write can leave SQLite's lock held; inside a job it must stop it
    from hydra_plugins.lightsweep_sweeper._ctrl_c import CtrlCWatch

    before, watch = signal.getsignal(signal.SIGINT), CtrlCWatch()
    with watch:
        signal.raise_signal(signal.SIGINT)  # during the sweeper's own bookkeeping: noted, not raised
        assert watch.seen
        with pytest.raises(KeyboardInterrupt):
            watch.check()  # ...until the next safe point
    with watch, pytest.raises(KeyboardInterrupt), watch.raising():  # while jobs run: raised at once
        signal.raise_signal(signal.SIGINT)
        pytest.fail("a Ctrl-C while jobs run must stop them")
    assert watch.seen and signal.getsignal(signal.SIGINT) is before


def _running_trials(sweep_dir, after: int) -> list[int]:
    """Numbers of the trials the sweep's storage holds as RUNNING, above `after` (none before it exists)."""
    import sqlite3

    if not (sweep_dir / "study.json").is_file():
        return []
    with sqlite3.connect(sweep_dir / "optuna.db", timeout=5) as db:  # read-only look, the sweep keeps writing
        rows = db.execute("SELECT number FROM trials WHERE state = 'RUNNING'").fetchall()
    return [number for (number,) in rows if number > after]


def _returned(value=None, status=JobStatus.COMPLETED) -> JobReturn:
    ret = JobReturn(status=status)
    ret._return_value = value
    return ret


@pytest.mark.parametrize(
    "ret, n, expected",
    [
        (_returned(0.5), 1, (TrialState.COMPLETE, [0.5])),
        (_returned([0.9, 12.0]), 2, (TrialState.COMPLETE, [0.9, 12.0])),
        (_returned("pruned"), 1, (TrialState.PRUNED, None)),
        (_returned(math.nan), 1, (TrialState.FAIL, None)),  # a diverged run
        (_returned([0.9]), 2, (TrialState.FAIL, None)),  # fewer values than objectives
        (_returned(None), 1, (TrialState.FAIL, None)),
        (_returned(MemoryError("out of memory"), JobStatus.FAILED), 1, (TrialState.FAIL, None)),
        (None, 1, (TrialState.FAIL, None)),  # a launcher that lost the job
    ],
)
def test_each_job_outcome_maps_to_a_trial_state(ret, n, expected):
    from hydra_plugins.lightsweep_sweeper._outcome import _outcome

    state, values, error = _outcome(ret, n)
    assert (state, values) == expected and (error is None) == (state is not TrialState.FAIL)
