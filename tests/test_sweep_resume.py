"""Resuming a stored study: an extended or resumed sweep continues the search (it never replays the
parameters its sampler drew before), and an interrupted trial is not counted as done."""

from __future__ import annotations

import pytest
from optuna.trial import TrialState
from test_sweep import TINY_CNN, load_study, sweep

QUICK = [*TINY_CNN, "+sweep=simple", "callbacks=none", "trainer.max_epochs=1"]


def _param_sets(study) -> list[tuple]:
    return [tuple(sorted(t.params.items())) for t in study.trials if t.params]


@pytest.mark.slow
def test_raising_n_trials_draws_new_parameters_instead_of_replaying_the_first_trials(tmp_path):
    first, sweep_dir = sweep(tmp_path, *QUICK, "hydra.sweeper.n_trials=2")
    assert first.returncode == 0, first.stderr[-3000:]
    extended, _ = sweep(tmp_path, *QUICK, "hydra.sweeper.n_trials=4")
    assert extended.returncode == 0, extended.stderr[-3000:]
    study, _ = load_study(sweep_dir)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    params = _param_sets(study)
    assert len(set(params)) == 4, params


@pytest.mark.slow
def test_a_fresh_sweep_with_the_same_seed_draws_the_same_parameters(tmp_path):
    # the derived seed of a resumed sweep leaves a fresh one repeatable
    runs = [sweep(tmp_path / name, *QUICK, "hydra.sweeper.n_trials=1") for name in ("a", "b")]
    assert all(proc.returncode == 0 for proc, _ in runs), runs[0][0].stderr[-3000:]
    first, second = (_param_sets(load_study(sweep_dir)[0]) for _, sweep_dir in runs)
    assert first == second


@pytest.mark.slow
def test_an_interrupted_trial_is_not_counted_towards_n_trials(tmp_path):
    first, sweep_dir = sweep(tmp_path, *QUICK, "hydra.sweeper.n_trials=2")
    assert first.returncode == 0, first.stderr[-3000:]
    study, _ = load_study(sweep_dir)
    study.ask()  # what a killed sweep leaves in the storage: a trial that stays RUNNING
    again, _ = sweep(tmp_path, *QUICK, "hydra.sweeper.n_trials=3")
    assert again.returncode == 0, again.stderr[-3000:]
    study, _ = load_study(sweep_dir)
    fail, complete = TrialState.FAIL, TrialState.COMPLETE
    assert [t.state for t in study.trials] == [complete, complete, fail, complete]
    assert study.trials[2].user_attrs["interrupted"] is True
    assert len(set(_param_sets(study))) == 3
    assert "1 interrupted (not counted)" in (sweep_dir / "report.md").read_text()
