"""The speed block of conf/train.yaml: every shipped value composes and runs a tiny step, what ran is in
run.json "speed", process-wide settings end with the run, and bad values are refused all at once."""

from __future__ import annotations

import shutil

import lightning as L
import pytest
import torch

from conftest import tiny_lstm
from lightsweep.config import compose
from lightsweep.errors import ConfigError
from lightsweep.session import resolved_config
from lightsweep.speed import apply_speed, settle_model_threads
from lightsweep.validate import validate

# One conv block of 2 filters, one training step, no validation: the smallest run that trains digits.
TINY = [
    "model=cnn",
    "dataset=digits",
    "model.conv_layers=1",
    "model.filters=2",
    "model.hidden_layers=0",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=0",
    "trainer.limit_test_batches=1",
    "callbacks=none",
    "objective.name=training_time",
]


def test_defaults_change_nothing_and_are_recorded(run_cfg):
    threads = torch.get_num_threads()
    _, record = run_cfg(TINY)
    speed = record["speed"]
    assert speed["compile"] is False and speed["checkpointing"] is False
    assert speed["threads"] == threads and speed["matmul_precision"] == "highest"
    assert speed["first_step_s"] > 0 and speed["next_steps_median_s"] > 0


@pytest.mark.parametrize(
    ("override", "key", "expected"),
    [
        ("speed.threads=1", "threads", 1),
        ("speed.matmul_precision=high", "matmul_precision", "high"),
        ("speed.matmul_precision=medium", "matmul_precision", "medium"),
        ("speed.checkpointing=true", "checkpointing", True),
    ],
)
def test_each_setting_runs_and_ends_with_the_run(run_cfg, override, key, expected):
    threads, precision = torch.get_num_threads(), torch.get_float32_matmul_precision()
    result, record = run_cfg([*TINY, override])
    assert result.status == "ok" and record["speed"][key] == expected
    assert (torch.get_num_threads(), torch.get_float32_matmul_precision()) == (threads, precision)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="torch.compile on CPU needs g++ (make cxx installs it)")
@pytest.mark.parametrize("mode", ["default", "reduce-overhead", "max-autotune"])
def test_compile_runs_the_compiled_network(run_cfg, mode):
    from lightsweep.models.cnn import CNNClassifier

    _, record = run_cfg([*TINY, "speed.compile=true", f"speed.compile_mode={mode}"])
    assert record["speed"]["compile"] == {"mode": mode, "network": "CNNClassifier"}
    model = CNNClassifier((1, 8, 8), 10, conv_layers=1, filters=4)
    traced = []
    model.net[0].register_forward_hook(lambda *_: traced.append(torch.compiler.is_compiling()))
    torch._dynamo.reset()  # else a graph compiled by an earlier test is reused and the hook is not traced again
    apply_speed(model, {"compile": True, "compile_mode": mode}, "cnn", on_cuda=False)
    model(torch.randn(2, 1, 8, 8))
    assert traced == [True]  # the network's forward ran through dynamo


def test_compile_on_cpu_without_a_cpp_compiler_says_how_to_install_one():
    from torch._inductor import config

    # config.patch, not monkeypatch: undoing a setattr on torch's config module deletes the key for later tests
    with (
        config.patch({"cpp.cxx": (None, "no-such-c++")}),
        pytest.raises(ConfigError, match=r"needs a C\+\+ compiler \(no-such-c\+\+\).*apt-get install g\+\+"),
    ):
        apply_speed(L.LightningModule(), {"compile": True}, "plain", on_cuda=False)
    assert config.cpp.cxx != (None, "no-such-c++")  # restored


def test_checkpointing_on_a_family_without_it_is_refused():
    with pytest.raises(ConfigError, match=r"^model=plain has no activation checkpointing \(LightningModule"):
        apply_speed(L.LightningModule(), {"checkpointing": True}, "plain", on_cuda=False)


def test_speed_threads_wins_over_the_lstms_own_threads(tmp_path):
    config, _ = resolved_config(compose(["model=lstm", "dataset=imdb", "speed.threads=3"], output_dir=tmp_path))
    assert config["model"]["cpu_threads"] == 1  # the LSTM's own default
    settle_model_threads(config)
    assert config["model"]["cpu_threads"] == 3
    untouched, _ = resolved_config(compose(["model=cnn", "speed.threads=3"], output_dir=tmp_path))
    settle_model_threads(untouched)
    assert "cpu_threads" not in untouched["model"]


def test_every_bad_speed_value_is_reported_at_once(tmp_path):
    config, _ = resolved_config(
        compose(
            [
                "speed.compile=maybe",
                "speed.compile_mode=fast",
                "speed.threads=0",
                "speed.matmul_precision=low",
                "+speed.thread=2",
            ],
            output_dir=tmp_path,
        )
    )
    with pytest.raises(ConfigError) as caught:
        validate(config)
    message = str(caught.value)
    assert message.startswith("5 problems in the config")
    for expected in (
        "speed.compile='maybe' must be true or false.",
        "speed.compile_mode='fast' is not valid: use default, reduce-overhead, max-autotune.",
        "speed.threads=0 must be null (torch's default) or a positive integer",
        "speed.matmul_precision='low' is not valid: use highest, high, medium.",
        "speed.thread is not a setting of the speed block. Did you mean speed.threads?",
    ):
        assert expected in message


def test_an_lstm_run_trains_with_speed_threads_not_its_own(run_cfg, tiny_imdb):
    text = [*tiny_lstm(tiny_imdb), "trainer.max_epochs=1", "callbacks=none", "speed.threads=2"]
    _, record = run_cfg(text)
    assert record["speed"]["threads"] == 2  # the LSTM's setup would have set its model.cpu_threads=1
    assert record["config"]["model"]["cpu_threads"] == 2
