"""Objectives: directions derived in the config, values read from what a run measured, the health
blend, and every refusal (health scores in simple mode, test data in sweeps, missing callbacks)."""

from __future__ import annotations

import json
import math
import re

import pytest

from conftest import cli
from lightsweep.config import compose
from lightsweep.errors import ConfigError
from lightsweep.objective import OBJECTIVES, check_objective, objective_value, pruning_monitor

MEASURED = {
    "metrics": {"val/acc": 0.9, "test/acc": 0.8, "test/f1_macro": 0.75, "val/loss": 0.3},
    "timings": {"train_s": 12.5},
    "efficiency": {
        "parameters": 1_000_000,
        "peak_cpu_rss_mb": 700.0,
        "peak_cuda_memory_mb": None,
        "inference_samples_per_second": 5000.0,
    },
    "health": {
        "overall": 0.6,
        "components": {"neuron_utilization": 0.95, "training_stability": 0.7, "gradient_health": 1.0},
    },
}
ALL_CALLBACKS = {
    "health": {"_target_": "lightsweep.callbacks.health.HealthMonitor"},
    "efficiency": {"_target_": "lightsweep.callbacks.efficiency.EfficiencyProfiler"},
}


def objective(name, mode="simple", weight=0.3):
    return compose([f"objective.name={name}", f"objective.mode={mode}", f"objective.health_weight={weight}"])


def plain(cfg, callbacks=ALL_CALLBACKS):
    from omegaconf import OmegaConf

    return {"objective": OmegaConf.to_container(cfg.objective, resolve=True), "callbacks": callbacks}


def test_the_twelve_objectives_each_have_a_direction_derived_in_the_config():
    assert len(OBJECTIVES) == 12
    minimized = {name for name in OBJECTIVES if objective(name, "health").objective.direction == "minimize"}
    assert minimized == {"training_time", "memory_efficiency"}
    assert objective("[val_accuracy,training_time]").objective.direction == ["maximize", "minimize"]
    assert compose([]).objective.direction == "maximize"  # default: val_accuracy


def test_simple_mode_reads_each_value_from_the_measurements():
    expected = {
        "val_accuracy": 0.9,
        "accuracy": 0.9,
        "test_accuracy": 0.8,
        "f1_macro": 0.75,
        "training_time": 12.5,
        "parameter_efficiency": 0.9 * 0.5,  # 1M parameters halve the score
        "memory_efficiency": 700.0,
        "inference_speed": 5000.0,
    }
    for name, value in expected.items():
        result, record = objective_value(plain(objective(name))["objective"], MEASURED)
        assert result == pytest.approx(value), name
        assert record["mode"] == "simple" and record["components"] == {name: pytest.approx(value)}


def test_health_mode_blends_exactly_and_health_scores_read_the_health_record():
    for name, raw in (("val_accuracy", 0.9), ("neuron_utilization", 0.95), ("overall_health", 0.6)):
        result, record = objective_value(plain(objective(name, "health", 0.25))["objective"], MEASURED)
        assert result == pytest.approx(0.75 * raw + 0.25 * 0.6), name
        assert record["components"] == {name: pytest.approx(raw), "overall_health": 0.6}
        assert record["health_weight"] == 0.25


def test_a_list_gives_a_list_and_measured_quantities_are_not_blended():
    cfg = plain(objective("[val_accuracy,training_time]", "health"))
    check_objective(cfg, in_sweep=True)
    result, record = objective_value(cfg["objective"], MEASURED)
    assert result == [pytest.approx(0.7 * 0.9 + 0.3 * 0.6), 12.5]
    assert record["direction"] == ["maximize", "minimize"]


def test_a_diverged_run_gives_nan():
    measured = dict(MEASURED, metrics={"val/acc": math.inf})
    assert math.isnan(objective_value(plain(objective("val_accuracy"))["objective"], measured)[0])


def test_a_value_the_run_did_not_produce_is_a_clear_error():
    with pytest.raises(ConfigError, match="val/acc"):
        objective_value(plain(objective("val_accuracy"))["objective"], dict(MEASURED, metrics={"train/loss": 1.0}))


def test_an_unmeasured_health_score_is_a_clear_error_not_a_made_up_value():
    unmeasured = dict(MEASURED, health={"overall": 0.6, "components": {"training_stability": None}})
    with pytest.raises(ConfigError, match="^objective training_stability was not measured in this run"):
        objective_value(plain(objective("training_stability", mode="health"))["objective"], unmeasured)
    no_overall = dict(MEASURED, health={"overall": None, "components": {}})
    with pytest.raises(ConfigError, match="^objective overall_health was not measured"):
        objective_value(plain(objective("val_accuracy", mode="health"))["objective"], no_overall)


@pytest.mark.parametrize(
    ("overrides", "callbacks", "in_sweep", "message"),
    [
        (["objective.name=gradient_health"], ALL_CALLBACKS, False, "objective.mode=health"),
        (["objective.mode=health"], {"efficiency": ALL_CALLBACKS["efficiency"]}, False, "health callback"),
        (["objective.name=inference_speed"], {"health": ALL_CALLBACKS["health"]}, False, "efficiency callback"),
        (["objective.name=test_accuracy"], ALL_CALLBACKS, True, "test data"),
        (["objective.name=[val_accuracy,f1_macro]"], ALL_CALLBACKS, True, "test data"),
        (["objective.name=training_time", "objective.mode=health"], ALL_CALLBACKS, False, "measured quantity"),
        (["objective.mode=fancy"], ALL_CALLBACKS, False, "simple or health"),
        (["objective.mode=health", "objective.health_weight=1.5"], ALL_CALLBACKS, False, r"\[0, 1\]"),
        (["objective.health_weight=2"], ALL_CALLBACKS, False, r"\[0, 1\]"),  # refused in simple mode too
        (["objective.direction=minimize"], ALL_CALLBACKS, False, "derived"),
        (["+objective.metric=val/acc"], ALL_CALLBACKS, False, "objective.name"),
    ],
)
def test_refusals(overrides, callbacks, in_sweep, message):
    with pytest.raises(ConfigError, match=message):
        check_objective(plain(compose(overrides), callbacks), in_sweep=in_sweep)


def test_an_unknown_name_is_refused_while_the_direction_resolves():
    from omegaconf.errors import InterpolationResolutionError

    with pytest.raises(InterpolationResolutionError, match="val_accuracy, accuracy, test_accuracy"):
        plain(compose(["objective.name=loss"]))


def test_an_unknown_name_on_the_command_line_is_our_one_line_message():
    proc = cli("objective.name=loss")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("lightsweep: error: objective.name='loss' is not valid: give one of val_accuracy")


@pytest.mark.parametrize(
    "name, monitor, monitor_direction, study, watched",
    [
        ("val_accuracy", None, None, "maximize", "val/acc"),  # null: the objective's own metric
        ("accuracy", "val/f1_macro", None, "maximize", "val/f1_macro"),
        ("training_time", "val/loss", None, "minimize", "val/loss"),
        ("memory_efficiency", "val/peak_mb", "minimize", "minimize", "val/peak_mb"),
    ],
)
def test_the_pruning_monitor_improves_in_the_studys_direction(name, monitor, monitor_direction, study, watched):
    assert pruning_monitor(name, monitor, monitor_direction, study) == watched


@pytest.mark.parametrize(
    "name, monitor, monitor_direction, study, message",
    [
        ("training_time", None, None, "minimize", "has no per-epoch metric for the pruner"),
        ("training_time", "val/acc", None, "minimize", "val/acc is maximized but the study minimizes"),
        ("val_accuracy", "val/loss", None, "maximize", "val/loss is minimized but the study maximizes"),
        ("val_accuracy", "val/margin", None, "maximize", "its direction is unknown"),
        ("val_accuracy", "val/acc", "minimize", "maximize", "contradicts val/acc, which is maximized"),
        ("val_accuracy", "val/acc", "up", "maximize", "monitor_direction='up' is not valid"),
    ],
)
def test_a_pruning_monitor_against_the_study_is_refused(name, monitor, monitor_direction, study, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        pruning_monitor(name, monitor, monitor_direction, study)


def test_test_data_objectives_are_allowed_in_single_runs():
    check_objective(plain(objective("test_accuracy")), in_sweep=False)


@pytest.mark.slow
def test_acceptance_health_mode_run_records_health_efficiency_and_the_objective(tmp_path):
    """Issue 5 acceptance 1, through the CLI; the FLOPs per step equal a hand count of the same CNN."""
    result = cli(
        "model=cnn",
        "dataset=digits",
        "callbacks=default",
        "objective.mode=health",
        "trainer.max_epochs=3",
        "model.conv_layers=2",
        "model.filters=8",
        "model.filters_growth=2",
        "model.kernel_size=3",
        "model.batch_norm=true",
        "model.global_pooling=true",
        "model.hidden_layers=1",
        "model.first_hidden_units=16",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((tmp_path / "run.json").read_text())
    health, efficiency, detail = record["health"], record["efficiency"], record["objective_detail"]
    assert len(health["components"]) == 6 and 0.0 <= health["overall"] <= 1.0
    assert isinstance(health["recommendations"], list)
    assert len(efficiency["epoch_seconds"]) == 3 and efficiency["peak_cpu_rss_mb"] > 100
    # batch 64 of 1x8x8 digits: conv 1->8 (8x8), pool, conv 8->16 (4x4), pool, global pool, 16->16->10.
    conv1, conv2 = 2 * 64 * 8 * 8 * 8 * 1 * 9, 2 * 64 * 16 * 4 * 4 * 8 * 9
    dense = 2 * 64 * 16 * 16 + 2 * 64 * 16 * 10
    forward = conv1 + conv2 + dense
    assert (
        efficiency["flops_per_step"] == 3 * forward - conv1
    )  # backward: weight + input grads, no input grad for the images
    assert detail["mode"] == "health" and detail["components"]["overall_health"] == health["overall"]
    assert record["objective"] == pytest.approx(0.7 * record["metrics"]["val/acc"] + 0.3 * health["overall"])
