"""A job's processes: launched in a session of their own (a server restart or Ctrl-C in the server's
terminal does not reach them), found again after a restart by pid and start time, stopped as a group.
Linux: liveness reads /proc."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from lightsweep.paths import PROJECT_ROOT
from lightsweep.service.runner import EXIT_JSON

STOP_GRACE_S = 5.0  # after SIGINT (the sweep records the running trial and exits 130), SIGTERM...
KILL_AFTER_S = 8.0  # ...then SIGKILL: the group is gone within 10 s


def launch(job_dir: Path, arguments: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start `python train.py ARGUMENTS` for a job (through the runner, which records its exit)."""
    (job_dir / EXIT_JSON).unlink(missing_ok=True)
    command = [sys.executable, str(PROJECT_ROOT / "train.py"), *arguments]
    return subprocess.Popen(
        [sys.executable, "-m", "lightsweep.service.runner", str(job_dir), "--", *command],
        cwd=job_dir,
        env=env,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_ticks(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), or None when there is no such live process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": comm may hold spaces
    if fields[0] in ("Z", "X"):  # a zombie has finished
        return None
    return int(fields[19])


def alive(pid: int | None, ticks: int | None) -> bool:
    return pid is not None and ticks is not None and start_ticks(pid) == ticks


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _live_members(pgid)


def _live_members(pgid: int) -> bool:
    """killpg(0) also succeeds for a group of zombies: look for a member that still runs."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def exit_code(job_dir: Path) -> int | None:
    try:
        return int(json.loads((job_dir / EXIT_JSON).read_text())["returncode"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stop_group(pgid: int) -> None:
    """SIGINT the group now; SIGTERM, then SIGKILL, whatever is left of it later (in a thread)."""
    _signal_group(pgid, signal.SIGINT)
    threading.Thread(target=_escalate, args=(pgid,), daemon=True, name=f"stop-{pgid}").start()


def _escalate(pgid: int) -> None:
    started = time.monotonic()
    for deadline, sig in ((STOP_GRACE_S, signal.SIGTERM), (KILL_AFTER_S, signal.SIGKILL)):
        while time.monotonic() - started < deadline:
            if not group_alive(pgid):
                return
            time.sleep(0.2)
        _signal_group(pgid, sig)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
