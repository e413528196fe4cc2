"""Pruning on by default in `+sweep=simple|health`: the median pruner with settings derived from n_trials and
the epoch budget (conf/hydra/sweeper/pruner_budget/median.yaml), hydra/sweeper/pruner=none to turn it off,
and a real sweep where the default prunes."""

from __future__ import annotations

import json

import pytest
from optuna.trial import TrialState
from test_sweep import TINY_CNN, load_study, run_json, sweep

from conftest import SHARED_DATA
from lightsweep.sweep.pruner_budget import startup_trials, warmup_epochs

MEDIAN = "optuna.pruners.MedianPruner"
NOP = "optuna.pruners.NopPruner"


def composed(*overrides: str):
    """The config with its hydra node, as the sweeper receives it for `train.py -m <overrides>`."""
    from hydra import compose, initialize_config_dir

    from lightsweep.config import auto_family_overrides, normalize_overrides, register_resolvers
    from lightsweep.paths import CONF_DIR

    args, _ = auto_family_overrides(normalize_overrides(list(overrides)))
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), job_name="train"):
        return compose("train", overrides=args, return_hydra_config=True)


def pruner(*overrides: str) -> dict:
    """hydra.sweeper.pruner as the sweeper receives it (resolved) for `train.py -m <overrides>`."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(composed(*overrides).hydra.sweeper.pruner, resolve=True)


def pruning_for(*overrides: str, storage: str | None = "sqlite:///optuna.db") -> tuple[dict, str | None]:
    """(pruner, monitor) the sweeper runs with: its checks applied to the composed config."""
    from hydra_plugins.lightsweep_sweeper._checks import checked_pruning

    cfg = composed(*overrides)
    return checked_pruning(cfg, pruner(*overrides), None, None, [cfg.objective.direction], storage)


@pytest.mark.parametrize(
    "overrides, startup, warmup",
    [
        (["hydra.sweeper.n_trials=16", "trainer.max_epochs=4"], 4, 0),  # the benchmark's sweep
        (["hydra.sweeper.n_trials=40", "trainer.max_epochs=8"], 5, 1),  # never more than 5 startup trials
        (["hydra.sweeper.n_trials=3", "trainer.max_epochs=2"], 2, 0),  # never fewer than 2
        (["hydra.sweeper.n_trials=4", "trainer.max_epochs=1"], 2, 1),  # one epoch: nothing to save, never pruned
        (["model=cnn"], 5, 1),  # 20 trials; max_epochs=null: the CNN's own 10 epochs
        (["dataset=imdb"], 5, 0),  # model=auto picks the LSTM: 3 epochs of its own
        (["model=cnn", "trainer.max_epochs=-1", "trainer.max_steps=500"], 5, 0),  # a step budget: no epochs
        (["dataset=chinatown"], 5, 0),  # TimeHUT: no per-epoch metric, a step budget of its own
    ],
)
@pytest.mark.parametrize("sweep_config", ["simple", "health"])
def test_the_default_pruner_is_the_median_with_settings_derived_from_the_budget(
    sweep_config, overrides, startup, warmup
):
    settings = pruner(f"+sweep={sweep_config}", *overrides)
    assert settings["_target_"] == MEDIAN
    assert (settings["n_startup_trials"], settings["n_warmup_steps"]) == (startup, warmup)


def test_the_rule_as_documented():
    assert [startup_trials(n) for n in (1, 8, 12, 16, 19, 20, 100)] == [2, 2, 3, 4, 4, 5, 5]
    assert [warmup_epochs(e, _root_=None) for e in (1, 2, 4, 7, 8, 20, -1)] == [1, 0, 0, 0, 1, 2, 0]


def test_a_setting_on_the_command_line_wins_over_the_derived_one():
    settings = pruner("+sweep=simple", "hydra.sweeper.pruner.n_startup_trials=7", "trainer.max_epochs=8")
    assert (settings["n_startup_trials"], settings["n_warmup_steps"]) == (7, 1)


@pytest.mark.parametrize(
    "overrides",
    [["+sweep=simple", "hydra/sweeper/pruner=none"], ["+sweep=health", "hydra/sweeper/pruner=none"]],
)
def test_pruner_none_turns_the_default_off(overrides):
    assert pruner(*overrides) == {"_target_": NOP}


def test_the_multi_objective_sweep_keeps_no_pruner_and_others_keep_their_own_settings():
    assert pruner("+sweep=efficiency") == {"_target_": NOP}
    percentile = pruner("+sweep=simple", "hydra/sweeper/pruner=percentile")  # Optuna's defaults, not derived
    assert percentile["_target_"] == "optuna.pruners.PercentilePruner" and percentile["n_startup_trials"] == 5


def test_the_default_pruner_turns_itself_off_where_it_cannot_work_but_a_chosen_one_is_refused():
    from lightsweep.errors import ConfigError

    assert pruning_for("+sweep=simple") == (pruner("+sweep=simple"), "val/acc")
    # training_time has no per-epoch metric to watch; a storage of null keeps the study where jobs cannot report
    for overrides, storage in [(["objective.name=training_time"], "sqlite:///optuna.db"), ([], None)]:
        assert pruning_for("+sweep=simple", *overrides, storage=storage) == ({"_target_": NOP}, None)
        with pytest.raises(ConfigError, match="pruner=none"):
            pruning_for("+sweep=simple", "hydra/sweeper/pruner=median", *overrides, storage=storage)
        with pytest.raises(ConfigError, match="pruner=none"):  # setting one of its values is choosing it too
            pruning_for("+sweep=simple", "hydra.sweeper.pruner.n_startup_trials=3", *overrides, storage=storage)


@pytest.mark.slow
def test_a_sweep_with_the_default_pruner_prunes_poor_trials(tmp_path):
    proc, sweep_dir = sweep(
        tmp_path,
        *TINY_CNN,
        "+sweep=simple",
        "callbacks=[model_checkpoint]",
        "hydra.sweeper.n_trials=6",
        "trainer.max_epochs=2",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study, meta = load_study(sweep_dir)
    assert meta["study_name"] == "cnn-digits-simple-median"
    assert study.user_attrs["pruner"] == {
        "_target_": MEDIAN,
        "n_startup_trials": 2,
        "n_warmup_steps": 0,
        "interval_steps": 1,
        "n_min_trials": 1,
    }
    pruned = [t for t in study.trials if t.state is TrialState.PRUNED]
    assert pruned and all(t.number >= 2 for t in pruned)  # none before the 2 startup trials finished
    for trial in pruned:
        assert run_json(sweep_dir / str(trial.number))["epochs_trained"] == len(trial.intermediate_values) < 2
    summary = json.loads((sweep_dir / "study.json").read_text())
    assert summary["epochs_trained"] < summary["epochs_without_pruning"] == 6 * 2


@pytest.mark.slow
def test_a_timehut_sweep_with_the_default_pruner_trains_every_trial_in_full(tmp_path):
    if not (SHARED_DATA / "UCR").is_dir():
        pytest.skip(f"real UCR data not found at {SHARED_DATA / 'UCR'}")
    proc, sweep_dir = sweep(
        tmp_path,
        "dataset=chinatown",
        f"paths.data_dir={SHARED_DATA}",
        "+sweep=simple",
        "hydra.sweeper.n_trials=3",
        "trainer.max_epochs=1",
        "callbacks=none",
        "test_ckpt=last",
        "trainer.enable_progress_bar=false",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study, meta = load_study(sweep_dir)
    assert meta["study_name"] == "auto-chinatown-simple-median"
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
