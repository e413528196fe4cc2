"""What other median-pruner settings would have saved, replayed on the learning curves of unpruned sweeps.

Reads the `pruner=none` studies that benchmarks/sweep_pruning.py left in --workdir (digits-t<trials>-
e<epochs>-s<seed>-none) and replays their trials, in order, through Optuna's own MedianPruner in an
in-memory study: each trial reports its recorded val/acc epoch by epoch and stops where the pruner says.
Exact for the first 10 trials (TPE's seeded random draws, the same in a pruned sweep); after them a real
pruned sweep draws other trials, because the sampler also sees the pruned ones, so the totals are an
estimate: sweep_pruning.py measures the chosen settings for real.

    python benchmarks/sweep_pruning_replay.py [--workdir DIR] [--trials 16] [--epochs 4] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import machine, write_section  # noqa: E402

STARTUP, MIN_TRIALS = (1, 2, 3, 4, 5), (1, 2)  # the settings tried; warm-up: every epoch but the last
FIRST = 10  # TPE's random startup trials: the part of the replay that a pruned sweep repeats exactly


def curves(workdir: Path, trials: int, epochs: int, seed: int) -> list[tuple[list[float], float]]:
    """(val/acc per epoch, objective) of each trial of the unpruned study, in trial order."""
    import optuna

    meta = json.loads((workdir / "multirun" / f"digits-t{trials}-e{epochs}-s{seed}-none" / "study.json").read_text())
    study = optuna.load_study(study_name=meta["study_name"], storage=meta["storage"])
    return [([t.intermediate_values[s] for s in sorted(t.intermediate_values)], t.value) for t in study.trials]


def replay(recorded: list[tuple[list[float], float]], pruner) -> tuple[int, int, float, float]:
    """(epochs trained in the first FIRST trials, in all, best objective of the first FIRST, of all) with this
    pruner."""
    import optuna

    study = optuna.create_study(direction="maximize", pruner=pruner)
    epochs, finished = [], []
    for values, final in recorded:
        trial = study.ask()
        for step, value in enumerate(values):
            trial.report(value, step)
            if step < len(values) - 1 and trial.should_prune():  # as the sweep: never after the last epoch
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, final)
            finished.append((trial.number, final))
        epochs.append(step + 1)
    best_first = max(value for number, value in finished if number < FIRST)
    return sum(epochs[:FIRST]), sum(epochs), best_first, max(value for _, value in finished)


def main() -> None:
    import optuna

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("."), help="where sweep_pruning.py ran")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    opts = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    recorded = {seed: curves(opts.workdir, opts.trials, opts.epochs, seed) for seed in opts.seeds}
    unpruned = {seed: replay(r, optuna.pruners.NopPruner()) for seed, r in recorded.items()}
    rows = []
    for startup, warmup, min_trials in itertools.product(STARTUP, range(opts.epochs - 1), MIN_TRIALS):
        pruner = optuna.pruners.MedianPruner(startup, warmup, n_min_trials=min_trials)
        runs = [(replay(r, pruner), unpruned[seed]) for seed, r in recorded.items()]
        first = 1 - sum(p[0] for p, _ in runs) / sum(u[0] for _, u in runs)
        total = 1 - sum(p[1] for p, _ in runs) / sum(u[1] for _, u in runs)
        lost = [100 * (p[2] - u[2]) for p, u in runs if p[2] < u[2]]  # the first trials' best, pruned away
        worst = f", worst {min(lost):+.2f}" if lost else ""
        rows.append(f"| {startup} | {warmup} | {min_trials} | {first:.0%} | {len(lost)}{worst} | {total:.0%} |")
    seeds = " ".join(map(str, opts.seeds))
    write_section(
        f"sweep-pruning-replay-t{opts.trials}-e{opts.epochs}",
        "\n".join(
            [
                f"## Median-pruner settings replayed on unpruned sweeps ({opts.trials} trials, {opts.epochs} epochs)",
                "",
                f"`python benchmarks/sweep_pruning_replay.py --trials {opts.trials} --epochs {opts.epochs} "
                f"--seeds {seeds}` on {machine()}, on the `pruner=none` studies of `sweep_pruning.py`.",
                f"Over all seeds: epochs not trained, in the first {FIRST} trials (exact: the same random draws as a "
                "pruned sweep) and in all (an estimate: a pruned sweep's sampler draws other later trials, see "
                f"sweep-pruning-default); best lost: seeds whose best of the first {FIRST} was pruned, and the worst "
                "loss in points (0.01 val_accuracy).",
                "",
                f"| startup | warm-up | min trials | saved, first {FIRST} | best lost | saved, all (estimate) |",
                "|---|---|---|---|---|---|",
                *rows,
            ]
        ),
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
