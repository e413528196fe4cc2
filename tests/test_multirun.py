"""`-m` multiruns through Hydra: main hands each run's objective to the sweeper."""

from __future__ import annotations

import json

import optuna
import pytest

from conftest import cli

QUIET = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


@pytest.mark.slow
def test_optuna_sweep_receives_each_runs_objective(tmp_path):
    # model=auto: the sweeper searches the dataset's family (digits: cnn) and tells each job model=cnn.
    proc = cli(
        "-m",
        "+sweep=simple",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweep.dir={tmp_path}",
        "trainer.limit_train_batches=3",
        "callbacks=none",
        *QUIET,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads((tmp_path / str(job) / "run.json").read_text()) for job in (0, 1)]
    assert [r["model_family"] for r in records] == ["cnn", "cnn"]
    best = json.loads((tmp_path / "study.json").read_text())["best"][0]
    assert best["values"]["val_accuracy"] == max(r["objective"] for r in records)
    # Each job found the sweeper's study (named auto-..., though the job runs model=cnn) and reported its epoch.
    study = optuna.load_study(study_name="auto-digits-simple-median", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert [list(t.intermediate_values) for t in study.trials] == [[0], [0]]


@pytest.mark.slow
def test_submitit_local_executor_runs_every_job(tmp_path):
    proc = cli("-m", "executor=submitit_local", "seed=1,2", f"hydra.sweep.dir={tmp_path}", *QUIET)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads((tmp_path / str(job) / "run.json").read_text()) for job in (0, 1)]
    assert [r["status"] for r in records] == ["ok", "ok"] and [r["seed"] for r in records] == [1, 2]
