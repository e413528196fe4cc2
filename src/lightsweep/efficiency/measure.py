"""One measured run: `python train.py <overrides>` in a fresh process (so its peak memory is its own), read
back into a flat dict from its run.json. With a cluster executor the run goes through Hydra's launcher as a
one-job multirun and the peak is the one the run measured in-process (run.json "efficiency")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lightsweep.paths import PROJECT_ROOT
from lightsweep.runinfo import RUN_JSON

RECORDS = ("channel_pruning", "int8", "distillation", "speed", "batch_size_finder")  # kept whole when present


def command(overrides: list[str], run_dir: Path, remote: bool) -> list[str]:
    train = [sys.executable, str(PROJECT_ROOT / "train.py")]
    if remote:  # the executor's launcher submits the run and waits for it
        return [*train, "-m", *overrides, f"hydra.sweep.dir={run_dir}", "hydra.sweep.subdir=."]
    return [*train, *overrides, f"hydra.run.dir={run_dir}"]


def measure_run(overrides: list[str], run_dir: Path, remote: bool = False) -> dict[str, Any]:
    """Run one configuration and return what it measured; status "failed" (with the error) when it did not
    finish. The process's output is kept in <run_dir>/process.log."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RUN_JSON).unlink(missing_ok=True)  # a stale record must not pass for this run's
    started = time.perf_counter()
    with open(run_dir / "process.log", "wb") as log:
        process = subprocess.Popen(command(overrides, run_dir, remote), stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall_s = time.perf_counter() - started
    process_peak_mb = usage.ru_maxrss / 1024  # Linux: kilobytes
    record = _read_record(run_dir)
    if record is None or record.get("status") != "ok" or process.returncode != 0:
        error = (record or {}).get("error") or _last_line(run_dir / "process.log") or f"exit {process.returncode}"
        return {
            "status": "failed",
            "error": error.strip().splitlines()[0][:300],  # the rest is in process.log
            "wall_s": wall_s,
            "run_dir": str(run_dir),
        }
    return summarise(record, wall_s, None if remote else process_peak_mb, run_dir)


def summarise(record: dict[str, Any], wall_s: float, process_peak_mb: float | None, run_dir: Path) -> dict[str, Any]:
    """The numbers the report compares, from a run.json record."""
    efficiency = record.get("efficiency") or {}
    metrics = record.get("metrics") or {}
    cuda_peak = efficiency.get("peak_cuda_memory_mb")
    steps, flops = efficiency.get("optimizer_steps"), efficiency.get("flops_per_step")
    flops, flops_total = _pruned_flops(record, flops, steps) if flops and steps else (flops, None)
    samples_per_second = efficiency.get("inference_samples_per_second")
    summary = {
        "status": "ok",
        "run_dir": str(run_dir),
        "seed": record.get("seed"),
        "train_s": (record.get("timings") or {}).get("train_s"),
        "wall_s": wall_s,
        # CUDA: max allocated; CPU: the process's peak RSS (the run's own fit peak when it ran elsewhere)
        "peak_mb": cuda_peak or process_peak_mb or efficiency.get("peak_cpu_rss_mb"),
        "flops_per_step": flops,
        "flops_total": flops_total,
        "latency_ms_per_sample": 1000.0 / samples_per_second if samples_per_second else None,
        "parameters": efficiency.get("parameters"),
        "accuracy": metrics.get("test/acc"),
        "f1_macro": metrics.get("test/f1_macro"),
        "test_samples": record.get("test_samples"),
        "precision": record.get("precision"),
    }
    summary.update({key: record[key] for key in RECORDS if key in record})
    return summary


def _pruned_flops(record: dict[str, Any], flops: float, steps: int) -> tuple[float, float]:
    """(FLOPs per step, in total). The efficiency callback counts the first step; after channel pruning a
    step costs what the pruning record measured before/after on the same inputs, times that."""
    pruning = record.get("channel_pruning") or {}
    before, after = pruning.get("flops_per_step_before"), pruning.get("flops_per_step_after")
    epochs = record.get("epochs_trained")
    if not (pruning.get("applied") and before and after and epochs):
        return flops, flops * steps
    pruned_steps = steps - pruning["at_epoch"] * steps / epochs
    pruned = flops * after / before
    return pruned, flops * (steps - pruned_steps) + pruned * pruned_steps


def _read_record(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / RUN_JSON).read_text())
    except (OSError, ValueError):
        return None


def _last_line(log: Path) -> str | None:
    """The last error line the run printed (lightsweep's one-line errors end the output)."""
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    return lines[-1][-300:] if lines else None
