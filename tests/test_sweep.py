"""Sweeps through the real CLI: `python train.py -m ... +sweep=<simple|health|efficiency>` with the lightsweep
sweeper, a real SQLite study in a temp dir, and the report it writes."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import SHARED_DATA, cli, shared_data

# A small corner of the CNN space (fixed keys leave the search) and short epochs: a trial takes seconds.
TINY_CNN = [
    "model=cnn",
    "model.filters=16",
    "model.conv_layers=1",
    "model.hidden_layers=1",
    "model.first_hidden_units=64",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.num_sanity_val_steps=0",
    "trainer.limit_train_batches=8",
]


def sweep(tmp_path: Path, *args: str, timeout: int = 600):
    """Run a sweep into tmp_path/sweep (the study's SQLite file lands there too); (process, sweep dir)."""
    sweep_dir, launch_dir = tmp_path / "sweep", tmp_path / "launch"
    launch_dir.mkdir(parents=True, exist_ok=True)  # kept: a report's command goes back to the launch dir
    return cli("-m", f"hydra.sweep.dir={sweep_dir}", *args, timeout=timeout, cwd=launch_dir), sweep_dir


def load_study(sweep_dir: Path):
    import optuna

    from lightsweep.sweep.study import open_storage

    meta = json.loads((sweep_dir / "study.json").read_text())
    return optuna.load_study(study_name=meta["study_name"], storage=open_storage(meta["storage"])), meta


def run_json(path: Path) -> dict:
    return json.loads((path / "run.json").read_text())


@pytest.mark.slow
def test_health_sweep_reports_and_its_best_command_reproduces_the_best_trial(tmp_path):
    proc, sweep_dir = sweep(
        tmp_path,
        *TINY_CNN,
        "+sweep=health",
        "hydra.sweeper.n_trials=2",
        "trainer.max_epochs=1",
        "callbacks=[model_checkpoint,health]",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study, meta = load_study(sweep_dir)
    assert meta["study_name"] == "cnn-digits-health-median"  # the default pruner: nothing pruned in 1 epoch
    assert [(t.number, t.state.name) for t in study.trials] == [(0, "COMPLETE"), (1, "COMPLETE")]
    # Each job reports its monitor every epoch: the trials' learning curves.
    assert all(list(t.intermediate_values) == [0] for t in study.trials)
    for trial in study.trials:  # the value told to Optuna is the job's health-blended objective
        record = run_json(sweep_dir / str(trial.number))
        assert record["objective_detail"]["mode"] == "health" and record["objective"] == trial.value
    report = (sweep_dir / "report.md").read_text()
    assert "## Best trial" in report and f"Trial {study.best_trial.number}:" in report
    assert {"history.png", "parallel_coordinates.png"} <= {p.name for p in (sweep_dir / "plots").iterdir()}
    best = yaml.safe_load((sweep_dir / "best" / "best_hyperparameters.yaml").read_text())
    assert best["trial"] == study.best_trial.number and best["params"] == study.best_trial.params
    assert (sweep_dir / "best" / best["checkpoint"]).is_file()

    command = best["command"]  # pasted into a shell elsewhere, with no venv on PATH
    assert "optuna_trial" not in command and "sweep=" not in command and "objective.mode=health" in command
    assert command in report
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/bin:/bin"
    again = subprocess.run(
        f"{command} hydra.run.dir={tmp_path / 'again'}",
        shell=True,
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "warning: sweep" not in again.stderr  # a single run, not a sweep config run once
    assert run_json(tmp_path / "again")["objective"] == pytest.approx(study.best_value, abs=1e-6)
    assert f"Best value {study.best_value:.4f}" in proc.stderr + proc.stdout and command in proc.stderr + proc.stdout


@pytest.mark.slow
def test_efficiency_sweep_draws_the_pareto_front_of_accuracy_and_train_time(tmp_path):
    proc, sweep_dir = sweep(
        tmp_path, *TINY_CNN, "+sweep=efficiency", "hydra.sweeper.n_trials=3", "trainer.max_epochs=1", "callbacks=none"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study, meta = load_study(sweep_dir)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"] and len(study.trials) == 3
    for trial in study.trials:
        record = run_json(sweep_dir / str(trial.number))
        assert trial.values == [record["metrics"]["val/acc"], record["timings"]["train_s"]]
    front = json.loads((sweep_dir / "study.json").read_text())["best"]
    assert {b["number"] for b in front} == {t.number for t in study.best_trials}
    assert (sweep_dir / "plots" / "pareto_front.png").stat().st_size > 0
    assert "## Pareto front" in (sweep_dir / "report.md").read_text()


@pytest.mark.slow
def test_timehut_sweep_optimises_cross_validated_accuracy_on_train_never_test_data(tmp_path):
    from lightsweep.config import compose
    from lightsweep.objective import objective_value

    shared_data("UCR")
    overrides = ["model=timehut", "dataset=chinatown", "+sweep=simple"]
    proc, sweep_dir = sweep(
        tmp_path,
        *overrides,
        f"paths.data_dir={SHARED_DATA}",
        "hydra.sweeper.n_trials=2",
        "trainer.max_epochs=1",
        "callbacks=none",
        "test_ckpt=last",
        "trainer.enable_progress_bar=false",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study, _ = load_study(sweep_dir)
    objective = compose(overrides).objective
    for trial in study.trials:
        record = run_json(sweep_dir / str(trial.number))
        assert "test/acc" in record["metrics"]  # test metrics are reported beside the objective...
        poisoned = {k: (math.nan if k.startswith("test/") else v) for k, v in record["metrics"].items()}
        value, _ = objective_value(objective, {**record, "metrics": poisoned})
        assert trial.value == value == record["metrics"]["val/acc"]  # ...and never read by it


def test_a_sweep_on_test_data_is_refused_before_any_trial(tmp_path):
    proc, sweep_dir = sweep(tmp_path, *TINY_CNN, "+sweep=simple", "objective.name=test_accuracy")
    assert proc.returncode == 2 and "never optimise on it" in proc.stderr
    assert not (sweep_dir / "0").exists()


@pytest.mark.parametrize(
    "choice, sampler", [("random", "RandomSampler"), ("cmaes", "CmaEsSampler"), ("nsgaii", "NSGAIISampler")]
)
def test_the_sampler_is_selectable(tmp_path, choice, sampler):
    proc, _ = sweep(
        tmp_path, "model=cnn", "+sweep=simple", f"hydra/sweeper/sampler={choice}", "hydra.sweeper.n_trials=0"
    )
    assert proc.returncode == 0 and f"sampler {sampler}," in proc.stdout + proc.stderr


def test_report_of_a_sweep_without_storage_is_one_clear_line(tmp_path):
    (tmp_path / "study.json").write_text(json.dumps({"study_name": "cnn-digits-simple-none", "storage": None}))
    proc = cli("lightsweep", "report", str(tmp_path))
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert "hydra.sweeper.storage=null" in lines[0] and not (tmp_path / "report.md").exists()


def _stored_study(sweep_dir: Path, value: float, weights: bytes):
    """A real SQLite study with one finished trial whose run dir holds a run.json and a last.ckpt."""
    import optuna
    from optuna.distributions import FloatDistribution

    storage = f"sqlite:///{sweep_dir / 'optuna.db'}"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize", load_if_exists=True)
    run_dir = sweep_dir / str(len(study.trials))
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(weights)
    (run_dir / "run.json").write_text(json.dumps({"tested_weights": "last", "epochs_trained": 1}))
    study.add_trial(
        optuna.trial.create_trial(
            params={"x": value},
            distributions={"x": FloatDistribution(0, 1)},
            value=value,
            user_attrs={"run_dir": str(run_dir)},
        )
    )
    (sweep_dir / "study.json").write_text(json.dumps({"study_name": "s", "storage": storage, "n_trials": 2}))


def _no_space(*args, **kwargs):
    raise OSError(28, "No space left on device")


def _fail_on(monkeypatch, failing: str) -> None:
    """Make one step of writing best/ fail like a full disk would."""
    import os
    import shutil

    if failing == "copy":  # while the new best/ is being built
        monkeypatch.setattr(shutil, "copy2", _no_space)
    else:  # while it is being swapped in: every way to move a path fails
        for module, name in ((os, "rename"), (os, "replace"), (Path, "rename"), (Path, "replace")):
            monkeypatch.setattr(module, name, _no_space)


@pytest.mark.parametrize("failing", ["copy", "swap"])
def test_the_old_best_dir_survives_a_report_that_fails_while_writing_the_new_one(tmp_path, monkeypatch, failing):
    from lightsweep.sweep.report import write_report

    _stored_study(tmp_path, 0.5, b"old weights")
    write_report(tmp_path)
    _stored_study(tmp_path, 0.9, b"new weights")  # a better trial: the next report replaces best/
    with monkeypatch.context() as patched:
        _fail_on(patched, failing)
        with pytest.raises(OSError, match="No space left"):
            write_report(tmp_path)
    best = yaml.safe_load((tmp_path / "best" / "best_hyperparameters.yaml").read_text())
    assert best["trial"] == 0 and (tmp_path / "best" / "last.ckpt").read_bytes() == b"old weights"
    assert _best_copies(tmp_path) == {(tmp_path / "best").resolve()}  # nothing half-built is left beside it

    write_report(tmp_path)  # the disk has room again
    assert (tmp_path / "best" / "last.ckpt").read_bytes() == b"new weights"
    assert _best_copies(tmp_path) == {(tmp_path / "best").resolve()}  # the old one is gone


def _best_copies(sweep_dir: Path) -> set[Path]:
    """The folders in a sweep dir besides the trials' and plots/ (where best/ and any copy of it live)."""
    return {p.resolve() for p in sweep_dir.iterdir() if p.is_dir() and not p.name.isdigit() and p.name != "plots"}


def test_a_best_folder_of_an_older_report_is_replaced_and_kept_when_the_swap_fails(tmp_path, monkeypatch):
    import os
    import shutil

    from lightsweep.sweep.report import write_report

    _stored_study(tmp_path, 0.5, b"old weights")
    write_report(tmp_path)
    folder = (tmp_path / "best").resolve()
    (tmp_path / "best").unlink()
    shutil.copytree(folder, tmp_path / "best")  # best/ as a plain folder, the layout of earlier reports
    shutil.rmtree(folder)
    _stored_study(tmp_path, 0.9, b"new weights")
    with monkeypatch.context() as patched:
        patched.setattr(os, "replace", _no_space)  # the old folder is already renamed aside: it must come back
        with pytest.raises(OSError, match="No space left"):
            write_report(tmp_path)
    assert (tmp_path / "best" / "last.ckpt").read_bytes() == b"old weights"
    assert _best_copies(tmp_path) == {(tmp_path / "best").resolve()}
    write_report(tmp_path)
    assert (tmp_path / "best" / "last.ckpt").read_bytes() == b"new weights"
    assert _best_copies(tmp_path) == {(tmp_path / "best").resolve()}


def test_results_md_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    # benchmarks/_results.py writes the sweep_pruning section (and every benchmark's) of RESULTS.md
    import importlib.util

    from conftest import PROJECT_ROOT

    spec = importlib.util.spec_from_file_location("_results", PROJECT_ROOT / "benchmarks" / "_results.py")
    results = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(results)
    monkeypatch.setattr(results, "RESULTS", tmp_path / "RESULTS.md")
    results.write_section("sweep_pruning", "| trials | epochs |\n|---|---|\n| 8 | 20 |")
    before = (tmp_path / "RESULTS.md").read_text()
    with pytest.raises(UnicodeEncodeError):  # a body that cannot be written (a lone surrogate from a bad decode)
        results.write_section("overhead", "ratio \udcff")
    assert (tmp_path / "RESULTS.md").read_text() == before and "| 8 | 20 |" in before
    assert [p.name for p in tmp_path.iterdir()] == ["RESULTS.md"]
