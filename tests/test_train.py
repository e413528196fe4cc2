"""The one run path end to end: compose the real config, shrink it, train, test, record."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from lightsweep.config import compose
from lightsweep.errors import ConfigError
from lightsweep.train import run


def test_cnn_digits_fit_records_everything(run_cfg):
    result, record = run_cfg(["model=cnn", "dataset=digits", "trainer.max_epochs=3", "seed=1"])
    assert result.status == record["status"] == "ok"
    for name in ("train/loss", "val/loss", "val/acc", "test/acc", "test/f1_macro"):
        assert 0.0 <= record["metrics"][name] < 10.0, name
    assert record["metrics"]["test/acc"] > 0.85  # 3 epochs on real digits
    assert record["objective"] == pytest.approx(record["metrics"]["val/acc"])
    assert record["model_family"] == "cnn" and record["epochs_trained"] == 3
    assert set(record["timings"]) == {"train_s", "test_s", "epoch_s"} and record["timings"]["train_s"] > 0
    assert len(record["timings"]["epoch_s"]) == 3 and sum(record["timings"]["epoch_s"]) <= record["timings"]["train_s"]
    assert record["config"]["model"]["_target_"] == "lightsweep.models.cnn.CNNClassifier"
    assert record["config"]["seed"] == 1 and record["seed"] == 1
    assert set(record["versions"]) >= {"python", "torch", "lightning", "hydra", "optuna"}
    assert record["started"] <= record["finished"]
    assert "git_sha" in record and "overrides" in record


def epoch_values(run_dir: Path, name: str) -> dict[int, float]:
    """{epoch: value} of a per-epoch metric in the run's metrics.csv."""
    with (run_dir / "metrics.csv").open() as rows:
        return {int(row["epoch"]): float(row[name]) for row in csv.DictReader(rows) if row.get(name)}


def test_objective_comes_from_the_epoch_of_the_tested_weights(run_cfg, tmp_path):
    # lr=0.3 overshoots on digits: an early epoch validates best and the last one is worse.
    _, record = run_cfg(
        [
            "model=cnn",
            "dataset=digits",
            "callbacks=[model_checkpoint]",
            "trainer.max_epochs=4",
            "model.optimizer.lr=0.3",
            "seed=0",
        ]
    )
    val_acc = epoch_values(tmp_path / "run", "val/acc")
    best = max(val_acc, key=lambda epoch: (val_acc[epoch], -epoch))  # the checkpoint keeps the first best
    assert val_acc[3] < val_acc[best], f"premise: the last epoch must validate worse than the best ({val_acc})"
    assert record["objective"] == pytest.approx(val_acc[best])
    assert record["objective_epoch"] == best
    assert record["metrics"]["val/acc"] == pytest.approx(val_acc[best])
    assert torch.load(record["tested_weights"], weights_only=False)["epoch"] == best  # the weights tested


def test_auto_model_picks_cnn_for_images(run_cfg):
    result, record = run_cfg(["model=auto", "dataset=digits", "trainer.max_epochs=1"])
    assert result.model_family == record["model_family"] == "cnn"
    assert record["config"]["model"]["_target_"].endswith("CNNClassifier")


def test_seeded_runs_are_identical(run_cfg, tmp_path):
    args = ["dataset=digits", "trainer.max_epochs=1", "seed=7"]
    first, _ = run_cfg(args, tmp_path / "a")
    second, _ = run_cfg(args, tmp_path / "b")
    assert first.metrics == second.metrics


def test_failed_run_writes_failed_record(tmp_path):
    out = tmp_path / "run"
    cfg = compose(["dataset=mnist", f"paths.data_dir={tmp_path}/nowhere"], output_dir=out)
    with pytest.raises(ConfigError, match="train-images-idx3-ubyte.gz is missing"):
        run(cfg)
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed" and "missing" in record["error"]
    assert record["metrics"] == {} and record["objective"] is None


def test_resume_from_last_checkpoint_continues_training(run_cfg, tmp_path):
    _, first = run_cfg(["trainer.max_epochs=2"], tmp_path / "first")
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    assert last.is_file()
    _, resumed = run_cfg(["trainer.max_epochs=3", f"ckpt_path={last}"], tmp_path / "resumed")
    assert resumed["epochs_trained"] == 3
    lines = (tmp_path / "resumed" / "metrics.csv").read_text().splitlines()
    rows = [dict(zip(lines[0].split(","), line.split(","))) for line in lines[1:]]
    trained = {row["epoch"] for row in rows if row.get("train/loss")}
    assert trained == {"2"}, "the resumed run must train only the remaining epoch"


@pytest.mark.parametrize(("choice", "flag"), [("bf16", "bf16-mixed"), ("16", "16-mixed")])
def test_mixed_precision_runs_on_cpu(run_cfg, choice, flag):
    result, record = run_cfg([f"precision={choice}", "trainer.max_epochs=1"])
    assert record["status"] == "ok" and record["precision"] == flag
    assert 0.0 < record["metrics"]["train/loss"] < 10.0


def test_double_precision_runs(run_cfg):
    _, record = run_cfg(["precision=64", "trainer.max_epochs=1"])
    assert record["precision"] == "64-true" and record["status"] == "ok"


@pytest.mark.slow
def test_ddp_spawn_with_two_cpu_processes(run_cfg):
    result, record = run_cfg(
        ["strategy=ddp_spawn", "trainer.devices=2", "trainer.accelerator=cpu", "trainer.max_epochs=2"]
    )
    assert record["status"] == "ok" and record["world_size"] == 2
    assert record["metrics"]["test/acc"] > 0.5
