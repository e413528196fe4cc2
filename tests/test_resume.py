"""Resuming with ckpt_path into a new run dir: training continues and the earlier best checkpoint still counts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_train import epoch_values

# lr=0.3 overshoots on digits: epoch 1 validates best, later epochs worse (asserted below, not assumed).
OVERSHOOT = ["model=cnn", "dataset=digits", "callbacks=[model_checkpoint]", "model.optimizer.lr=0.3", "seed=0"]


def test_resumed_run_tests_the_earlier_best_when_it_stays_best(run_cfg, tmp_path):
    _, first = run_cfg([*OVERSHOOT, "trainer.max_epochs=2"], tmp_path / "first")
    before = epoch_values(tmp_path / "first", "val/acc")
    best_epoch = max(before, key=lambda epoch: (before[epoch], -epoch))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"

    _, resumed = run_cfg([*OVERSHOOT, "trainer.max_epochs=4", f"ckpt_path={last}"], tmp_path / "resumed")
    after = epoch_values(tmp_path / "resumed", "val/acc")
    assert sorted(after) == [2, 3] and max(after.values()) < before[best_epoch], f"premise: {before} then {after}"

    tested = Path(resumed["tested_weights"])
    assert torch.load(tested, weights_only=False)["epoch"] == best_epoch
    assert resumed["objective"] == pytest.approx(before[best_epoch]) and resumed["objective_epoch"] == best_epoch
    assert tested.parent == tmp_path / "resumed" / "checkpoints"  # the new run holds its own copy
    assert first["tested_weights"] != resumed["tested_weights"]
