"""PNG plots of a study (Optuna's matplotlib backend): optimization history, parameter importances and
parallel coordinates per objective, the Pareto front of a multi-objective study, and the per-epoch
values the pruner saw."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from optuna.trial import TrialState


def write_plots(study: Any, names: list[str], importances: dict[str, dict[str, float]], folder: Path) -> list[Path]:
    """Draw what the finished trials allow (importances: objective -> {param: importance}, as the
    report computed them); return the files written."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    folder.mkdir(parents=True, exist_ok=True)
    wanted: list[tuple[str, Any]] = []
    for i, name in enumerate(names):
        target = None if len(names) == 1 else (lambda t, i=i: t.values[i])
        suffix = "" if len(names) == 1 else f"_{name}"
        if complete:
            wanted.append(
                (
                    f"history{suffix}",
                    lambda t=target, n=name: ovm.plot_optimization_history(study, target=t, target_name=n),
                )
            )
            wanted.append(
                (
                    f"parallel_coordinates{suffix}",
                    lambda i=i, n=name: parallel_coordinates(
                        complete, i, n, study.directions[i].name == "MAXIMIZE", importances.get(n)
                    ),
                )
            )
        if importances.get(name):
            wanted.append((f"importances{suffix}", lambda n=name: _bars(importances[n], n)))
    if len(names) > 1 and complete:
        wanted.append(("pareto_front", lambda: ovm.plot_pareto_front(study, target_names=names)))
    if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        wanted.append(("intermediate_values", lambda: ovm.plot_intermediate_values(study)))

    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        for stem, draw in wanted:
            axes = draw()
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
            figure.set_size_inches(max(9.0, figure.get_figwidth()), 5.5)  # wide plots keep their width
            figure.tight_layout()
            path = folder / f"{stem}.png"
            figure.savefig(path, dpi=100)
            plt.close(figure)
            written.append(path)
    return written


MOST_PARAMS = 8  # axes in the parallel-coordinates plot: more than this cannot be read


def parallel_coordinates(
    trials: list[Any], index: int, name: str, maximize: bool, importances: dict[str, float] | None
) -> Any:
    """One vertical axis per parameter (the most important first, at most MOST_PARAMS) and one for the
    objective; a line per trial coloured by its value (viridis: no line fades into the background) and the
    best trial drawn thick on top. Categories are spread evenly with their labels boxed beside the axis.
    (Optuna's own version overlaps category labels and draws poor trials white on grey.)"""
    import matplotlib.pyplot as plt
    import numpy as np

    names = sorted({p for t in trials for p in t.params}, key=lambda p: (-(importances or {}).get(p, 0.0), p))
    names = names[:MOST_PARAMS]
    values = np.array([t.values[index] for t in trials])
    columns, ticks = [], []
    for param in names:
        column, labels = _normalised([t.params.get(param) for t in trials])
        columns.append(column)
        ticks.append(labels)
    low, high = values.min(), values.max()
    columns.append((values - low) / (high - low) if high > low else np.full(len(values), 0.5))
    ticks.append([(0.0, f"{low:.4g}"), (1.0, f"{high:.4g}")])
    _, axes = plt.subplots(figsize=(max(6.0, 1.3 * len(columns) + 1.5), 5.5))
    colours = plt.get_cmap("viridis")(columns[-1] if maximize else 1 - columns[-1])
    order = np.argsort(values if maximize else -values)  # the best drawn last, on top
    for rank, row in enumerate(order):
        best = rank == len(order) - 1
        axes.plot(
            range(len(columns)),
            [c[row] for c in columns],
            color=colours[row],
            linewidth=3.0 if best else 1.2,
            alpha=1.0 if best else 0.75,
            zorder=3 if best else 2,
        )
    for x, labels in enumerate(ticks):
        axes.axvline(x, color="0.3", linewidth=0.8, zorder=1)
        for y, label in labels:
            axes.text(
                x + 0.04,
                y,
                label,
                fontsize=7,
                va="center",
                zorder=4,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
            )
    axes.set_facecolor("white")  # Optuna's plots switch matplotlib to a grey style
    axes.set_xticks(
        range(len(columns)),
        [p.removeprefix("model.").removesuffix("._target_") for p in names] + [name],
        rotation=25,
        ha="right",
        fontsize=8,
    )
    axes.set_yticks([])
    axes.set_xlim(-0.2, len(columns) - 0.4)
    axes.set_ylim(-0.05, 1.05)
    best_label = "highest" if maximize else "lowest"
    axes.set_title(
        f"Parallel coordinates: {len(trials)} trials, colour = {name} (yellow = best, thick = {best_label})", fontsize=9
    )
    return axes


def _normalised(raw: list[Any]) -> tuple[Any, list[tuple[float, str]]]:
    """Positions in [0, 1] for one parameter's values and the labels of its axis: numbers linearly
    (log-spaced when they span more than two decades), anything else as evenly spread categories."""
    import numpy as np

    known = [v for v in raw if v is not None]
    if known and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in known):
        numbers = np.array([np.nan if v is None else float(v) for v in raw])
        low, high = np.nanmin(numbers), np.nanmax(numbers)
        log = low > 0 and high / low > 100
        scale = np.log10 if log else (lambda x: x)
        span = scale(high) - scale(low)
        positions = (scale(numbers) - scale(low)) / span if span else np.full(len(raw), 0.5)
        shown = sorted(set(numbers[~np.isnan(numbers)])) if len(set(known)) <= 5 else [low, high]
        return np.nan_to_num(positions, nan=0.5), [
            ((scale(v) - scale(low)) / span if span else 0.5, f"{v:.4g}") for v in shown
        ]
    categories = sorted({str(v) for v in raw})
    where = {c: i / max(len(categories) - 1, 1) for i, c in enumerate(categories)}
    labels = [(where[c], c.rsplit(".", 1)[-1]) for c in categories]  # torch.optim.Adam -> Adam
    return np.array([where[str(v)] for v in raw]), labels


def _bars(importances: dict[str, float], name: str) -> Any:
    import matplotlib.pyplot as plt

    _, axes = plt.subplots()
    params = list(importances)[::-1]  # most important on top
    axes.barh(params, [importances[p] for p in params])
    axes.set_xlabel(f"importance for {name} (fANOVA)")
    axes.set_title("Parameter importances")
    return axes
