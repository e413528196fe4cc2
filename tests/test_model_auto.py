"""model=auto (the default) with model settings: they reach the family auto picks, or are refused naming it;
`--cfg job` shows the model that will be built."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from conftest import cli
from lightsweep.config import auto_family_overrides, compose
from lightsweep.models.registry import resolve_model_config


def first_conv_filters(run_dir) -> int:
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    return next(tensor.shape[0] for tensor in state.values() if tensor.dim() == 4)


@pytest.mark.parametrize("override", ["+model.filters=8", "model.filters=8"])
def test_model_setting_with_auto_reaches_the_built_model(run_cfg, tmp_path, override):
    result, record = run_cfg(["trainer.max_epochs=1", override], output_dir=tmp_path / "run")
    assert record["model_family"] == "cnn" and result.model_family == "cnn"
    assert record["config"]["model"]["filters"] == 8
    assert first_conv_filters(tmp_path / "run") == 8  # the weights trained, not only the recorded config


def test_nested_setting_with_auto_keeps_the_rest_of_its_node():
    model = compose(["model.optimizer.lr=0.05"]).model
    assert model._target_ == "lightsweep.models.cnn.CNNClassifier"
    assert model.optimizer == {"_target_": "torch.optim.Adam", "lr": 0.05, "weight_decay": 0.0}


def test_the_family_follows_the_dataset():
    model = compose(["dataset=imdb", "model.dropout=0.2"]).model
    assert model._target_ == "lightsweep.models.lstm.LSTMClassifier" and model.dropout == 0.2


def test_unknown_model_setting_with_auto_is_refused_naming_the_family():
    proc = cli("+model.nope=1", "trainer.max_epochs=1")
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "model.nope" in lines[0] and "lightsweep.models.cnn.CNNClassifier" in lines[0]


def test_cfg_job_shows_the_model_auto_picks():
    proc = cli("--cfg", "job")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "_target_: lightsweep.models.cnn.CNNClassifier" in proc.stdout and "\n  filters: 16\n" in proc.stdout
    assert "family: auto" not in proc.stdout
    assert "model=auto picks cnn" in proc.stderr  # stdout stays the YAML alone


def test_cfg_job_shows_model_settings_with_auto():
    proc = cli("model.filters=8", "--cfg", "job", "--resolve")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\n  filters: 8\n" in proc.stdout


def test_cfg_hydra_is_left_to_hydra():
    proc = cli("--cfg", "hydra")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "model: auto" in proc.stdout  # hydra.runtime.choices: nothing was picked


def test_help_imports_neither_torch_nor_lightning():
    code = (
        "import sys\nfrom lightsweep.cli import train_entry\nsys.argv = ['train.py', '--help']\n"
        "try:\n    train_entry()\nexcept SystemExit:\n    pass\n"
        "print('heavy:', sorted({'torch', 'lightning'} & set(sys.modules)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert "== Config groups" in proc.stdout and "heavy: []" in proc.stdout, proc.stdout[-500:] + proc.stderr


def test_overrides_pick_the_family_only_for_model_auto():
    assert auto_family_overrides(["model.filters=8,16"]) == (["model=cnn", "model.filters=8,16"], "cnn")
    assert auto_family_overrides(["model=auto", "+model.dropout=0.3"]) == (["model=cnn", "model.dropout=0.3"], "cnn")
    assert auto_family_overrides(["+model.nope=1"]) == (["model=cnn", "+model.nope=1"], "cnn")  # the validator's
    for explicit in (["model=lstm", "model.dropout=0.1"], ["model=cnn,lstm", "model.dropout=0.1"], ["seed=1"]):
        assert auto_family_overrides(explicit) == (explicit, None)


def test_resolve_merges_settings_into_the_family_auto_picks():
    family, model = resolve_model_config({"family": "auto", "filters": 8, "optimizer": {"lr": 0.1}}, "image")
    assert family == "cnn" and model["filters"] == 8 and model["conv_layers"] == 3
    assert model["optimizer"] == {"_target_": "torch.optim.Adam", "lr": 0.1, "weight_decay": 0.0}
    assert "family" not in model


def test_model_setting_with_auto_over_a_sweep_of_datasets_asks_for_a_family():
    # Each dataset of the sweep may pick another family: there is no one model to set the key of.
    proc = cli("-m", "dataset=digits,imdb", "model.dropout=0.2")
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "model=auto" in lines[0] and "model=<cnn|lstm|timehut>" in lines[0], lines
