"""TimeHUT training time for the Chinatown recipe (200 epochs = 400 steps, batch 8).

Training time is run.json's timings.train_s (Trainer.fit: every epoch, the temperature schedule,
the weight averaging, the final checkpoint), which excludes imports, data loading and the SVM.
Median over --repeats runs with seeds 0.. in one process.

    python benchmarks/timehut_speed.py [--repeats 5] [--data-dir ../shared/data] [--accelerator cpu|gpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import machine, write_section  # noqa: E402

from lightsweep.config import compose  # noqa: E402
from lightsweep.paths import PROJECT_ROOT  # noqa: E402
from lightsweep.train import run  # noqa: E402

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", default=str(PROJECT_ROOT.parent / "shared" / "data"))
    parser.add_argument("--accelerator", default="cpu")
    args = parser.parse_args()
    rows, totals, epochs = [], [], []
    for seed in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            overrides = [
                "experiment=timehut_chinatown",
                f"paths.data_dir={args.data_dir}",
                f"seed={seed}",
                f"trainer.accelerator={args.accelerator}",
                *QUIET,
            ]
            result = run(compose(overrides, output_dir=out))
        totals.append(result.timings["train_s"])
        epochs += result.timings["epoch_s"]
        rows.append(
            f"| {seed} | {result.timings['train_s']:.2f} | {statistics.median(result.timings['epoch_s']) * 1000:.1f} "
            f"| {result.metrics['test/acc']:.4f} |"
        )
    body = "\n".join(
        [
            f"## TimeHUT Chinatown recipe: training time ({args.accelerator})",
            "",
            f"`python benchmarks/timehut_speed.py --repeats {args.repeats} --accelerator {args.accelerator}` "
            f"on {machine()}.",
            "Training = Trainer.fit for 200 epochs (400 steps of batch 8); imports, data loading and the SVM excluded.",
            "",
            "| seed | train s | median ms / epoch | test acc |",
            "|---|---|---|---|",
            *rows,
            "",
            f"**Median training time: {statistics.median(totals):.2f} s** "
            f"(median epoch {statistics.median(epochs) * 1000:.1f} ms).",
        ]
    )
    print(body)
    write_section(f"timehut-speed-{args.accelerator}", body)


if __name__ == "__main__":
    main()
