"""`python -m lightsweep.service.runner JOB_DIR -- COMMAND...`: a job's first process, leader of its own
process group. It runs COMMAND with the output in JOB_DIR/job.log and writes JOB_DIR/exit.json when COMMAND
ends. A server that restarted meanwhile is not the job's parent and cannot wait for it: exit.json is how it
learns the outcome. Stop signals go to the whole group; the runner outlives them to record the exit.

The job runs niced (LIGHTSWEEP_JOB_NICE, default 5; 0 to turn it off): on a shared machine a trial's start-up
and training would otherwise take the cores from the server, whose answers and events then wait (the API
load benchmark's p99 went from ~20 ms to 400 ms while a new trial imported torch)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

EXIT_JSON = "exit.json"
JOB_LOG = "job.log"
NICE_ENV = "LIGHTSWEEP_JOB_NICE"


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m lightsweep.service.runner JOB_DIR -- COMMAND...", file=sys.stderr)
        return 2
    job_dir, command = Path(argv[0]), argv[2:]
    os.nice(int(os.environ.get(NICE_ENV, "5")))  # inherited by the command and every process it starts
    # A handler, not SIG_IGN: the command gets the default dispositions back at exec (an ignored SIGINT would
    # be inherited, and Python would then never raise KeyboardInterrupt in the sweep).
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: None)
    with open(job_dir / JOB_LOG, "ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        returncode = process.wait()
    from lightsweep.runinfo import write_json_atomic

    write_json_atomic(job_dir / EXIT_JSON, {"returncode": returncode, "finished_at": time.time()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
