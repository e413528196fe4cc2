"""Config values checked against constructor signatures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Optional, Union

import pytest
import torch

from lightsweep.errors import ConfigError
from lightsweep.validate import _matches, check_node


@pytest.mark.parametrize(
    ("value", "hint", "ok"),
    [
        (3, int, True),
        (True, int, False),
        (3.5, int, False),
        ("3", int, False),
        (3, float, True),
        (0.5, float, True),
        (None, Optional[int], True),
        ("auto", Union[int, str], True),
        ("relu", Literal["relu", "swish"], True),
        ("tanh", Literal["relu", "swish"], False),
        ([1, 2], Sequence[int], True),
        ([1, "a"], Sequence[int], False),
        ("ab", Sequence[int], False),
        ((1, 2), tuple[int, int], True),
        ((1,), tuple[int, int], False),
        (1, bool, False),
        ("x", Path, True),
        ("fast", Union[float, torch.Tensor], False),
        (0.1, Union[float, torch.Tensor], True),
    ],
)
def test_matches(value, hint, ok):
    assert _matches(value, hint) is ok


def test_nested_target_nodes_are_checked():
    node = {
        "_target_": "lightsweep.models.cnn.CNNClassifier",
        "optimizer": {"_target_": "torch.optim.Adam", "lr": "fast"},
    }
    with pytest.raises(ConfigError, match="model.optimizer.lr='fast'"):
        check_node(node, "model")


def test_unimportable_target_is_a_config_error():
    with pytest.raises(
        ConfigError,
        match=r"^model._target_='lightsweep.nope.Thing' cannot be imported "
        r"\(No module named 'lightsweep.nope'\).$",
    ):
        check_node({"_target_": "lightsweep.nope.Thing"}, "model")


def test_a_bug_in_a_targets_module_is_not_reported_as_a_bad_target(tmp_path, monkeypatch):
    (tmp_path / "buggy_models.py").write_text("RATE = 1 / 0\n\nclass Net:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(Exception) as error:
        check_node({"_target_": "buggy_models.Net"}, "model")
    assert not isinstance(error.value, ConfigError)  # a traceback for the bug, not "cannot be imported"


def test_every_problem_of_a_config_is_reported_at_once():
    from conftest import cli

    proc = cli(
        "model=cnn",
        "dataset=digits",
        "seed=one",
        "test_ckpt=middle",
        "model.filters=many",
        "trainer.max_epochs=2.5",
        "callbacks.early_stopping.patience=soon",
    )
    line = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and line.startswith("lightsweep: error: 5 problems in the config: (1) seed=")
    for key in ("seed=", "test_ckpt=", "model.filters=", "trainer.max_epochs=", "callbacks.early_stopping.patience="):
        assert key in line


def test_an_unknown_setting_names_the_nearest_valid_one_first():
    with pytest.raises(
        ConfigError,
        match=r"^trainer.max_epoch is not a setting of lightning.pytorch.Trainer. "
        r"Did you mean trainer.max_epochs or ",
    ):
        check_node({"_target_": "lightning.pytorch.Trainer", "max_epoch": 3}, "trainer")
