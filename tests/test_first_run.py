"""What a newcomer sees: one line per epoch (or one line redrawn in place), a default run that leaves
plots, health and efficiency, a closing summary that names them, and finders whose values are recorded."""

from __future__ import annotations

import io
import json
import logging

import pytest

from conftest import cli

SMALL = [
    "model=cnn",
    "dataset=digits",
    "model.filters=8",
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "trainer.enable_progress_bar=true",
]


def epoch_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "lightsweep.progress"]


def test_without_a_terminal_a_long_run_logs_about_twenty_epoch_lines(run_cfg, caplog):
    with caplog.at_level(logging.INFO, logger="lightsweep.progress"):
        run_cfg([*SMALL, "trainer.max_epochs=40", "callbacks=none", "test_ckpt=last"])
    lines = epoch_lines(caplog)
    assert len(lines) == 20 and lines[0].startswith("epoch 2/40  train/loss ") and "val/acc" in lines[0]
    assert lines[-1].startswith("epoch 40/40")


def test_a_short_run_logs_every_epoch(run_cfg, caplog):
    with caplog.at_level(logging.INFO, logger="lightsweep.progress"):
        run_cfg([*SMALL, "trainer.max_epochs=3"])
    assert [line.split("  ")[0] for line in epoch_lines(caplog)] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_in_a_terminal_one_line_is_redrawn_in_place(tmp_path):
    import lightning as L

    from lightsweep.build import build
    from lightsweep.callbacks.progress import EpochProgress
    from lightsweep.config import compose

    cfg = compose(["model=cnn", "model.filters=8"], output_dir=tmp_path)
    data = build(cfg.dataset)
    data.prepare_data()
    data.setup("fit")
    model = build(cfg.model, recursive=False, input_shape=data.input_shape, num_classes=data.num_classes)
    screen = Terminal()
    trainer = L.Trainer(
        max_epochs=4,
        limit_train_batches=1,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[EpochProgress(screen)],
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=data)
    shown = screen.getvalue()
    assert shown.count("\r") == 4 and shown.count("\n") == 1 and shown.endswith("\n")
    assert "\repoch 4/4  train/loss" in shown


@pytest.mark.slow
def test_the_make_train_run_leaves_plots_health_efficiency_and_names_them(tmp_path):
    run_dir = tmp_path / "run"
    proc = cli("experiment=timehut_chinatown", "dataset=unit_test", "trainer.max_epochs=3", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["health"]["overall"] is not None and record["efficiency"]["parameters"] > 0
    plots = sorted(p.name for p in (run_dir / "plots").glob("*.png"))
    assert "learning_curves.png" in plots and "health_radar.png" in plots
    said = proc.stdout + proc.stderr
    assert f"run dir: {run_dir}" in said and f"plots: {run_dir / 'plots'}/ " in said
    assert "smaller than the logging interval" not in said
    assert said.count("epoch 3/3") == 1


def test_the_learning_rate_finder_says_and_records_the_rate_it_applied(run_cfg, caplog):
    with caplog.at_level(logging.INFO, logger="lightsweep.callbacks.finders"):
        _, record = run_cfg(
            [
                "model=cnn",
                "dataset=digits",
                "model.filters=8",
                "callbacks=[default,lr_finder]",
                "callbacks.lr_finder.num_training_steps=20",
                "trainer.max_epochs=1",
            ]
        )
    lr = record["lr_finder"]["suggested_lr"]
    assert record["config"]["model"]["optimizer"]["lr"] == lr != record["lr_finder"]["configured_lr"]
    assert any(m.startswith(f"lr_finder: training with learning rate {lr:.3g}") for m in caplog.messages)
