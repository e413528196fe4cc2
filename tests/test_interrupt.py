"""Ctrl-C during training: the run is `interrupted` (exit 130), keeps the metrics of its finished epochs,
writes last.ckpt and says how to resume from it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from test_train import epoch_values

from lightsweep.paths import PROJECT_ROOT

DIGITS = ["model=cnn", "dataset=digits", "seed=0", "trainer.enable_progress_bar=false"]


@pytest.mark.slow
def test_ctrl_c_is_an_interrupted_run_that_resumes(tmp_path, run_cfg):
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.ckpt"
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "LIGHTSWEEP_DEBUG")}
    # Output goes to files: a full pipe nobody reads would stall the run.
    with (tmp_path / "stdout").open("w") as out, (tmp_path / "stderr").open("w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(PROJECT_ROOT / "train.py"),
                *DIGITS,
                "~callbacks.early_stopping",
                "trainer.max_epochs=1000",
                f"hydra.run.dir={run_dir}",
            ],
            cwd=tmp_path,
            stdout=out,
            stderr=err,
            env=env,
        )
        try:
            while not last.exists():  # the first epoch has finished
                assert proc.poll() is None, (tmp_path / "stderr").read_text()[-3000:]
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=300)
        finally:
            proc.kill()
    stderr = (tmp_path / "stderr").read_text()
    assert proc.returncode == 130, stderr[-3000:]

    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted" and "error" not in record
    finished = record["epochs_trained"]
    assert finished >= 1
    for name in ("train/loss", "val/loss", "val/acc"):  # the last finished epoch's, as metrics.csv has them
        assert record["metrics"][name] == pytest.approx(epoch_values(run_dir, name)[finished - 1]), name
    assert record["resume_from"] == str(last)
    hints = [line for line in stderr.splitlines() if "ckpt_path=" in line]
    assert len(hints) == 1 and f"ckpt_path={last}" in hints[0], stderr[-3000:]

    result, resumed = run_cfg(
        [*DIGITS, "callbacks=[model_checkpoint]", f"trainer.max_epochs={finished + 1}", f"ckpt_path={last}"],
        tmp_path / "resumed",
    )
    assert result.status == "ok" and resumed["epochs_trained"] == finished + 1
