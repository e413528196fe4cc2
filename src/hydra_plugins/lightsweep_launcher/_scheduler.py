"""Can SLURM jobs be submitted and watched from here? submitit submits with `sbatch` and learns that a job
ended (also cancelled or killed) only from `sacct`: without it such a job would be waited for forever."""

from __future__ import annotations

import shutil
import subprocess

# A client whose controller is unreachable retries for up to a minute; a healthy one answers in milliseconds.
PROBE_TIMEOUT_S = 15


def scheduler_problem() -> str | None:
    """Why SLURM cannot run and watch jobs from this machine, in a few words; None when it can."""
    for tool in ("sbatch", "scontrol", "sinfo", "sacct"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not on PATH (no SLURM client installed)"
    failure = _failure(["scontrol", "ping"])
    if failure:
        return f"the SLURM controller does not answer `scontrol ping` ({failure})"
    failure = _failure(["sacct", "--noheader", "--allocations", "--starttime=now", "--format=JobID"])
    if failure:
        return f"`sacct` fails ({failure}), so a cancelled or killed job could not be noticed"
    return None


def partitions() -> list[str]:
    """The partitions of the reachable cluster."""
    listing = subprocess.run(
        ["sinfo", "--noheader", "--format=%R"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S
    )
    return sorted(set(listing.stdout.split()))


def _failure(command: list[str]) -> str | None:
    """None when `command` succeeds in time, else the first line it printed (or why it did not finish)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"no answer within {PROBE_TIMEOUT_S} s"
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    return lines[0] if lines else f"exit code {done.returncode}"
