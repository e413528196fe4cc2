"""The study's parallel-coordinates plot stays readable: category labels apart, every trial's line visible
against the background, at most MOST_PARAMS axes, the best trial drawn last."""

from __future__ import annotations

import matplotlib
import numpy as np
import optuna
from matplotlib.colors import to_rgb

from lightsweep.sweep.plots import MOST_PARAMS, parallel_coordinates

matplotlib.use("Agg")


def _study(n_trials: int = 12):
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(n_trials):
        trial = study.ask()
        score = trial.suggest_float("model.optimizer.lr", 1e-4, 1e-2, log=True) * 10
        trial.suggest_categorical("model.activation", ["relu", "leaky_relu", "swish"])
        trial.suggest_categorical("model.kernel_init", ["he_normal", "glorot_uniform"])
        trial.suggest_categorical("model.optimizer._target_", ["torch.optim.Adam", "torch.optim.SGD"])
        for i in range(8):
            trial.suggest_int(f"model.extra_{i}", 1, 4)
        study.tell(trial, score)
    return study


def _luminance(colour) -> float:
    red, green, blue = to_rgb(colour)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def test_parallel_coordinates_labels_apart_lines_visible_best_on_top():
    study = _study()
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    importances = {
        "model.activation": 0.5,
        "model.optimizer.lr": 0.3,
        "model.kernel_init": 0.1,
        "model.optimizer._target_": 0.05,
    }
    axes = parallel_coordinates(trials, 0, "val_accuracy", True, importances)
    figure = axes.figure
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()

    labels = [tick.get_text() for tick in axes.get_xticklabels()]
    assert len(labels) == MOST_PARAMS + 1 and labels[-1] == "val_accuracy"
    assert labels[:3] == ["activation", "optimizer.lr", "kernel_init"]  # most important first, short names
    boxes = [t.get_window_extent(renderer) for t in axes.texts]
    for i, first in enumerate(boxes):  # no two value labels overlap (the stock plot printed "leaky_reTrue")
        for second in boxes[i + 1 :]:
            assert not first.overlaps(second), "overlapping axis labels"
    assert "Adam" in [t.get_text() for t in axes.texts]  # torch.optim.Adam shown by its class name

    background = _luminance(axes.get_facecolor())
    lines = axes.get_lines()[: len(trials)]
    assert all(background - _luminance(line.get_color()) > 0.1 for line in lines)  # none fades out
    best = max(trials, key=lambda t: t.value)
    top = lines[-1]
    assert top.get_linewidth() > max(line.get_linewidth() for line in lines[:-1])
    assert np.isclose(top.get_ydata()[-1], 1.0) and best.value == max(t.value for t in trials)
