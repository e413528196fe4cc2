"""Every technique of conf/technique/ composes over a real baseline of each model family and runs a tiny real
training where it applies on this machine, and its effect shows in run.json; where it does not apply, the
reason is the one the report gives. The overrides are the ones `lightsweep efficiency` runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import SHRINK
from lightsweep.config import compose
from lightsweep.efficiency.baseline import baseline_of
from lightsweep.efficiency.techniques import available, load, not_applicable, overrides_for
from lightsweep.train import run

CALLBACKS = "callbacks=[model_checkpoint,efficiency]"  # early stopping not in the baseline: it is a technique
TINY = {
    "cnn": ["dataset=digits", "model.filters=8", "model.conv_layers=1", "trainer.limit_train_batches=2"],
    "timehut": ["model=timehut", "dataset=unit_test", "model.depth=2", "model.hidden_dims=8", "test_ckpt=last"],
    "lstm": ["dataset=imdb", "model.embedding_dim=16", "model.lstm_units=8", "model.hidden_units=[8]"],
}


def effect(name: str, record: dict) -> bool:
    """Whether run.json shows that the technique was in force."""
    config, speed = record["config"], record.get("speed") or {}
    pruning = record.get("channel_pruning") or {}
    checks = {
        "amp_bf16": lambda: record["precision"] == "bf16-mixed",
        "amp_fp16": lambda: record["precision"] == "16-mixed",
        "checkpointing": lambda: speed.get("checkpointing") is True,
        "grad_accumulation": lambda: config["trainer"]["accumulate_grad_batches"] == 2,
        "compile": lambda: bool(speed.get("compile")),
        "data_workers": lambda: config["dataset"]["num_workers"] == 2,
        "channel_pruning": lambda: pruning["params_after"] < pruning["params_before"],
        "int8": lambda: record["int8"]["int8"]["latency_ms_per_sample"] > 0,
        "distillation": lambda: record["distillation"]["teacher_params"] > record["distillation"]["student_params"],
        "early_stopping": lambda: "early_stopping" in config["callbacks"],
        "batch_size_finder": lambda: "batch_size_finder" in record,
        "fused_optimizer": lambda: config["model"]["optimizer"]["fused"] is True,
        "foreach_optimizer": lambda: config["model"]["optimizer"]["foreach"] is True,
        "cpu_threads": lambda: speed.get("threads") == 1,
    }
    return checks[name]()


@pytest.fixture(scope="module")
def baselines(tmp_path_factory, request) -> dict:
    """family -> (overrides, Baseline, its run dir with the teacher checkpoint)."""
    made = {}
    for family, tiny in TINY.items():
        overrides = [*SHRINK, *tiny, CALLBACKS]
        if family == "lstm":
            overrides.append(f"paths.data_dir={request.getfixturevalue('tiny_imdb').parent}")
        run_dir = tmp_path_factory.mktemp(f"baseline-{family}")
        assert run(compose(overrides, output_dir=run_dir)).status == "ok"
        made[family] = (overrides, baseline_of(overrides)[0], run_dir)
    return made


CUDA = "needs CUDA; this run trains on CPU" if not torch.cuda.is_available() else None
NOT_APPLICABLE = {  # (technique, family or *) -> the reason on this machine
    ("cudnn_benchmark", "*"): CUDA,
    ("tf32", "*"): CUDA,
    ("pin_memory", "*"): CUDA,
    ("channel_pruning", "lstm"): "the LSTM's cost is its recurrent cell",
    ("fused_optimizer", "timehut"): "already fused",
    ("foreach_optimizer", "timehut"): "already fused",
    ("cpu_threads", "lstm"): "already trains with one thread",
    ("amp_fp16", "lstm"): "no float16 LSTM" if not torch.cuda.is_available() else None,
    ("early_stopping", "timehut"): "no validation loop",
    ("batch_size_finder", "timehut"): "two dataloaders",
    ("compile", "*"): "needs a C++ compiler" if shutil.which("g++") is None else None,
}
CASES = [(name, family) for name in available() for family in TINY]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "family"), CASES, ids=[f"{n}-{f}" for n, f in CASES])
def test_each_technique_runs_where_it_applies(name, family, baselines, tmp_path):
    overrides, baseline, baseline_dir = baselines[family]
    technique = load(name)
    reason = not_applicable(technique, baseline)
    if reason is not None:  # the report's row says this: it must be the expected reason, never an accident
        expected = NOT_APPLICABLE.get((name, family)) or NOT_APPLICABLE.get((name, "*"))
        assert expected and expected in reason, reason
        return
    teacher = str(Path(baseline_dir) / "checkpoints" / "last.ckpt")
    result = run(compose([*overrides, *overrides_for([technique], baseline, teacher)], output_dir=tmp_path))
    record = json.loads((tmp_path / "run.json").read_text())
    assert result.status == "ok", record.get("error")
    assert effect(name, record), {k: record.get(k) for k in ("precision", "speed", name)}
