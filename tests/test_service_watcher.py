"""The watcher's events from a study that moves on while it is read (lightsweep.service.watcher): each epoch
is told once, a trial's start is told when it leaves WAITING, a finished trial's end once."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from lightsweep.service.studies import JobStudy
from lightsweep.service.watcher import told, trial_changes
from lightsweep.sweep.study import open_storage, write_study_json


def test_epochs_reported_between_the_snapshot_and_the_read_are_told_once(tmp_path):
    url = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="live", storage=open_storage(url), direction="maximize")
    write_study_json(tmp_path, {"study_name": "live", "storage": url, "directions": ["maximize"], "n_trials": 2})
    reader = JobStudy(tmp_path)
    space = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
    running = study.ask(space)
    study.enqueue_trial({"lr": 0.01})  # WAITING: not started yet

    seen: dict = {}
    sent: list = []
    for epoch in range(4):
        running.report(0.1 * epoch, 2 * epoch)
        now = reader.snapshot()
        running.report(0.1 * epoch + 0.05, 2 * epoch + 1)  # reported after the snapshot, before the epochs read
        changes = trial_changes(seen, now, reader)
        sent += changes
        seen = told(seen, changes)
    study.tell(running, 0.9)
    waiting = study.ask()  # the enqueued trial starts
    for _ in range(2):  # a quiet tick tells nothing
        changes = trial_changes(seen, reader.snapshot(), reader)
        sent += changes
        seen = told(seen, changes)

    epochs = [(data["number"], data["epoch"]) for kind, data in sent if kind == "epoch"]
    assert sorted(epochs) == sorted(set(epochs))  # none twice
    assert sorted(step for _, step in epochs) == sorted(study.trials[0].intermediate_values)  # none missed
    started = [data["number"] for kind, data in sent if kind == "trial_started"]
    assert started == [0, waiting.number]  # the WAITING trial's start is told once it runs
    assert [data["number"] for kind, data in sent if kind == "trial_finished"] == [0]
    assert study.trials[0].state is TrialState.COMPLETE and seen[0] == ("COMPLETE", 7)
