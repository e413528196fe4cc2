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
        (3, int, True), (True, int, False), (3.5, int, False), ("3", int, False),
        (3, float, True), (0.5, float, True), (None, Optional[int], True), ("auto", Union[int, str], True),
        ("relu", Literal["relu", "swish"], True), ("tanh", Literal["relu", "swish"], False),
        ([1, 2], Sequence[int], True), ([1, "a"], Sequence[int], False), ("ab", Sequence[int], False),
        ((1, 2), tuple[int, int], True), ((1,), tuple[int, int], False), (1, bool, False),
        ("x", Path, True), ("fast", Union[float, torch.Tensor], False), (0.1, Union[float, torch.Tensor], True),
    ],
)
def test_matches(value, hint, ok):
    assert _matches(value, hint) is ok


def test_nested_target_nodes_are_checked():
    node = {"_target_": "lightsweep.models.cnn.CNNClassifier",
            "optimizer": {"_target_": "torch.optim.Adam", "lr": "fast"}}
    with pytest.raises(ConfigError, match="model.optimizer.lr='fast'"):
        check_node(node, "model")


def test_unimportable_target_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot be imported"):
        check_node({"_target_": "lightsweep.nope.Thing"}, "model")


def _validated(overrides: list[str], tmp_path) -> dict:
    """Compose like the CLI, let model=auto pick its family as run() does, and validate."""
    from hydra.utils import get_object
    from omegaconf import OmegaConf

    from lightsweep.config import compose
    from lightsweep.models.registry import resolve_model_config
    from lightsweep.validate import validate

    plain = OmegaConf.to_container(compose(overrides, output_dir=tmp_path), resolve=True)
    modality = get_object(plain["dataset"]["_target_"]).modality
    plain["model"] = resolve_model_config(plain["model"], modality)[1]
    validate(plain)
    return plain


def _every_choice() -> list[str]:
    """group=choice for every YAML of every selectable group (sweep is added with +, as documented)."""
    from lightsweep.config import CONF_DIR

    chosen = []
    for folder in sorted(p for p in CONF_DIR.iterdir() if p.is_dir() and p.name not in ("hydra", "paths")):
        prefix = "+" if folder.name == "sweep" else ""
        chosen += [f"{prefix}{folder.name}={path.stem}" for path in sorted(folder.glob("*.yaml"))]
    return chosen


@pytest.mark.parametrize("choice", _every_choice())
def test_every_choice_of_every_group_composes_and_validates(choice, tmp_path):
    plain = _validated([choice], tmp_path)
    group, _, name = choice.lstrip("+").partition("=")
    assert plain["seed"] is not None, f"{group}={name}"


def test_every_problem_of_a_config_is_reported_at_once():
    from conftest import cli

    proc = cli("model=cnn", "dataset=digits", "seed=one", "test_ckpt=middle", "model.filters=many",
               "trainer.max_epochs=2.5", "callbacks.early_stopping.patience=soon")
    line = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and line.startswith("lightsweep: error: 5 problems in the config: (1) seed=")
    for key in ("seed=", "test_ckpt=", "model.filters=", "trainer.max_epochs=", "callbacks.early_stopping.patience="):
        assert key in line
