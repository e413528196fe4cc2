"""TimeHUT through the one run path: short fits on aeon's offline UnitTest set (Chinatown-derived)."""

from __future__ import annotations

import pytest

from conftest import cli
from lightsweep.paths import CONF_DIR

SCHEDULES = sorted(p.stem for p in (CONF_DIR / "scheduler").glob("*.yaml") if p.stem != "none")
TINY = ["model=timehut", "dataset=unit_test", "trainer.max_epochs=2", "callbacks=none", "test_ckpt=last"]


def test_short_fit_reports_svm_metrics_and_tau(run_cfg):
    result, record = run_cfg([*TINY, "scheduler=cosine_annealing", "scheduler.t_max=1.0"])
    metrics = record["metrics"]
    for name in ("train/loss", "val/acc", "test/acc", "test/f1_macro", "test/auprc"):
        assert 0.0 <= metrics[name] < 100.0, name
    assert metrics["train/tau"] == pytest.approx(0.15)  # pi convention: tau(t_max=1) = tau_min at epoch 1
    assert metrics["test/acc"] > 0.5 and record["model_family"] == "timehut"
    assert record["objective"] == pytest.approx(metrics["val/acc"])


def test_auto_model_picks_timehut_for_time_series(run_cfg):
    _, record = run_cfg(["model=auto", "dataset=unit_test", "trainer.max_epochs=1", "callbacks=none", "test_ckpt=last"])
    assert record["model_family"] == "timehut"


@pytest.mark.slow
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_schedule_trains(run_cfg, schedule):
    result, record = run_cfg([*TINY, f"scheduler={schedule}"])
    assert record["status"] == "ok" and 0.0 < record["metrics"]["train/tau"] <= 1.0


def test_all_21_schedules_are_configured():
    # TSlib temperature_schedulers.py's 22 methods less no_scheduling, which is scheduler=none (tau fixed at 1.0)
    assert len(SCHEDULES) == 21 and "no_scheduling" not in SCHEDULES


def test_unknown_schedule_lists_the_valid_names():
    proc = cli("model=timehut", "scheduler=bogus")
    assert proc.returncode == 2 and "unknown scheduler 'bogus'" in proc.stderr
    assert all(name in proc.stderr for name in ("cosine_annealing", "noisy_cosine", "warmup_cosine"))


def test_schedule_on_a_model_without_temperature_is_refused():
    proc = cli("model=cnn", "dataset=digits", "scheduler=linear_decay", "trainer.max_epochs=1")
    assert proc.returncode == 2 and "scheduler=none" in proc.stderr


def test_atrial_fibrillation_offline_names_archive_and_path(tmp_path):
    proc = cli("dataset=atrial_fibrillation", f"paths.data_dir={tmp_path}", "dataset.download_url=http://127.0.0.1:9/")
    assert proc.returncode == 2
    assert "AtrialFibrillation" in proc.stderr and "UEA" in proc.stderr and str(tmp_path) in proc.stderr
