"""TimeHUT accuracy per dataset and seed (SVM protocol), through the one run path.

    python benchmarks/timehut_accuracy.py [--datasets chinatown ...] [--seeds 0 1 2 3 4]
        [--experiment timehut_chinatown | none] [--data-dir ../shared/data] [overrides ...]

--experiment none runs each dataset with the default config (model=auto picks TimeHUT with its
defaults and TS2Vec's step budget). Trailing arguments are extra config overrides. Results go to a
section of benchmarks/RESULTS.md named after the experiment and datasets.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["chinatown"])
    parser.add_argument("--experiment", default="timehut_chinatown")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--data-dir", default=str(PROJECT_ROOT.parent / "shared" / "data"))
    args, extra = parser.parse_known_args()
    rows, accuracies = [], []
    experiment = [] if args.experiment == "none" else [f"experiment={args.experiment}"]
    for dataset in args.datasets:
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as out:
                overrides = [
                    *experiment,
                    f"dataset={dataset}",
                    f"paths.data_dir={args.data_dir}",
                    f"seed={seed}",
                    "trainer.enable_progress_bar=false",
                    "trainer.enable_model_summary=false",
                    *extra,
                ]
                result = run(compose(overrides, output_dir=out))
            m = result.metrics
            accuracies.append(m["test/acc"])
            rows.append(
                f"| {dataset} | {seed} | {m['test/acc']:.4f} | {m['test/f1_macro']:.4f} | {m['test/auprc']:.4f} "
                f"| {m['val/acc']:.4f} | {result.timings['train_s']:.1f} |"
            )
            print(rows[-1], flush=True)
    command = " ".join(
        [
            "python benchmarks/timehut_accuracy.py",
            "--datasets",
            *args.datasets,
            f"--experiment {args.experiment}",
            "--seeds",
            *map(str, args.seeds),
            *extra,
        ]
    )
    body = "\n".join(
        [
            f"## TimeHUT accuracy: experiment={args.experiment} on {', '.join(args.datasets)}",
            "",
            f"`{command}` on {machine()}.",
            "val acc = stratified 5-fold CV of the SVM on the training embeddings (what a sweep optimises). "
            "AUPRC as TS2Vec: the positive class's for two classes, the mean over classes otherwise.",
            "",
            "| dataset | seed | test acc | test F1 (macro) | test AUPRC | val acc (CV) | train s |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"**Mean test accuracy {statistics.mean(accuracies):.4f}** (min {min(accuracies):.4f}, "
            f"max {max(accuracies):.4f}, std {statistics.pstdev(accuracies):.4f}).",
        ]
    )
    print(body)
    suffix = "-".join(extra).replace("=", "").replace(".", "_")
    name = f"timehut-acc-{args.experiment}-{'-'.join(args.datasets)}{'-' + suffix if suffix else ''}"
    write_section(name, body)


if __name__ == "__main__":
    main()
