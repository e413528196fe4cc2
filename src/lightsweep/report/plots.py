"""Per-run diagnostic plots as PNG files: data in, file out, nothing read from a model or trainer.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot, no GUI backend, no global
figure state), small and without tight_layout, so a whole set takes a fraction of a second."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import AutoLocator, FuncFormatter, LogLocator, MaxNLocator, NullLocator

from lightsweep.health import diagnostics

STATUS_COLORS = {"healthy": "tab:green", "vanishing": "tab:orange", "exploding": "tab:red", "dead": "tab:gray"}


def _lean_ticks(fig: Figure) -> None:
    """About 4 major ticks per automatic axis and no minor ones: creating tick objects is most of what
    matplotlib spends on a small figure. Axes with fixed ticks (layer names, classes) keep theirs."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_minor_locator(NullLocator())
            if axis.get_scale() == "log":
                axis.set_major_locator(LogLocator(numticks=4))
            elif isinstance(axis.get_major_locator(), AutoLocator):
                axis.set_major_locator(MaxNLocator(4, integer=axis.get_label_text() == "epoch"))


def _save(fig: Figure, path: Path, dpi: int) -> Path:
    _lean_ticks(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)  # attach the Agg canvas: PNG without any GUI backend
    fig.savefig(path, dpi=dpi, format="png")
    return path


def _label_margin(labels: Sequence[str], width_in: float) -> float:
    """Left margin (figure fraction) that fits the longest 6-pt tick label (~0.045 in a character)."""
    return min(0.5, (0.045 * max((len(label) for label in labels), default=4) + 0.2) / width_in)


def learning_curves(curves: Mapping[str, Sequence[float]], onset_epoch: int | None, path: Path, dpi: int = 80) -> Path:
    """Loss (left) and accuracy (right) per epoch for train and val; the overfitting onset as a dashed line."""
    return _save(learning_curves_figure(curves, onset_epoch), path, dpi)


def learning_curves_figure(curves: Mapping[str, Sequence[float]], onset_epoch: int | None) -> Figure:
    fig = Figure(figsize=(8, 3.2))
    fig.subplots_adjust(bottom=0.16)  # room for the x label (tight_layout would cost a second draw)
    axes = fig.subplots(1, 2)
    for ax, kind in zip(axes, ("loss", "acc")):
        for split, color in (("train", "tab:blue"), ("val", "tab:orange")):
            values = curves.get(f"{split}/{kind}") or []
            if values:  # markers while few: a one-epoch run is a single point, which a bare line would not show
                marker = "o" if len(values) <= 30 else None
                ax.plot(range(len(values)), values, color=color, label=split, marker=marker, markersize=3)
        if not ax.has_data():  # e.g. TimeHUT: accuracy comes from the classifier fitted after training
            ax.text(
                0.5,
                0.5,
                f"no per-epoch {kind}:\nthis model is scored after training",
                ha="center",
                va="center",
                fontsize=8,
                color="0.4",
                transform=ax.transAxes,
            )
        ax.set_xlim(-0.5, max(1, *(len(v) for v in curves.values())) - 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(5, integer=True, min_n_ticks=1))  # whole epochs, never -0.25
        if onset_epoch is not None:
            ax.axvline(onset_epoch, color="tab:red", linestyle="--", label=f"overfitting from epoch {onset_epoch}")
        ax.set(title=kind, xlabel="epoch")
    if axes[0].has_data():
        axes[0].legend(fontsize=7, loc="upper right")  # one legend: both panels use the same colours
    return fig


def confusion_matrix(matrix: np.ndarray, path: Path, dpi: int = 80) -> Path:
    """Counts of (true class, predicted class) with per-class recall in the row labels."""
    matrix = np.asarray(matrix)
    size = max(3.0, 0.45 * len(matrix) + 1.5)
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    recall = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
    ax.set_yticks(range(len(matrix)), [f"{i} ({r:.2f})" for i, r in enumerate(recall)], fontsize=7)
    ax.set_xticks(range(len(matrix)), [str(i) for i in range(len(matrix))], fontsize=7)
    if len(matrix) <= 5:  # counts in the cells only while few (each text costs ~1 ms to draw)
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=6)
    accuracy = matrix.diagonal().sum() / max(matrix.sum(), 1)
    ax.set(title=f"test accuracy {accuracy:.3f}", xlabel="predicted", ylabel="true (recall)")
    return _save(fig, path, dpi)


def gradient_flow(mean_abs: Mapping[str, float], statuses: Mapping[str, str], path: Path, dpi: int = 80) -> Path:
    """Mean |gradient| per layer (log scale), coloured by status, with the vanishing/exploding thresholds."""
    return _save(gradient_flow_figure(mean_abs, statuses), path, dpi)


def gradient_flow_figure(mean_abs: Mapping[str, float], statuses: Mapping[str, str]) -> Figure:
    names = list(mean_abs)
    height = max(2.5, 0.22 * len(names) + 1)
    fig = Figure(figsize=(8, height))
    fig.subplots_adjust(left=_label_margin(names, 8), bottom=0.55 / height + 0.02)  # room for names, x label
    ax = fig.subplots()
    values = [max(mean_abs[n], 1e-12) for n in names]
    ax.barh(range(len(names)), values, color=[STATUS_COLORS.get(statuses.get(n, ""), "tab:blue") for n in names])
    ax.set_yticks(range(len(names)), [n or "(model)" for n in names], fontsize=6)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:.0e}"))  # no mathtext parsing
    ax.invert_yaxis()
    ax.axvline(diagnostics.VANISHING_MEAN, color="tab:orange", linestyle=":", label="vanishing below")
    ax.axvline(diagnostics.EXPLODING_MEAN, color="tab:red", linestyle=":", label="exploding above")
    ax.set(title="gradient flow (mean |g| per layer)", xlabel="mean |gradient|")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def weight_distributions(tensors: Mapping[str, np.ndarray], path: Path, dpi: int = 80) -> Path:
    """Histograms of all weight values (left) and all bias values (right), with the dead and saturated
    bands of diagnostics.weight_statistics marked."""
    fig = Figure(figsize=(8, 3.2))
    for ax, kind in zip(fig.subplots(1, 2), ("weight", "bias")):
        chosen = [v.ravel() for name, v in tensors.items() if name.rsplit(".", 1)[-1].startswith(kind)]
        values = np.concatenate(chosen) if chosen else np.zeros(0)
        if values.size:
            counts, edges = np.histogram(values, bins=60)
            ax.stairs(counts, edges, fill=True, color="tab:blue")  # one artist, not 60 bar patches
            stats = diagnostics.weight_statistics(torch.from_numpy(values))
            ax.set_title(
                f"{kind}s: {values.size} values, dead {stats['dead_share']:.1%}, "
                f"saturated {stats['saturated_share']:.1%}",
                fontsize=8,
            )
            for edge in (-diagnostics.SATURATED_WEIGHT, diagnostics.SATURATED_WEIGHT):
                if values.min() <= edge <= values.max():
                    ax.axvline(edge, color="tab:red", linestyle=":")
        else:
            ax.set_title(f"no {kind}s", fontsize=8)
    return _save(fig, path, dpi)


def dead_units(by_layer: Mapping[str, float], path: Path, dpi: int = 80) -> Path:
    """Share of dead units at each probed site (activation, LSTM output, GELU) on the probe batch."""
    names = list(by_layer)
    height = max(2.5, 0.22 * len(names) + 1)
    fig = Figure(figsize=(7, height))
    fig.subplots_adjust(left=_label_margin(names, 7), bottom=0.55 / height + 0.02)
    ax = fig.subplots()
    shares = [by_layer[n] for n in names]
    ax.barh(range(len(names)), shares, color=["tab:red" if s > 0.5 else "tab:blue" for s in shares])
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set(title="dead units per layer (probe batch)", xlabel="share of units dead")
    return _save(fig, path, dpi)


def health_radar(components: Mapping[str, float | None], overall: float, path: Path, dpi: int = 80) -> Path:
    """The measured component scores on a radar (0 centre, 1 rim; unmeasured ones, None, left out) with the
    overall score and how many components it covers in the title."""
    measured = {name: score for name, score in components.items() if score is not None}
    names = list(measured)
    angles = [2 * math.pi * i / len(names) for i in range(len(names))]
    values = [measured[n] for n in names]
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot(projection="polar")
    ax.plot(angles + angles[:1], values + values[:1], color="tab:green")
    ax.fill(angles + angles[:1], values + values[:1], color="tab:green", alpha=0.25)
    ax.set_xticks(angles, [n.replace("_", "\n") for n in names], fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_title(f"health {overall:.2f} ({len(names)} of {len(components)} components measured)", fontsize=9)
    return _save(fig, path, dpi)
