"""TimeHUT accuracy per seed: the Chinatown recipe (or another experiment/dataset), SVM protocol.

    python benchmarks/timehut_accuracy.py [--dataset chinatown] [--seeds 0 1 2 3 4] [--data-dir ../shared/data]
        [--experiment timehut_chinatown] [overrides ...]

Trailing arguments are extra config overrides (e.g. model.amc_margin=0.5). Results go to a section of
benchmarks/RESULTS.md named after the experiment and dataset.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import machine, write_section  # noqa: E402

from lightsweep.config import PROJECT_ROOT, compose  # noqa: E402
from lightsweep.train import run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="chinatown")
    parser.add_argument("--experiment", default="timehut_chinatown")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--data-dir", default=str(PROJECT_ROOT.parent / "shared" / "data"))
    args, extra = parser.parse_known_args()
    rows, accuracies = [], []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as out:
            overrides = [f"experiment={args.experiment}", f"dataset={args.dataset}", f"paths.data_dir={args.data_dir}",
                         f"seed={seed}", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", *extra]
            result = run(compose(overrides, output_dir=out))
        m = result.metrics
        accuracies.append(m["test/acc"])
        rows.append(f"| {seed} | {m['test/acc']:.4f} | {m['test/f1_macro']:.4f} | {m['test/auprc']:.4f} "
                    f"| {m['val/acc']:.4f} | {result.timings['train_s']:.1f} |")
        print(rows[-1], flush=True)
    command = " ".join(["python benchmarks/timehut_accuracy.py", f"--dataset {args.dataset}",
                        f"--experiment {args.experiment}", "--seeds", *map(str, args.seeds), *extra])
    body = "\n".join([
        f"## TimeHUT accuracy: {args.experiment} on {args.dataset}",
        "",
        f"`{command}` on {machine()}.",
        "val acc = stratified 5-fold CV of the SVM on the training embeddings (what a sweep optimises).",
        "",
        "| seed | test acc | test F1 (macro) | test AUPRC | val acc (CV) | train s |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"**Mean test accuracy {statistics.mean(accuracies):.4f}** (min {min(accuracies):.4f}, "
        f"max {max(accuracies):.4f}, std {statistics.pstdev(accuracies):.4f}).",
    ])
    print(body)
    suffix = "-".join(extra).replace("=", "").replace(".", "_")
    write_section(f"timehut-acc-{args.experiment}-{args.dataset}{'-' + suffix if suffix else ''}", body)


if __name__ == "__main__":
    main()
