"""Executors of a sweep: parallel submitit_local trials; a killed or crashed job recorded as a failed trial
(the sweep ends with a clear message instead of hanging); executor=slurm falling back to local jobs (or
refusing) when no scheduler answers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from conftest import cli
from lightsweep.paths import PROJECT_ROOT

QUIET = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def sweep_args(sweep_dir: Path, *extra: str) -> list[str]:
    """A tiny CNN sweep on digits with its study in <sweep_dir>/optuna.db."""
    return [
        "-m",
        "model=cnn",
        "dataset=digits",
        "+sweep=simple",
        *QUIET,
        f"hydra.sweep.dir={sweep_dir}",
        f"hydra.sweeper.storage=sqlite:///{sweep_dir}/optuna.db",
        *extra,
    ]


def start_sweep(sweep_dir: Path, *extra: str) -> subprocess.Popen:
    """`python train.py` + sweep_args in the background, from the sweep dir's parent (outputs stay there)."""
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "LIGHTSWEEP_DEBUG")}
    command = [sys.executable, str(PROJECT_ROOT / "train.py"), *sweep_args(sweep_dir, *extra)]
    return subprocess.Popen(
        command, cwd=sweep_dir.parent, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def submitted_job_ids(sweep_dir: Path, count: int = 1, timeout: float = 120) -> list[str]:
    """Ids of the sweep's submitted jobs (submitit makes a folder per job) once `count` of them exist."""
    folder, deadline = sweep_dir / ".submitit", time.monotonic() + timeout
    while True:
        names = [p.name for p in folder.iterdir() if p.is_dir() and p.name != "%j"] if folder.is_dir() else []
        ids = [n for n in names if not any(m.startswith(f"{n}_") for m in names)]  # SLURM: <array>_<task>, not <array>
        if len(ids) >= count:  # in submission order: local pids, or SLURM <array>_<task>
            return sorted(ids, key=lambda job: [int(part) for part in job.split("_")])
        assert time.monotonic() < deadline, f"fewer than {count} jobs submitted to {folder} after {timeout} s"
        time.sleep(0.2)


def trial_process(job_id: str, timeout: float = 60) -> int:
    """A local job is a controller process (the job id) running the trial in a child: the child's pid."""
    children, deadline = Path(f"/proc/{job_id}/task/{job_id}/children"), time.monotonic() + timeout
    while not children.read_text().split():
        assert time.monotonic() < deadline, f"local job {job_id} started no trial process in {timeout} s"
        time.sleep(0.2)
    return int(children.read_text().split()[0])


def trial_states(sweep_dir: Path) -> list[str]:
    """States of the trials in the sweep's study storage, by trial number."""
    import optuna

    storage = f"sqlite:///{sweep_dir}/optuna.db"
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    return [t.state.name for t in sorted(study.trials, key=lambda t: t.number)]


@pytest.mark.slow
def test_submitit_local_runs_trials_at_the_same_time(tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = cli(*sweep_args(sweep_dir, "executor=submitit_local", "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [json.loads((sweep_dir / job / "run.json").read_text()) for job in ("0", "1")]
    assert [r["status"] for r in runs] == ["ok", "ok"]
    started = [datetime.fromisoformat(r["started"]) for r in runs]
    finished = [datetime.fromisoformat(r["finished"]) for r in runs]
    assert max(started) < min(finished), f"trials ran one after the other: {started} -> {finished}"
    assert trial_states(sweep_dir) == ["COMPLETE", "COMPLETE"]


@pytest.mark.slow
def test_killed_local_job_is_a_failed_trial_and_the_sweep_ends_with_the_reason(tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = start_sweep(sweep_dir, "executor=submitit_local", "hydra.sweeper.n_trials=1")
    (job_id,) = submitted_job_ids(sweep_dir)
    os.kill(trial_process(job_id), signal.SIGKILL)  # as the kernel's OOM killer would
    output, _ = proc.communicate(timeout=180)  # never hangs: the lost job is noticed and reported
    assert proc.returncode != 0
    assert f"JobLostError: local job {job_id} ended without a result" in output, output[-3000:]
    assert trial_states(sweep_dir) == ["FAIL"]


@pytest.mark.slow
def test_job_that_crashes_before_its_trial_is_a_failed_trial_with_the_exception(tmp_path):
    sweep_dir = tmp_path / "sweep"
    # The job cannot even compose its config: the searched key does not exist.
    proc = cli(
        *sweep_args(
            sweep_dir,
            "executor=submitit_local",
            "hydra.sweeper.n_trials=1",
            "+hydra.sweeper.params={no_such_key: 'choice(1,2)'}",
        )
    )
    assert proc.returncode == 2
    assert (
        "crashed before its trial could report (hydra.errors.ConfigCompositionException: Could not override "
        "'no_such_key'.)" in proc.stderr
    ), proc.stderr[-3000:]
    assert trial_states(sweep_dir) == ["FAIL"]


def unreachable_slurm_conf(tmp_path: Path) -> Path:
    """A SLURM client config whose controller port has nobody listening (no cluster to reach)."""
    with socket.socket() as probe:  # a port that was just free, so nothing answers there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = tmp_path / "slurm.conf"
    conf.write_text(f"ClusterName=nowhere\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort={port}\n")
    return conf


def test_slurm_without_a_scheduler_and_without_fallback_stops_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", str(unreachable_slurm_conf(tmp_path)))
    sweep_dir = tmp_path / "sweep"
    proc = cli(*sweep_args(sweep_dir, "executor=slurm", "hydra.launcher.fallback_local=false"))
    assert proc.returncode == 2, proc.stderr[-3000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("lightsweep: error: executor=slurm cannot reach a scheduler: ")
    assert "hydra.launcher.fallback_local=true" in line
    assert not (sweep_dir / "optuna.db").exists()  # stopped before any trial was asked


@pytest.mark.slow
def test_slurm_without_a_scheduler_falls_back_to_local_jobs_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", str(unreachable_slurm_conf(tmp_path)))
    sweep_dir = tmp_path / "sweep"
    proc = cli(*sweep_args(sweep_dir, "executor=slurm", "hydra.sweeper.n_trials=1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "executor=slurm: " in proc.stdout + proc.stderr
    assert "running the jobs locally instead" in proc.stdout + proc.stderr
    (job_id,) = submitted_job_ids(sweep_dir, timeout=0)
    assert job_id.isdigit()  # a local process id, not a SLURM array job (<id>_<task>)
    assert json.loads((sweep_dir / "0" / "run.json").read_text())["status"] == "ok"
    assert trial_states(sweep_dir) == ["COMPLETE"]
