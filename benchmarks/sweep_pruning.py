"""Epochs a sweep trains with its default pruner and without one (issue 17, acceptance 5).

For each seed, runs `+sweep=simple` on digits (model=auto: the CNN) twice through the CLI, same seed: once
with the sweep's default pruner (the median, its settings derived from n_trials and the epochs:
conf/sweep/simple.yaml) and once with hydra/sweeper/pruner=none. From each study report (study.json) it
records the trial states, the epochs trained and the best objective (val_accuracy). TPE's first 10 trials
are seeded random draws, so both sweeps try the same first 10 configurations; what differs there is what
pruning cut, later the sampler also sees the pruned trials. Target: >= 40 % fewer epochs, the best
objective within 0.5 points (0.005).

    python benchmarks/sweep_pruning.py [--workdir DIR] [--trials 16] [--epochs 4] [--seeds 0 1] [--override O ...]

Each --override goes to the pruned sweep only, to measure other settings than the derived ones (e.g.
hydra.sweeper.pruner.n_warmup_steps=0); each set of them gets its own section. Each sweep is a normal study:
rerunning this script resumes them (only finishes what is missing), so measure a changed rule in a fresh
--workdir.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import machine, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET_SAVED, TARGET_POINTS = 0.40, 0.5  # the acceptance: share of epochs saved, best objective within (points)


def sweep(workdir: Path, name: str, trials: int, epochs: int, seed: int, overrides: list[str]) -> dict:
    """Run (or resume) one sweep in workdir; its study.json with the pruner's settings added."""
    import optuna

    args = ["-m", "dataset=digits", "+sweep=simple", f"seed={seed}", f"hydra.sweeper.n_trials={trials}"]
    args += [f"trainer.max_epochs={epochs}", f"hydra.sweeper.study_name={name}", *overrides]
    subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=workdir, check=True, stdout=subprocess.DEVNULL)
    study = json.loads((workdir / "multirun" / name / "study.json").read_text())
    stored = optuna.load_study(study_name=study["study_name"], storage=study["storage"])
    return {**study, "pruner": stored.user_attrs["pruner"]}


def settings(pruner: dict) -> str:
    """The pruner as the table shows it: its class and the settings that decide what it prunes."""
    shown = ("n_startup_trials", "n_warmup_steps", "n_min_trials")
    name = pruner["_target_"].rsplit(".", 1)[-1].removesuffix("Pruner").lower().replace("nop", "none")
    details = ", ".join(f"{key.removeprefix('n_')} {pruner[key]}" for key in shown if key in pruner)
    return f"{name} ({details})" if details else name


def slug(overrides: list[str]) -> str:
    """The overrides as a part of a study name and a RESULTS.md key: -n_startup_trials_4 ('' for none)."""
    parts = (f"{key.rsplit('.', 1)[-1]}_{value}" for key, _, value in (item.partition("=") for item in overrides))
    return "".join("-" + re.sub(r"\W+", "_", part) for part in parts)


def best_value(study: dict) -> float:
    return max((b["values"]["val_accuracy"] for b in study["best"]), default=float("nan"))


def compare(opts: argparse.Namespace, seed: int) -> tuple[list[str], tuple[int, int, float]]:
    """Table rows of one seed (no pruner, default pruner) and (epochs pruned, epochs unpruned, best Δ points)."""
    label = f"digits-t{opts.trials}-e{opts.epochs}-s{seed}"
    unpruned = sweep(opts.workdir, f"{label}-none", opts.trials, opts.epochs, seed, ["hydra/sweeper/pruner=none"])
    pruned = sweep(
        opts.workdir, f"{label}-default{slug(opts.overrides)}", opts.trials, opts.epochs, seed, opts.overrides
    )
    saved = 1 - pruned["epochs_trained"] / unpruned["epochs_trained"]
    points = 100 * (best_value(pruned) - best_value(unpruned))
    rows = []
    for study, change in ((unpruned, ""), (pruned, f"{-saved:+.0%} epochs, {points:+.2f} points")):
        states = ", ".join(f"{k} {v}" for k, v in sorted(study["states"].items()))
        rows.append(
            f"| {seed} | {settings(study['pruner'])} | {states} | {study['epochs_trained']} | "
            f"{best_value(study):.4f} | {change} |"
        )
    return rows, (pruned["epochs_trained"], unpruned["epochs_trained"], points)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("."), help="its multirun/ holds the studies")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument(
        "--override", dest="overrides", action="append", default=[], help="an override of the pruned sweep (repeatable)"
    )
    opts = parser.parse_args()
    opts.workdir.mkdir(parents=True, exist_ok=True)
    rows, outcomes = [], []
    for seed in opts.seeds:
        seed_rows, outcome = compare(opts, seed)
        rows += seed_rows
        outcomes.append(outcome)
        print("\n".join(seed_rows), flush=True)
    command = " ".join(
        ["python benchmarks/sweep_pruning.py", f"--trials {opts.trials} --epochs {opts.epochs}"]
        + [f"--seeds {' '.join(map(str, opts.seeds))}", *(f"--override {o}" for o in opts.overrides)]
    )
    target = f">= {TARGET_SAVED:.0%} fewer epochs, best within {TARGET_POINTS} points"
    met = sum(
        1 - pruned / unpruned >= TARGET_SAVED and points >= -TARGET_POINTS for pruned, unpruned, points in outcomes
    )
    pruned, unpruned = sum(o[0] for o in outcomes), sum(o[1] for o in outcomes)
    verdict = (
        f"All seeds: {pruned} of {unpruned} epochs ({pruned / unpruned - 1:+.1%}); best objective within "
        f"{TARGET_POINTS} points in {sum(o[2] >= -TARGET_POINTS for o in outcomes)} of {len(outcomes)} seeds (worst "
        f"{min(o[2] for o in outcomes):+.2f}); target ({target}) met for {met} of {len(outcomes)} seeds"
    )
    key = "sweep-pruning-default" + slug(opts.overrides)
    variant = f" ({' '.join(opts.overrides)})" if opts.overrides else ""
    body = [
        f"## Sweep with the default pruner and without: +sweep=simple on digits{variant}",
        "",
        f"`{command}` on {machine()}.",
        f"{opts.trials} trials of at most {opts.epochs} epochs (early stopping may end one sooner); best objective: "
        "val_accuracy (1 point = 0.01).",
        "",
        "| seed | pruner | trials | epochs trained | best objective | vs. none |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"{verdict}.",
    ]
    write_section(key, "\n".join(body))
    print(verdict)


if __name__ == "__main__":
    main()
