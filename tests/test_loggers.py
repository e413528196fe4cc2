"""The tracking loggers on a real shrunk run, W&B offline and MLflow with its local SQLite store (their
logged metrics read back from their stores), and the one line naming the `tracking` extra when their
library cannot be imported."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest
from test_errors import assert_one_line_error

from conftest import cli

DIGITS = ["model=cnn", "dataset=digits", "callbacks=[model_checkpoint]", "seed=0"]


def wandb_history(run_file: Path) -> list[dict]:
    """The history rows of a finished offline W&B run. W&B's service writes the file out shortly after
    wandb.finish() returns, so it is read again until the run's exit record is there."""
    deadline = time.monotonic() + 120
    while not (records := wandb_records(run_file)) or records[-1].WhichOneof("record_type") != "exit":
        assert time.monotonic() < deadline, f"W&B never wrote out {run_file}"
        time.sleep(0.05)
    return [
        {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
        for record in records
        if record.WhichOneof("record_type") == "history"
    ]


def wandb_records(run_file: Path) -> list:
    """The records of a .wandb file, a LevelDB-style log: a 7-byte header (':W&B', magic, version), then
    32 KiB blocks of chunks, each a 7-byte header (crc32, length, type: 1 whole, 2 first, 3 middle, 4 last
    part) and bytes of a wandb_internal_pb2.Record."""
    from wandb.proto import wandb_internal_pb2

    data, block = run_file.read_bytes(), 32768
    assert data[:4] == b":W&B"
    records, pending, position = [], b"", 7
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a chunk header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if position + 7 + length > len(data):
            break  # not written out yet
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            records.append(wandb_internal_pb2.Record.FromString(pending))
            pending = b""
    return records


@pytest.fixture
def wandb_offline(tmp_path, monkeypatch):
    """W&B without network or account; its caches and settings in the test's temp dir, not the home dir."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    for variable in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / "wandb-home" / variable.lower()))


@pytest.mark.slow
def test_wandb_offline_logs_every_epoch_of_each_run(run_cfg, tmp_path, wandb_offline):
    for name in ("first", "second"):  # two runs in one process, like a sweep's in-process jobs: a W&B run each
        _, record = run_cfg([*DIGITS, "logger=wandb"], tmp_path / name)
        (run_file,) = (tmp_path / name / "wandb").glob("offline-run-*/run-*.wandb")
        rows = wandb_history(run_file)
        val_acc = {row["epoch"]: row["val/acc"] for row in rows if "val/acc" in row}
        assert sorted(val_acc) == [0, 1], rows
        assert val_acc[record["objective_epoch"]] == pytest.approx(record["metrics"]["val/acc"])
        assert [row["test/acc"] for row in rows if "test/acc" in row] == pytest.approx([record["metrics"]["test/acc"]])


@pytest.mark.slow
def test_mlflow_local_store_holds_the_run_metrics(run_cfg, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the config's own local store, under paths.log_dir
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # MLflow would report usage and keep an id in ~/.config
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    _, record = run_cfg([*DIGITS, "logger=mlflow", f"paths.log_dir={tmp_path}"])
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("lightsweep").experiment_id])
    assert run.info.status == "FINISHED"
    history = sorted(client.get_metric_history(run.info.run_id, "val/acc"), key=lambda m: (m.step, m.timestamp))
    assert len(history) == 2
    assert history[record["objective_epoch"]].value == pytest.approx(record["metrics"]["val/acc"])
    assert run.data.metrics["test/acc"] == pytest.approx(record["metrics"]["test/acc"])


@pytest.mark.parametrize("library", ["wandb", "mlflow"])
def test_a_tracking_logger_without_its_library_is_one_line(tmp_path, monkeypatch, library):
    fake = tmp_path / "site" / library  # found first on PYTHONPATH: `import <library>` fails as if not installed
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(f"raise ImportError('No module named {library} (hidden by the test)')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    assert_one_line_error(
        cli(f"logger={library}", "trainer.max_epochs=1", "trainer.enable_progress_bar=false"),
        f"logger.{library} needs {library}",
        "pip install 'lightsweep[tracking]'",
    )
