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
            wanted.append((f"history{suffix}", lambda t=target, n=name: ovm.plot_optimization_history(
                study, target=t, target_name=n)))
            wanted.append((f"parallel_coordinates{suffix}", lambda t=target, n=name: ovm.plot_parallel_coordinate(
                study, target=t, target_name=n)))
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
            figure.set_size_inches(9, 5.5)
            figure.tight_layout()
            path = folder / f"{stem}.png"
            figure.savefig(path, dpi=100)
            plt.close(figure)
            written.append(path)
    return written


def _bars(importances: dict[str, float], name: str) -> Any:
    import matplotlib.pyplot as plt

    _, axes = plt.subplots()
    params = list(importances)[::-1]  # most important on top
    axes.barh(params, [importances[p] for p in params])
    axes.set_xlabel(f"importance for {name} (fANOVA)")
    axes.set_title("Parameter importances")
    return axes
