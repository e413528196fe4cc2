"""The technique callbacks through real composed runs on digits: channel pruning removes FLOPs and
parameters, INT8 inference measures the tested network and its INT8 copy, distillation trains against a
teacher from an earlier run; a model family without the technique gets one clear line."""

from __future__ import annotations

import pytest

from conftest import tiny_lstm
from lightsweep.errors import ConfigError

TINY = [
    "model=cnn",
    "dataset=digits",
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
]


def test_channel_pruning_removes_flops_and_parameters_then_fine_tunes(run_cfg):
    result, record = run_cfg([*TINY, "callbacks=[model_checkpoint,efficiency,channel_pruning]"])
    pruning = record["channel_pruning"]
    assert result.status == "ok" and pruning["applied"] and pruning["at_epoch"] == 1
    assert pruning["flops_per_step_after"] < pruning["flops_per_step_before"]
    assert pruning["params_after"] < pruning["params_before"]
    assert pruning["channels_after"] == pruning["channels_before"] // 2  # 16+32+64 filters, half of each kept
    assert all(after < before for before, after in pruning["layers"].values())
    # the same step as efficiency's count (its first, before pruning), and it reports the pruned network
    assert pruning["flops_per_step_before"] == record["efficiency"]["flops_per_step"]
    assert record["efficiency"]["parameters"] == pruning["params_after"]
    assert record["tested_weights"].endswith(".ckpt") and record["objective_epoch"] == 1  # a pruned checkpoint


def test_channel_pruning_needs_an_epoch_to_fine_tune(run_cfg):
    with pytest.raises(ConfigError, match=r"needs at least 2 epochs .* this run plans 1: raise trainer.max_epochs"):
        run_cfg([*TINY, "trainer.max_epochs=1", "callbacks=[channel_pruning]"])


def test_int8_inference_measures_the_tested_network_and_its_int8_copy(run_cfg):
    _, record = run_cfg([*TINY, "callbacks=[model_checkpoint,int8_inference]"])
    int8 = record["int8"]
    assert int8["backend"] and int8["batch_size"] == 64 and int8["threads"] >= 1
    for network in ("float", "int8"):
        assert int8[network]["latency_ms_per_sample"] > 0
        assert 0.0 <= int8[network]["accuracy"] <= 1.0 and 0.0 <= int8[network]["f1_macro"] <= 1.0
    assert int8["float"]["accuracy"] == pytest.approx(record["metrics"]["test/acc"])  # the tested weights
    assert int8["int8"]["size_mb"] < int8["float"]["size_mb"] / 2


def test_distillation_trains_against_a_wider_teacher_from_an_earlier_run(run_cfg, tmp_path):
    _, teacher_run = run_cfg([*TINY, "callbacks=[model_checkpoint]", "model.filters=16"], tmp_path / "teacher")
    teacher = teacher_run["tested_weights"]
    result, record = run_cfg(
        [*TINY, "callbacks=[distillation]", "model.filters=4", f"callbacks.distillation.teacher={teacher}"]
    )
    distillation = record["distillation"]
    assert result.status == "ok" and distillation["teacher"] == teacher
    assert distillation["teacher_params"] > distillation["student_params"] > 0
    assert (distillation["weight"], distillation["temperature"]) == (0.5, 2.0)


def test_distillation_teacher_that_is_not_a_checkpoint_is_named(run_cfg, tmp_path):
    missing = tmp_path / "nowhere.ckpt"
    with pytest.raises(ConfigError, match=rf"^callbacks.distillation.teacher={missing} is not a file"):
        run_cfg([*TINY, "callbacks=[distillation]", f"callbacks.distillation.teacher={missing}"])
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    not_loaded = rf"^callbacks.distillation.teacher={text} cannot be loaded as a CNNClassifier checkpoint"
    with pytest.raises(ConfigError, match=not_loaded):
        run_cfg([*TINY, "callbacks=[distillation]", f"callbacks.distillation.teacher={text}"])


def test_a_family_without_channel_pruning_gets_one_line(run_cfg, tiny_imdb):
    text = [*tiny_lstm(tiny_imdb), "trainer.max_epochs=2", "callbacks=[channel_pruning]"]
    refused = r"^callbacks.channel_pruning: LSTMClassifier cannot remove channels \(no prune_channels\)"
    with pytest.raises(ConfigError, match=refused) as caught:
        run_cfg(text)
    assert "\n" not in str(caught.value)
