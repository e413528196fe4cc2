"""executor=slurm on a real single-node SLURM cluster (tools/slurm/, started here, stopped afterwards):
a sweep runs as SLURM array jobs that `sacct` lists, and a job cancelled with scancel becomes a failed trial
while the sweep goes on and ends in bounded time; parallel jobs share a PostgreSQL study; an unknown
partition is refused up front."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from test_executors import start_sweep, submitted_job_ids, trial_states

from conftest import cli
from lightsweep.paths import PROJECT_ROOT

SLURM_TOOLS = PROJECT_ROOT / "tools" / "slurm"
DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")


def _controller_answers() -> bool:
    if not Path("/etc/slurm/slurm.conf").is_file():  # without a config the client retries for a minute
        return False
    return subprocess.run(["scontrol", "ping"], capture_output=True, timeout=15).returncode == 0


@pytest.fixture(scope="session")
def slurm_cluster():
    """The local cluster of tools/slurm (4 CPUs: two 2-CPU jobs at once); stopped after the session if
    this session started it."""
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster (tools/slurm/start-slurm.sh) must be started as root")
    search_path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin"
    missing = [daemon for daemon in DAEMONS if shutil.which(daemon, path=search_path) is None]
    if missing or shutil.which("sbatch") is None:
        absent = ", ".join(missing) or "sbatch"
        pytest.skip(f"SLURM packages not installed ({absent} missing): run `make slurm` as root")
    was_up = _controller_answers()
    started = subprocess.run(
        [SLURM_TOOLS / "start-slurm.sh"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SLURM_CI_CPUS": "4"},
    )
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
    yield
    if not was_up:
        subprocess.run([SLURM_TOOLS / "stop-slurm.sh"], capture_output=True, timeout=120)


def wait_until_running(job_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (
        subprocess.run(
            ["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=15
        ).stdout.strip()
        != "RUNNING"
    ):
        assert time.monotonic() < deadline, f"SLURM job {job_id} not running after {timeout} s"
        time.sleep(0.2)


def sacct_times(job_ids: list[str]) -> list[tuple[datetime, datetime]]:
    """(start, end) of each finished job, as SLURM's accounting recorded them."""
    listing = subprocess.run(
        ["sacct", "--noheader", "--allocations", "--parsable2", "--format=Start,End", "--jobs", ",".join(job_ids)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return [tuple(map(datetime.fromisoformat, line.split("|"))) for line in listing.stdout.splitlines()]


def sacct_states(job_ids: list[str], timeout: float = 60) -> dict[str, str]:
    """job id -> the final state SLURM's accounting recorded (CANCELLED by <uid> -> CANCELLED); accounting
    is written asynchronously, so wait (boundedly) until every job has left the running states."""
    deadline = time.monotonic() + timeout
    while True:
        listing = subprocess.run(
            [
                "sacct",
                "--noheader",
                "--allocations",
                "--parsable2",
                "--format=JobID,State",
                "--jobs",
                ",".join(job_ids),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        states = {job: state.split()[0] for job, state in (line.split("|") for line in listing.stdout.splitlines())}
        unfinished = {"PENDING", "RUNNING", "COMPLETING"} & set(states.values())
        if (set(states) == set(job_ids) and not unfinished) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


@pytest.mark.slurm
@pytest.mark.slow
def test_slurm_sweep_survives_a_scancelled_job_and_sacct_lists_its_jobs(tmp_path, slurm_cluster):
    sweep_dir = tmp_path / "sweep"
    proc = start_sweep(
        sweep_dir,
        "executor=slurm",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.max_failure_rate=0.5",
    )
    try:
        cancelled = submitted_job_ids(sweep_dir, count=2)[0]  # array task 0 of the first batch: trial 0
        wait_until_running(cancelled)
        subprocess.run(["scancel", cancelled], check=True, timeout=15)
        output, _ = proc.communicate(timeout=400)  # bounded: a lost job must not make the sweep wait forever
    finally:
        proc.kill()
    assert proc.returncode == 0, output[-3000:]
    assert "is a SQLite file, but this sweep runs workers on more than one node" in output  # the safer storages
    assert f"JobLostError: slurm job {cancelled} ended without a result (state CANCELLED" in output, output[-3000:]
    assert trial_states(sweep_dir) == ["FAIL", "COMPLETE", "COMPLETE", "COMPLETE"], output[-3000:]
    jobs = submitted_job_ids(sweep_dir, count=4, timeout=0)
    assert len(jobs) == 4 and all("_" in job for job in jobs)  # SLURM array jobs, not local processes
    assert sacct_states(jobs) == {job: "CANCELLED" if job == cancelled else "COMPLETED" for job in jobs}


@pytest.mark.slurm
@pytest.mark.postgres
@pytest.mark.slow
def test_four_slurm_jobs_at_once_share_a_postgres_study(tmp_path, slurm_cluster, postgres_url):
    sweep_dir = tmp_path / "sweep"
    proc = start_sweep(
        sweep_dir,
        "executor=slurm",
        "hydra.launcher.cpus_per_task=1",  # the local cluster's 4 CPUs: four jobs at once
        "hydra.sweeper.n_jobs=4",
        "hydra.sweeper.n_trials=8",
        f"hydra.sweeper.storage={postgres_url}",
    )
    try:
        output, _ = proc.communicate(timeout=900)
    finally:
        proc.kill()
    assert proc.returncode == 0, output[-3000:]
    assert "SQLite" not in output
    import optuna

    from lightsweep.sweep.study import open_storage, read_study_json

    study = optuna.load_study(study_name=read_study_json(sweep_dir)["study_name"], storage=open_storage(postgres_url))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 8
    jobs = submitted_job_ids(sweep_dir, count=8, timeout=0)
    assert sacct_states(jobs) == dict.fromkeys(jobs, "COMPLETED")
    spans = sacct_times(jobs)
    overlap = max(sum(start <= moment < end for start, end in spans) for moment, _ in spans)
    assert overlap == 4, f"at most {overlap} jobs ran at once: {spans}"


@pytest.mark.slurm
def test_unknown_partition_stops_with_one_line_naming_the_partitions(tmp_path, slurm_cluster):
    proc = cli("-m", "+sweep=simple", "executor=slurm", "hydra.launcher.partition=nope", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 2, proc.stderr[-3000:]
    (line,) = proc.stderr.strip().splitlines()
    assert "SLURM partition 'nope' does not exist on this cluster; partitions: debug." in line
