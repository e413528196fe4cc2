"""The optimizer's plots: paired time and memory ratios with their intervals, and accuracy against training
time (the Pareto front: configurations no other one beats on both)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightsweep.efficiency.optimizer import BASELINE


def write_plots(table: dict[str, dict[str, Any]], out_dir: Path) -> list[str]:
    """Write plots/*.png; returns their paths relative to out_dir."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = out_dir / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for key, title in (("time_ratio", "training time / baseline"), ("memory_ratio", "peak memory / baseline")):
        rows = [(label, fig[key]) for label, fig in table.items() if fig.get(key)]
        if not rows:
            continue
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
        for y, (_, ratio) in enumerate(rows):
            low, high = ratio.get("low"), ratio.get("high")
            color = "tab:green" if high is not None and high < 1 else "tab:gray"
            ax.barh(y, ratio["median"], color=color)
            if low is not None:
                ax.plot([low, high], [y, y], color="black", linewidth=1.5)
        ax.axvline(1.0, color="tab:red", linestyle="--", linewidth=1)
        ax.set_yticks(range(len(rows)), [label for label, _ in rows])
        ax.set_xlabel(f"{title} (median; line: 95% interval)")
        fig.tight_layout()
        path = folder / f"{key}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path.relative_to(out_dir)))
    points = [(label, fig["train_s"], fig["accuracy"]) for label, fig in table.items() if _plottable(fig)]
    if points:
        fig, ax = plt.subplots(figsize=(7, 5))
        front = _pareto(points)
        for label, seconds, accuracy in points:
            ax.scatter(seconds, accuracy, color="tab:blue" if label in front else "tab:gray", zorder=3)
            ax.annotate(label if label != BASELINE else "baseline", (seconds, accuracy), fontsize=7)
        ax.set_xlabel("training time, median (s)")
        ax.set_ylabel("test accuracy, mean over seeds")
        ax.set_title("accuracy vs. training time (blue: Pareto front)")
        fig.tight_layout()
        path = folder / "pareto.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path.relative_to(out_dir)))
    return written


def _plottable(fig: dict[str, Any]) -> bool:
    return fig.get("train_s") is not None and fig.get("accuracy") is not None


def _pareto(points: list[tuple[str, float, float]]) -> set[str]:
    """Labels no other point beats on both time (lower) and accuracy (higher)."""
    return {
        label
        for label, seconds, accuracy in points
        if not any(s <= seconds and a >= accuracy and (s, a) != (seconds, accuracy) for _, s, a in points)
    }
