"""Epochs a sweep trains with and without trial pruning (issue 6, acceptance 2).

Runs the same sweep twice through the CLI, same seed, once with hydra/sweeper/pruner=none and once with
a pruner, and records from each study report (study.json) the trial states, the epochs trained and the
time its trials took (summed, so a resumed study counts its earlier trials too). TPE's first 10 trials
are seeded random draws, so with up to 10 trials both sweeps try the same configurations and the
difference is what pruning cut. Each sweep is a normal study: rerunning this script resumes them, i.e.
only finishes what is missing.

    python benchmarks/sweep_pruning.py [--workdir DIR] [--trials 8] [--epochs 4] [--pruner median] [--startup N]

--startup sets the pruner's n_startup_trials (trials that always finish first; Optuna's default is 5).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import machine, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def sweep(workdir: Path, trials: int, epochs: int, pruner: str, startup: int | None) -> dict:
    """Run (or resume) one sweep in workdir; its study.json."""
    with_startup = startup is not None and pruner != "none"
    name = f"cnn-digits-health-{pruner}" + (f"-startup{startup}" if with_startup else "")
    args = [
        "-m",
        "model=cnn",
        "dataset=digits",
        "+sweep=health",
        f"hydra.sweeper.n_trials={trials}",
        f"trainer.max_epochs={epochs}",
        f"hydra/sweeper/pruner={pruner}",
        f"hydra.sweeper.study_name={name}",
    ]
    if with_startup:
        args.append(f"hydra.sweeper.pruner.n_startup_trials={startup}")
    subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    return json.loads((workdir / "multirun" / name / "study.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("."), help="its multirun/ holds the two studies")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--pruner", default="median")
    parser.add_argument("--startup", type=int, default=None, help="the pruner's n_startup_trials")
    opts = parser.parse_args()
    opts.workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for pruner in ("none", opts.pruner):
        study = sweep(opts.workdir, opts.trials, opts.epochs, pruner, opts.startup)
        trial_s = sum(t["duration_s"] or 0 for t in study["trials"])
        states = ", ".join(f"{k} {v}" for k, v in sorted(study["states"].items()))
        best = max((b["values"]["val_accuracy"] for b in study["best"]), default=float("nan"))
        rows.append(f"| {pruner} | {states} | {study['epochs_trained']} | {best:.4f} | {trial_s:.0f} |")
    startup = "" if opts.startup is None else f" --startup {opts.startup}"
    command = (
        f"python benchmarks/sweep_pruning.py --trials {opts.trials} --epochs {opts.epochs} --pruner {opts.pruner}"
        f"{startup}"
    )
    key = f"sweep-pruning-{opts.pruner}" + (f"-startup{opts.startup}" if opts.startup is not None else "")
    write_section(
        key,
        "\n".join(
            [
                f"## Sweep with and without pruning ({opts.pruner}{startup}): CNN on digits, +sweep=health",
                "",
                f"`{command}` on {machine()}.",
                f"{opts.trials} trials of at most {opts.epochs} epochs (early stopping may end one sooner), seed 42; "
                "trial s: the trials' durations summed.",
                "",
                "| pruner | trials | epochs trained | best objective | trial s |",
                "|---|---|---|---|---|",
                *rows,
            ]
        ),
    )


if __name__ == "__main__":
    main()
