"""Turn config nodes into objects: only our own, torch's and Lightning's classes may be instantiated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightsweep.errors import ConfigError

ALLOWED_TARGETS = ["lightsweep.*", "torch.*", "lightning.*", "torchmetrics.*"]


def build(node: Mapping[str, Any], recursive: bool = True, **kwargs: Any) -> Any:
    """Instantiate with plain containers; recursive=False leaves nested nodes as dicts for the target."""
    from hydra.utils import instantiate

    return instantiate(
        node, _convert_="all", _recursive_=recursive, _execution_whitelist_=ALLOWED_TARGETS, **kwargs
    )


def build_named(group: Mapping[str, Any] | None) -> list[Any]:
    """Callbacks/loggers are dicts of name -> node, so each can be overridden or dropped by name."""
    return [build(node) for node in (group or {}).values() if node]


def build_trainer(trainer_cfg: Mapping[str, Any], callbacks: list[Any], loggers: list[Any]) -> Any:
    """A Trainer; on CPU precision=16 gets real float16 autocast (Lightning would silently use bf16)."""
    import torch
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.plugins.precision import MixedPrecision

    from lightning.pytorch.callbacks import ModelCheckpoint

    trainer_cfg = dict(trainer_cfg)
    # Checkpoints are configured in the callbacks group only: without a ModelCheckpoint there, Lightning
    # must not add its own (callbacks=none means no checkpoint writes).
    trainer_cfg.setdefault("enable_checkpointing", any(isinstance(c, ModelCheckpoint) for c in callbacks))
    plugins = []
    accelerator = trainer_cfg.get("accelerator", "auto")
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if trainer_cfg.get("precision") == "16-mixed" and on_cpu:
        trainer_cfg.pop("precision")
        plugins.append(MixedPrecision("16-mixed", "cpu", torch.amp.GradScaler("cpu")))
    try:
        return build(trainer_cfg, callbacks=callbacks, logger=loggers or False, plugins=plugins or None)
    except MisconfigurationException as exc:
        raise ConfigError(f"trainer: {exc}") from exc
