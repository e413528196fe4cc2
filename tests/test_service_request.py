"""The body of POST /optimize without the HTTP layer: typed fields, the overrides allowlist and its refusals,
the Hydra argument list (composed by Hydra, and run through the real CLI), and validate()."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from hydra.core.config_store import ConfigStore
from pydantic import ValidationError
from service_server import TINY  # a small corner of the CNN space through the allowlist

from conftest import cli
from lightsweep.errors import group_choices
from lightsweep.paths import CONF_DIR
from lightsweep.service.request import (
    OptimizeRequest,
    RequestInvalid,
    allowed_overrides,
    hydra_arguments,
    validate,
)


def request(**fields) -> OptimizeRequest:
    return OptimizeRequest.model_validate({"dataset": "digits", **fields})


def hydra_compose(args: list[str]):
    """The config Hydra composes for these CLI arguments, its own part included (the CLI's rewriting first)."""
    from hydra import compose, initialize_config_dir

    from lightsweep.config import auto_family_overrides, normalize_overrides, register_resolvers

    overrides, _ = auto_family_overrides(normalize_overrides([a for a in args if a != "-m"]))
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), job_name="train"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def test_choices_come_from_the_config_tree_and_appear_in_the_schema():
    schema = OptimizeRequest.model_json_schema()
    props = schema["properties"]
    assert all(props[name].get("description") for name in props)
    assert props["dataset"]["enum"] == group_choices("dataset")
    assert set(props["model"]["enum"]) == set(group_choices("model")) >= {"auto", "cnn", "lstm", "timehut"}
    assert set(props["executor"]["enum"]) == {"local", "submitit_local", "slurm"}
    pruners = {"default", "none", "median", "percentile", "successive_halving", "hyperband"}
    assert set(props["pruner"]["enum"]) == pruners
    stored = {name.removesuffix(".yaml") for name in ConfigStore.instance().list("hydra/sweeper/sampler")}
    assert {"tpe", "random", "nsgaii"} <= set(props["sampler"]["enum"]) == stored - {"grid", "motpe"}
    assert "test_accuracy" not in props["objective"]["enum"] and "overall_health" in props["objective"]["enum"]
    with pytest.raises(ValidationError, match="use one of .*digits.*imdb"):
        request(dataset="nope")


def test_defaults_give_the_documented_sweep():
    r = request()
    assert (r.kind, r.model, r.mode, r.objective, r.health_weight) == ("sweep", "auto", "simple", "val_accuracy", 0.3)
    assert (r.trials, r.pruner, r.sampler, r.executor, r.n_jobs) == (10, "default", "tpe", "local", 1)
    assert (r.seed, r.max_epochs, r.overrides, r.fallback_local) == (42, None, {}, False)


def test_sweep_arguments_compose_in_hydra_to_every_field_and_override(tmp_path):
    r = request(
        mode="health",
        health_weight=0.25,
        trials=3,
        n_jobs=2,
        pruner="median",
        sampler="random",
        executor="slurm",
        fallback_local=True,
        seed=7,
        max_epochs=3,
        overrides={**TINY, "model.activation": "swish", "model.dropout": 1e-05, "trainer.precision": "16"},
    )
    sweep_dir = tmp_path / "job, with 'odd' name" / "sweep"
    args = hydra_arguments(r, sweep_dir)
    assert args[:2] == ["-m", "+sweep=health"] and args[-1].startswith("hydra.sweep.dir=")
    overrides = [a for a in args if a.startswith(("model.", "trainer.limit", "trainer.enable", "trainer.num_s"))]
    assert [a.partition("=")[0] for a in overrides] == sorted(a.partition("=")[0] for a in overrides)
    cfg = hydra_compose(args)
    assert cfg.hydra.sweep.dir == str(sweep_dir)
    assert (cfg.hydra.sweeper.n_trials, cfg.hydra.sweeper.n_jobs) == (3, 2)
    assert cfg.hydra.sweeper.pruner._target_ == "optuna.pruners.MedianPruner"
    assert cfg.hydra.sweeper.sampler._target_ == "optuna.samplers.RandomSampler"
    assert cfg.hydra.launcher.fallback_local is True and "Slurm" in cfg.hydra.launcher._target_
    assert (cfg.objective.name, cfg.objective.mode, cfg.objective.health_weight) == ("val_accuracy", "health", 0.25)
    assert (cfg.seed, cfg.trainer.max_epochs, cfg.model._target_) == (7, 3, "lightsweep.models.cnn.CNNClassifier")
    assert (cfg.model.activation, cfg.model.dropout, cfg.trainer.precision) == ("swish", 1e-05, "16")
    for key, value in TINY.items():  # an int for a float key stays an int: 8 batches, not 800%
        assert cfg[key.split(".")[0]][key.split(".")[1]] == value
        assert type(cfg[key.split(".")[0]][key.split(".")[1]]) is type(value)


def test_run_arguments_have_no_sweep_parts_and_set_the_run_dir(tmp_path):
    r = request(kind="run", model="cnn", mode="health", objective="overall_health", overrides=TINY)
    args = hydra_arguments(r, tmp_path / "run")
    assert "-m" not in args and not [a for a in args if "sweep" in a]
    assert args[-1] == f"hydra.run.dir={tmp_path / 'run'}"
    cfg = hydra_compose(args)
    assert (cfg.objective.name, cfg.objective.mode) == ("overall_health", "health")
    assert cfg.hydra.run.dir == str(tmp_path / "run")


def test_a_timehut_request_switches_the_temperature_schedule_group():
    allowed = allowed_overrides(request(dataset="chinatown"))
    assert "scheduler" in allowed and "cosine_annealing" in allowed["scheduler"].choices
    r = request(dataset="chinatown", overrides={"scheduler": "cosine_annealing", "scheduler.tau_min": 0.05})
    cfg = hydra_compose(hydra_arguments(r, Path("/tmp/unused")))
    assert cfg.scheduler.tau_min == 0.05 and "cosine" in cfg.scheduler._target_.lower()


def test_allowlist_holds_the_search_space_and_the_typed_knobs_of_model_dataset_trainer():
    allowed = allowed_overrides(request())  # digits + auto: the CNN family
    assert allowed["model.activation"].choices == ("relu", "leaky_relu", "swish")
    assert allowed["model.kernel_size"].type is int and allowed["model.kernel_size"].choices == (3, 5)
    assert allowed["model.dropout"].type is float and allowed["model.dropout"].non_negative
    assert allowed["trainer.limit_train_batches"].type is float
    assert allowed["trainer.enable_progress_bar"].type is bool
    assert allowed["trainer.gradient_clip_val"].type is float  # null in the config: typed by Trainer's hint
    assert not allowed["trainer.max_steps"].non_negative  # -1 in the config
    assert {"dataset.batch_size", "model.optimizer.lr", "model.batch_norm"} <= set(allowed)
    never = {"model.optimizer._target_", "trainer.default_root_dir", "trainer.max_epochs", "trainer.strategy", "seed"}
    assert not never & set(allowed)
    lstm = allowed_overrides(request(dataset="imdb"))
    assert lstm["model.pooling"].choices == ("max", "mean", "last") and "model.lstm_units" in lstm
    assert "model.hidden_units" not in lstm  # choices of lists: not a scalar
    files = {"dataset.data_dir", "dataset.cache_dir", "dataset.source", "dataset.tfds_name", "dataset.tfds_dir"}
    assert not files & set(lstm)
    assert "dataset.name" not in allowed_overrides(request(dataset="chinatown"))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("model.dropout", 0),  # an int for a float key
        ("trainer.limit_train_batches", 8),
        ("model.kernel_size", 5),
        ("model.batch_norm", False),
        ("trainer.max_steps", -1),  # negative like the config's own value
        ("trainer.precision", "bf16-mixed"),
        ("model.optimizer.lr", 0.0001),
        ("trainer.gradient_clip_val", 1.5),
    ],
)
def test_allowlisted_values_are_accepted(key, value):
    assert request(overrides={key: value}).overrides == {key: value}


HOSTILE = [
    ("_target_", "os.system"),
    ("model._target_", "builtins.eval"),
    ("model.optimizer._target_", "torch.optim.SGD"),
    ("model.activation", "_target_"),
    ("model.activation", "_target_:os.system"),
    ("hydra.run.dir", "/tmp/x"),
    ("hydra.sweep.dir", "/etc"),
    ("hydra.sweeper.n_trials", 100000),
    ("hydra/launcher", "basic"),
    ("paths.output_dir", "/etc"),
    ("paths.data_dir", "/"),
    ("model.activation", "${oc.env:HOME}"),
    ("trainer.precision", "${oc.env:HOME}"),
    ("dataset.name", "../../etc"),
    ("dataset.source", "aeon"),
    ("dataset.download_url", "http://evil.example/x"),
    ("dataset.data_dir", "/etc"),
    ("trainer.default_root_dir", "/tmp"),
    ("callbacks.model_checkpoint.dirpath", "/tmp"),
    ("logger.csv.save_dir", "/tmp"),
    ("ckpt_path", "/etc/passwd"),
    ("model.activation", "relu\nhydra.run.dir=/etc"),
    ("model.activation", "relu'"),
    ("model.activation", 'relu"'),
    ("model.activation", "relu,swish"),
    ("model.activation", "[relu]"),
    ("model.activation", "relu=1"),
    ("model.activation", "choice(relu,swish)"),
    ("model.activation", "relu "),
    ("model.activation", ""),
    ("model.activation", "\x00"),
    ("model.activation", "x" * 201),
    ("model.activation", "tanh"),
    ("+model.x", 1),
    ("++trainer.max_steps", 1),
    ("~trainer", 1),
    ("model@x", 1),
    ("model.filters=1", 1),
    ("model filters", 1),
    ("a" * 201, 1),
    ("model.filters", 10**12),
    ("model.filters", 999_999_999),
    ("trainer.max_steps", 1_000_001),
    ("model.dropout", 1e10),
    ("model.filters", -16),
    ("model.dropout", -0.1),
    ("model.dropout", math.nan),
    ("model.dropout", math.inf),
    ("model.dropout", -math.inf),
    ("model.filters", True),
    ("trainer.enable_progress_bar", 1),
    ("model.filters", 16.0),
    ("model.filters", "16"),
    ("model.filters", [16]),
    ("model.filters", {"a": 1}),
    ("model.filters", None),
    ("model.kernel_size", 7),
    ("model.filtres", 16),
    ("trainer.strategy", "ddp"),
    ("trainer.max_epochs", 3),
    ("seed", 1),
    ("objective.name", "test_accuracy"),
    ("objective.direction", "minimize"),
    ("dataset", "imdb"),
    ("executor", "slurm"),
]


@pytest.mark.parametrize(("key", "value"), HOSTILE, ids=[f"{i}-{k[:30]}" for i, (k, _) in enumerate(HOSTILE)])
def test_hostile_overrides_are_refused_naming_the_key(key, value):
    with pytest.raises(ValidationError) as refused:
        request(overrides={key: value})
    assert key[:40] in str(refused.value)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"dataset": "../../etc"}, "dataset"),
        ({"seed": True}, "seed"),
        ({"trials": "5"}, "trials"),
        ({"trials": 5.0}, "trials"),
        ({"fallback_local": "yes"}, "fallback_local"),
        ({"dataset": "digits\n"}, "dataset"),
        ({"dataset": "d" * 201}, "dataset"),
        ({"model": "os"}, "model"),
        ({"sampler": "grid"}, "sampler"),
        ({"sampler": "motpe"}, "sampler"),
        ({"objective": "test_accuracy"}, "objective"),
        ({"executor": "ssh"}, "executor"),
        ({"command": "rm -rf /"}, "command"),
        ({"health_weight": math.nan}, "health_weight"),
        ({"health_weight": 1.5}, "health_weight"),
        ({"trials": 0}, "trials"),
        ({"trials": 1001}, "trials"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"n_jobs": 65}, "n_jobs"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**31}, "seed"),
        ({"overrides": {f"model.k{i}": 1 for i in range(65)}}, "overrides"),
        ({"objective": "overall_health"}, "mode=health"),
        ({"mode": "simple", "health_weight": 0.5}, "health_weight"),
        ({"fallback_local": True}, "executor=slurm"),
        ({"kind": "run", "trials": 5}, "trials"),
        ({"kind": "run", "executor": "slurm"}, "executor"),
    ],
)
def test_hostile_fields_are_refused_naming_the_field(fields, named):
    with pytest.raises(ValidationError) as refused:
        request(**fields)
    assert named in str(refused.value)


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("trainer.max_epochs", "max_epochs field"),
        ("objective.mode", "objective, mode and health_weight field"),
        ("hydra.run.dir", "never settable"),
        ("dataset.name", "never settable"),
        ("+model.x", "only letters, digits, _ and ."),
        ("model.filtres", "Did you mean model.filters"),
    ],
)
def test_refusals_say_what_to_do_instead(key, says):
    with pytest.raises(ValidationError, match=re.escape(says)):
        request(overrides={key: 1})


def test_health_objective_refusal_names_both_fields():
    with pytest.raises(ValidationError, match=r"objective=gradient_health .*mode=health .*mode=simple"):
        request(objective="gradient_health")


def test_validate_returns_the_resolved_config_the_job_will_run():
    config = validate(request(overrides=TINY, max_epochs=2))
    assert config["model"]["_target_"] == "lightsweep.models.cnn.CNNClassifier"  # auto picked the family
    assert config["model"]["filters"] == 16 and config["trainer"]["max_epochs"] == 2
    assert config["objective"]["direction"] == "maximize"
    json.dumps(config)  # plain containers only


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"dataset": "ucr"}, "dataset.name has no value"),  # the generic UCR entry needs a name: never settable
        ({"mode": "health", "objective": "training_time"}, "objective.mode=health blends"),
        ({"objective": "training_time", "pruner": "median"}, "no per-epoch metric for the pruner"),
        ({"overrides": {"scheduler.tau_min": 0.05}, "dataset": "chinatown"}, "scheduler.tau_min"),
    ],
)
def test_validate_lists_what_the_cli_would_refuse(fields, problem):
    with pytest.raises(RequestInvalid) as refused:
        validate(request(**fields))
    assert any(problem in p for p in refused.value.problems), refused.value.problems


def test_validate_lists_every_problem_at_once():
    with pytest.raises(RequestInvalid) as refused:
        validate(request(mode="health", objective="training_time", pruner="median"))
    assert len(refused.value.problems) == 2


@pytest.mark.slow
def test_the_argument_list_runs_a_two_trial_sweep_through_the_real_cli(tmp_path):
    import optuna

    r = request(trials=2, max_epochs=1, overrides=TINY)
    expected = validate(r)
    sweep_dir, launch = tmp_path / "job" / "sweep", tmp_path / "launch"
    launch.mkdir()
    proc = cli(*hydra_arguments(r, sweep_dir), cwd=launch, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((sweep_dir / "study.json").read_text())
    assert meta["study_name"] == "cnn-digits-simple-median"  # pruner=default: the sweep's own
    study = optuna.load_study(study_name=meta["study_name"], storage=meta["storage"])
    assert [(t.number, t.state.name) for t in study.trials] == [(0, "COMPLETE"), (1, "COMPLETE")]
    assert "model.filters" not in study.trials[0].params and "model.kernel_size" in study.trials[0].params
    for trial in study.trials:
        ran = json.loads((sweep_dir / str(trial.number) / "run.json").read_text())["config"]
        assert ran["trainer"]["limit_train_batches"] == 8 and ran["trainer"]["max_epochs"] == 1
        assert ran["model"]["filters"] == expected["model"]["filters"] == 16
        assert ran["seed"] == expected["seed"] == 42
