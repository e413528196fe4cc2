"""Per-run plots: each drawing function writes a real PNG, and a run with callbacks=default leaves the
whole set in <run dir>/plots/."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lightsweep.errors import ConfigError
from lightsweep.report import plots

HEALTH = {
    "curves": {
        "train/loss": [1.0, 0.6, 0.4, 0.3],
        "val/loss": [0.9, 0.7, 0.75, 0.8],
        "train/acc": [0.5, 0.7, 0.8, 0.9],
        "val/acc": [0.55, 0.7, 0.7, 0.68],
    },
    "components": {
        "neuron_utilization": 0.9,
        "parameter_efficiency": 0.8,
        "training_stability": 0.7,
        "gradient_health": 1.0,
        "convergence_quality": 0.6,
        "accuracy_consistency": 0.5,
    },
}


def assert_png(path):
    """A PNG that decodes, has a real size and is not one flat colour."""
    assert path.stat().st_size > 1000
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) >= 100
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 1.0


def test_each_plot_is_a_real_png(tmp_path):
    rng = np.random.default_rng(0)
    drawn = [
        plots.learning_curves(HEALTH["curves"], 1, tmp_path / "curves.png"),
        plots.confusion_matrix(rng.integers(0, 20, (10, 10)), tmp_path / "confusion.png"),
        plots.gradient_flow(
            {"conv": 1e-3, "fc": 2.0, "dead": 0.0},
            {"conv": "healthy", "fc": "exploding", "dead": "dead"},
            tmp_path / "gradients.png",
        ),
        plots.weight_distributions(
            {"fc.weight": rng.normal(size=500), "fc.bias": rng.normal(size=20)}, tmp_path / "weights.png"
        ),
        plots.dead_units({"net.2": 0.0, "net.5": 0.75}, tmp_path / "dead.png"),
        plots.health_radar(HEALTH["components"], 0.76, tmp_path / "radar.png"),
    ]
    for path in drawn:
        assert_png(path)


def test_a_default_run_leaves_every_plot(run_cfg, tmp_path):
    _, record = run_cfg(
        ["model=cnn", "dataset=digits", "model.filters=8", "trainer.limit_train_batches=4"], output_dir=tmp_path / "run"
    )
    report = record["plots"]
    assert sorted(report["files"]) == [
        "confusion_matrix.png",
        "dead_units.png",
        "gradient_flow.png",
        "health_radar.png",
        "learning_curves.png",
        "weights.png",
    ]
    assert report["skipped"] == {} and report["seconds"] > 0
    for name in report["files"]:
        assert_png(tmp_path / "run" / "plots" / name)


def test_plots_need_the_health_callback(run_cfg):
    with pytest.raises(ConfigError, match="health callback"):
        run_cfg(["model=cnn", "dataset=digits", "callbacks=[model_checkpoint,plots]", "trainer.max_epochs=1"])


def _drawn(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def test_a_one_epoch_run_draws_visible_points_on_whole_epochs():
    fig = plots.learning_curves_figure(
        {"train/loss": [1.2], "val/loss": [0.8], "train/acc": [0.7], "val/acc": [0.9]}, None
    )
    _drawn(fig)
    for ax in fig.axes:
        assert all(line.get_marker() not in (None, "None", "") for line in ax.get_lines())
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks)


def test_long_layer_names_and_axis_labels_stay_inside_the_gradient_flow_figure():
    names = {f"encoder.feature_extractor.net.{i}.conv{j}": 10.0**-i for i in range(5) for j in (1, 2)}
    fig = plots.gradient_flow_figure(names, {})
    renderer = _drawn(fig)
    ax = fig.axes[0]
    texts = [*ax.get_yticklabels(), ax.xaxis.label, *ax.get_xticklabels()]
    for text in texts:
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.y0 >= 0, text.get_text()


def test_a_panel_without_curves_says_why_instead_of_staying_blank():
    fig = plots.learning_curves_figure({"train/loss": [3.0, 2.0, 1.5]}, None)
    loss, accuracy = fig.axes
    assert loss.has_data() and not loss.texts
    assert [t.get_text() for t in accuracy.texts] == ["no per-epoch acc:\nthis model is scored after training"]
