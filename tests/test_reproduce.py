"""`lightsweep reproduce`: re-run from the .hydra snapshot and compare the metrics."""

from __future__ import annotations

import json

import pytest

from conftest import cli


@pytest.mark.slow
def test_reproduce_reports_identical_metrics_and_detects_a_change(tmp_path):
    run_dir = tmp_path / "original"
    proc = cli("trainer.max_epochs=2", "trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}", "seed=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run_dir / ".hydra" / "config.yaml").is_file()

    again = cli("lightsweep", "reproduce", str(run_dir))
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    assert "identical" in again.stdout
    for line in again.stdout.splitlines():
        if line.startswith("test/"):
            assert line.rstrip().endswith("yes"), line

    record = json.loads((run_dir / "run.json").read_text())
    record["metrics"]["test/acc"] += 0.01  # pretend the original scored differently
    (run_dir / "run.json").write_text(json.dumps(record))
    changed = cli("lightsweep", "reproduce", str(run_dir))
    assert changed.returncode == 1 and "DIFFERENT (test/acc)" in changed.stdout
