"""What the health and efficiency callbacks cost: the same run with and without them.

Both runs are the CNN on digits through lightsweep's run(), same seed and epochs; one has no callbacks,
the other `callbacks=[health,efficiency]`. The time compared is run.json's timings.train_s (the whole
trainer.fit, so the callbacks' once-per-fit work counts too: FLOP counting, the final probe, the
inference-speed measurement). Runs alternate in one process after one warm-up run of each; the figure
is the ratio of the medians. Beside it, the ratio of the CPU seconds of the whole run() (process time:
less sensitive to other programs on a shared machine). With --plots it also times callbacks=default
(which draws the plots) as a user runs it, `python train.py`, and reports plot seconds against the
command's wall time and against the run's train + test seconds.

    python benchmarks/callbacks_overhead.py [--repeats 5] [--epochs 10] [--threads N] [--plots]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import machine, write_section  # noqa: E402

from lightsweep.config import compose  # noqa: E402
from lightsweep.train import run  # noqa: E402

QUIET = [
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.num_sanity_val_steps=0",
    "model=cnn",
    "dataset=digits",
    "seed=0",
    "logger=csv",
]
WITHOUT, WITH = "callbacks=none", "callbacks=[health,efficiency]"


def one_run(epochs: int, callbacks: str) -> tuple[float, float]:
    """(trainer.fit wall seconds, CPU seconds of the whole run) of one run."""
    with tempfile.TemporaryDirectory() as out:
        cpu = time.process_time()
        train_s = run(compose([*QUIET, callbacks, f"trainer.max_epochs={epochs}"], output_dir=out)).timings["train_s"]
        return train_s, time.process_time() - cpu


def plot_seconds(epochs: int) -> tuple[float, float, float]:
    """(seconds drawing plots, train + test seconds, wall seconds of the whole command) of one
    `python train.py ... callbacks=default` run, as a user runs it (a fresh process: imports included)."""
    import json
    import subprocess

    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                str(Path(__file__).parents[1] / "train.py"),
                *QUIET,
                "callbacks=default",
                f"trainer.max_epochs={epochs}",
                f"hydra.run.dir={out}",
            ],
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - started
        record = json.loads((Path(out) / "run.json").read_text())
        return record["plots"]["seconds"], record["timings"]["train_s"] + record["timings"]["test_s"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--plots", action="store_true", help="also time plot drawing in callbacks=default runs")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    one_run(args.epochs, WITHOUT), one_run(args.epochs, WITH)  # warm-up: imports, first allocations
    times: dict[str, list[float]] = {WITHOUT: [], WITH: []}
    cpu: dict[str, list[float]] = {WITHOUT: [], WITH: []}
    for _ in range(args.repeats):
        for setup in (WITHOUT, WITH):
            wall, seconds = one_run(args.epochs, setup)
            times[setup].append(wall)
            cpu[setup].append(seconds)
    base, measured = statistics.median(times[WITHOUT]), statistics.median(times[WITH])
    cpu_ratio = statistics.median(cpu[WITH]) / statistics.median(cpu[WITHOUT])
    rows = [
        f"| `{setup}` | {statistics.median(t):.3f} | {', '.join(f'{x:.2f}' for x in t)} | "
        f"{statistics.median(cpu[setup]):.2f} |"
        for setup, t in times.items()
    ]
    body = [
        "## Health + efficiency callbacks overhead (issue 5, acceptance 5: <= 1.10x): "
        f"CNN on digits, {args.epochs} epochs",
        "",
        f"`python benchmarks/callbacks_overhead.py --repeats {args.repeats} --epochs {args.epochs}"
        f"{f' --threads {args.threads}' if args.threads else ''}{' --plots' if args.plots else ''}` on {machine()}.",
        "Time: run.json timings.train_s (whole trainer.fit), runs alternating in one process after a warm-up.",
        "",
        "| callbacks | median train_s | all runs (train_s) | median CPU s of run() |",
        "|---|---|---|---|",
        *rows,
        "",
        f"**Ratio with/without: {measured / base:.3f}x** (median {measured:.3f} s / {base:.3f} s); "
        f"CPU-time ratio {cpu_ratio:.3f}x.",
    ]
    if args.plots:
        drawn = [plot_seconds(args.epochs) for _ in range(3)]
        fit_share = statistics.median(p / fit for p, fit, _ in drawn)
        run_share = statistics.median(p / wall for p, _, wall in drawn)
        body += [
            "",
            "Plots (`python train.py ... callbacks=default`, 3 runs): "
            + ", ".join(f"{p:.2f} s (train + test {fit:.1f} s, command {wall:.1f} s)" for p, fit, wall in drawn)
            + f"; **median share {run_share:.1%} of the command's wall time**, {fit_share:.1%} of train + "
            "test time (target: <= 10% of a short run's time).",
        ]
    write_section("callbacks_overhead", "\n".join(body))
    print("\n".join(body))


if __name__ == "__main__":
    main()
