"""The efficiency optimizer (lightsweep.efficiency): the technique files, where each applies, the overrides
they make, the optimized config handed back, and `lightsweep efficiency` end to end on a tiny CNN run
(report, results, plots, optimized.yaml, command.txt; an interrupted run resumes from its cache)."""

from __future__ import annotations

import json

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import cli
from lightsweep.config import compose
from lightsweep.efficiency.artifacts import experiment_config
from lightsweep.efficiency.baseline import baseline_of
from lightsweep.efficiency.techniques import Baseline, available, conflicts, load, not_applicable, overrides_for
from lightsweep.errors import ConfigError

CPU_CNN = Baseline(
    "cnn",
    "cpu",
    ("model_checkpoint", "early_stopping", "efficiency"),
    {
        "dataset.batch_size": 64,
        "trainer.accumulate_grad_batches": 1,
        "model.filters": 16,
        "model.first_hidden_units": 128,
    },
)


def test_every_technique_file_loads_with_a_description():
    names = available()
    assert {
        "amp_bf16",
        "amp_fp16",
        "checkpointing",
        "grad_accumulation",
        "compile",
        "cudnn_benchmark",
        "tf32",
        "data_workers",
        "pin_memory",
        "channel_pruning",
        "int8",
        "distillation",
        "early_stopping",
        "batch_size_finder",
        "fused_optimizer",
        "foreach_optimizer",
        "cpu_threads",
    } <= set(names)
    for name in names:
        technique = load(name)
        assert technique.description and "\n" not in technique.description, name


def test_a_bad_technique_file_or_name_is_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="unknown technique 'warp_drive': valid techniques are amp_bf16"):
        load("warp_drive")
    import lightsweep.efficiency.techniques as techniques

    (tmp_path / "odd.yaml").write_text("overrides: [a=1]\nkind: magic\nrequires: [luck]\ncolour: red\n")
    monkeypatch.setattr(techniques, "TECHNIQUE_DIR", tmp_path)
    with pytest.raises(ConfigError) as error:
        load("odd")
    message = str(error.value)
    assert "unknown field 'colour'" in message and "description" in message and "kind='magic'" in message
    assert "requires 'luck'" in message  # every problem at once


def test_where_a_technique_applies_and_why_not():
    assert not_applicable(load("cudnn_benchmark"), CPU_CNN) == "needs CUDA; this run trains on CPU"
    assert not_applicable(load("early_stopping"), CPU_CNN) == "already in the baseline (callbacks.early_stopping)"
    assert not_applicable(load("checkpointing"), CPU_CNN) is None
    lstm = Baseline("lstm", "cpu", (), {"dataset.batch_size": 32})
    assert "recurrent cell" in not_applicable(load("channel_pruning"), lstm)
    assert "no checkpoint" in not_applicable(load("distillation"), lstm)  # the teacher would be missing
    timehut = Baseline("timehut", "cpu", ("model_checkpoint",), {"dataset.batch_size": 8})
    assert "already fused" in not_applicable(load("fused_optimizer"), timehut)
    assert "model.hidden_dims is not set" in not_applicable(load("distillation"), timehut)


def test_overrides_scale_the_baseline_and_add_callbacks():
    assert overrides_for([load("grad_accumulation")], CPU_CNN) == [
        "dataset.batch_size=32",
        "trainer.accumulate_grad_batches=2",
    ]
    combined = overrides_for([load("channel_pruning"), load("amp_bf16")], CPU_CNN)
    assert combined == ["precision=bf16", "callbacks=[model_checkpoint,early_stopping,efficiency,channel_pruning]"]
    distilled = overrides_for([load("distillation")], CPU_CNN, teacher="/runs/b/last.ckpt")
    assert "callbacks.distillation.teacher=/runs/b/last.ckpt" in distilled
    assert {"model.filters=8", "model.first_hidden_units=64"} <= set(distilled)
    assert conflicts([load("amp_bf16"), load("amp_fp16")], CPU_CNN)
    assert not conflicts([load("amp_bf16"), load("grad_accumulation")], CPU_CNN)


def test_the_baseline_is_composed_as_train_py_would():
    baseline, extra, name, seed = baseline_of(["experiment=timehut_chinatown"])
    assert (baseline.family, baseline.device, name, seed, extra) == ("timehut", "cpu", "timehut_chinatown", 42, [])
    assert baseline.callbacks == ("model_checkpoint", "health", "efficiency", "plots")
    assert baseline.values["dataset.batch_size"] == 8 and baseline.values["model.hidden_dims"] == 64
    baseline, extra, name, _ = baseline_of(["dataset=digits", "callbacks=[model_checkpoint]"])
    assert name == "digits_cnn" and extra == ["callbacks=[model_checkpoint,efficiency]"]  # FLOPs and memory
    with pytest.raises(ConfigError, match="use --seeds"):
        baseline_of(["seed=3"])


def test_optimized_yaml_is_the_same_run_as_the_command(tmp_path):
    overrides = [
        "experiment=timehut_chinatown",
        "trainer.max_epochs=20",
        "precision=bf16",
        "callbacks=[model_checkpoint,health,efficiency,plots,channel_pruning]",
        "+dataset.num_workers=2",
    ]
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "optimized.yaml").write_text(experiment_config(overrides, "# test\n"))
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from lightsweep.paths import CONF_DIR

    searchpath = f"hydra.searchpath=[file://{tmp_path}]"
    with initialize_config_dir(config_dir=str(CONF_DIR), job_name="train"):
        as_experiment = hydra_compose("train", overrides=[searchpath, "experiment=optimized"])
    as_command = compose(overrides)
    drop = ("paths",)  # run folders differ by design
    plain = [OmegaConf.to_container(c, resolve=False) for c in (as_experiment, as_command)]
    assert {k: v for k, v in plain[0].items() if k not in drop} == {k: v for k, v in plain[1].items() if k not in drop}
    assert plain[0]["trainer"]["max_epochs"] == 20 and "channel_pruning" in plain[0]["callbacks"]


@pytest.mark.slow
def test_lightsweep_efficiency_measures_judges_writes_and_resumes(tmp_path):
    args = [
        "lightsweep",
        "efficiency",
        "dataset=digits",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        "model.filters=8",
        "model.conv_layers=1",
        "--techniques",
        "cpu_threads,cudnn_benchmark,fused_optimizer",
        "--repeats",
        "2",
        "--seeds",
        "0",
        "1",
        "--out",
        str(tmp_path),
    ]
    proc = cli(*args, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "digits_cnn"
    results = json.loads((out / "results.json").read_text())
    rows = {row["label"]: row for row in results["rows"]}
    assert set(rows) >= {"cpu_threads", "cudnn_benchmark", "fused_optimizer"}
    assert rows["cudnn_benchmark"]["verdict"] == "not applicable: needs CUDA; this run trains on CPU"
    for label in ("cpu_threads", "fused_optimizer"):
        assert rows[label]["status"] in ("kept", "rejected"), rows[label]
        figures = results["figures"][label]
        assert figures["runs"] == 2 and figures["time_ratio"]["n"] == 2 and figures["accuracy"] > 0.5
        assert figures["flops_per_step"] > 0 and figures["peak_mb"] > 100
    assert [run["seed"] for run in results["runs"]["baseline"]] == [0, 1]
    report = (out / "report.md").read_text()
    assert "| cudnn_benchmark | not applicable: needs CUDA" in report and "## Recommendation" in report
    assert {p.name for p in (out / "plots").iterdir()} >= {"time_ratio.png", "pareto.png"}
    command = (out / "command.txt").read_text()
    assert command.startswith("python train.py dataset=digits trainer.max_epochs=1")
    assert yaml.safe_load((out / "optimized.yaml").read_text())["trainer"]["max_epochs"] == 1

    # Interrupted after this: a rerun finds every measurement cached and runs nothing again.
    run_jsons = sorted(out.glob("runs/**/run.json"))
    stamps = [p.stat().st_mtime_ns for p in run_jsons]
    proc = cli(*args, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [p.stat().st_mtime_ns for p in sorted(out.glob("runs/**/run.json"))] == stamps

    # A run lost (its cache entry gone, as when the optimizer was killed during it) is the only one run again.
    cache = json.loads((out / "measurements.json").read_text())
    lost = next(key for key, run in cache.items() if "+model.optimizer.fused=true" in run["overrides"])
    del cache[lost]
    (out / "measurements.json").write_text(json.dumps(cache))
    proc = cli(*args, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    changed = [p for p, stamp in zip(run_jsons, stamps, strict=True) if p.stat().st_mtime_ns != stamp]
    assert len(changed) == 1 and "fused_optimizer" in str(changed[0])


def test_bad_arguments_are_one_line_each(tmp_path):
    proc = cli("lightsweep", "efficiency", "--repeats", "0", "--techniques", "amp_bf16,warp", "--out", str(tmp_path))
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert "--repeats 0 must be at least 1" in line and "unknown technique(s) warp: valid are" in line


def test_a_pruned_run_counts_its_cheaper_steps_after_pruning(tmp_path):
    from lightsweep.efficiency.measure import summarise

    record = {
        "status": "ok",
        "epochs_trained": 4,
        "timings": {"train_s": 2.0},
        "metrics": {"test/acc": 0.9},
        "efficiency": {"flops_per_step": 100.0, "optimizer_steps": 40},
        "channel_pruning": {"applied": True, "at_epoch": 1, "flops_per_step_before": 10, "flops_per_step_after": 4},
    }
    summary = summarise(record, 3.0, 500.0, tmp_path)
    assert summary["flops_per_step"] == 40.0  # the first step's count, scaled as pruning measured it
    assert summary["flops_total"] == 100.0 * 10 + 40.0 * 30  # epoch 0 unpruned, epochs 1-3 pruned
    assert summary["channel_pruning"] is record["channel_pruning"] and summary["peak_mb"] == 500.0
    del record["channel_pruning"]
    assert summarise(record, 3.0, 500.0, tmp_path)["flops_total"] == 4000.0


@pytest.mark.slow
def test_measurements_run_through_an_executor(tmp_path):
    """executor=submitit_local: each measurement is a one-job multirun that the launcher runs and waits for."""
    proc = cli(
        "lightsweep",
        "efficiency",
        "dataset=digits",
        "trainer.max_epochs=1",
        "model.filters=8",
        "model.conv_layers=1",
        "executor=submitit_local",
        "--baseline-only",
        "--repeats",
        "1",
        "--seeds",
        "0",
        "--out",
        str(tmp_path),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "digits_cnn" / "results.json").read_text())
    (baseline,) = results["runs"]["baseline"]
    assert baseline["status"] == "ok" and baseline["accuracy"] > 0.5 and baseline["peak_mb"] > 100
    assert all(row["verdict"] == "not measured (--baseline-only)" for row in results["rows"])
    assert (tmp_path / "digits_cnn" / "runs" / "baseline" / "round0-seed0" / ".submitit").is_dir()  # launched
