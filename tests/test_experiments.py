"""Every shipped experiment= and debug= choice runs end to end (budgets shrunk, everything else as shipped)."""

from __future__ import annotations

import pytest

from conftest import SHARED_DATA, shared_data
from lightsweep.paths import CONF_DIR

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
DEBUGS = sorted(p.stem for p in (CONF_DIR / "debug").glob("*.yaml"))
NEEDS_SHARED_DATA = {"timehut_chinatown": "UCR"}


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_runs(name, run_cfg):
    if name in NEEDS_SHARED_DATA:
        shared_data(NEEDS_SHARED_DATA[name])
    result, record = run_cfg([f"experiment={name}", f"paths.data_dir={SHARED_DATA}", "trainer.max_epochs=2"])
    assert result.status == "ok" and record["status"] == "ok"
    assert "test/acc" in record["metrics"] and record["objective"] is not None


@pytest.mark.slow
@pytest.mark.parametrize("name", DEBUGS)
def test_every_debug_mode_runs(name, run_cfg, tmp_path):
    out = tmp_path / "run"
    result, record = run_cfg(["model=cnn", "dataset=digits", f"debug={name}", "trainer.max_epochs=2"], output_dir=out)
    assert result.status == "ok" and "test/acc" in record["metrics"]
    if name == "profile":
        assert (out / "fit-profile.txt").stat().st_size > 0 and (out / "test-profile.txt").is_file()
    if name == "fast":
        assert not (out / "checkpoints").exists()  # callbacks=none: nothing written
