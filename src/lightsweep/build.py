"""Turn config nodes into objects: only our own, torch's and Lightning's classes may be instantiated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightsweep.errors import ConfigError, first_line

ALLOWED_TARGETS = ["lightsweep.*", "torch.*", "lightning.*", "torchmetrics.*"]

# Targets whose library comes with an extra of pyproject.toml: (module to import, extra that installs it).
OPTIONAL_LIBRARIES = {
    "lightning.pytorch.loggers.WandbLogger": ("wandb", "tracking"),
    "lightning.pytorch.loggers.MLFlowLogger": ("mlflow", "tracking"),
}


def build(node: Mapping[str, Any], recursive: bool = True, where: str | None = None, **kwargs: Any) -> Any:
    """Instantiate with plain containers; recursive=False leaves nested nodes as dicts for the target.
    `where` (the config key of the node, e.g. callbacks.model_checkpoint) names it in error messages."""
    from hydra.utils import instantiate

    where = where or str(node.get("_target_"))
    _require_optional_library(node, where)
    try:
        return instantiate(
            node, _convert_="all", _recursive_=recursive, _execution_whitelist_=ALLOWED_TARGETS, **kwargs
        )
    except Exception as exc:
        if _refused_by_constructor(exc):
            raise ConfigError(f"{where} ({node.get('_target_')}) refused its settings: {first_line(exc)}") from exc
        raise


def build_named(group: Mapping[str, Any] | None, where: str) -> list[Any]:
    """Callbacks/loggers are dicts of name -> node, so each can be overridden or dropped by name."""
    return [build(node, where=f"{where}.{name}") for name, node in (group or {}).items() if node]


def build_trainer(trainer_cfg: Mapping[str, Any], callbacks: list[Any], loggers: list[Any]) -> Any:
    """A Trainer; on CPU precision=16 gets real float16 autocast (Lightning would silently use bf16)."""
    import torch
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.plugins.precision import MixedPrecision

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
        return build(
            trainer_cfg, where="trainer", callbacks=callbacks, logger=loggers or False, plugins=plugins or None
        )
    except MisconfigurationException as exc:
        raise ConfigError(f"trainer: {exc}") from exc


def _require_optional_library(node: Mapping[str, Any], where: str) -> None:
    """One line naming the extra to install, before a target fails (or, like WandbLogger, fails only
    once training has started) for want of its library."""
    import importlib

    if (needed := OPTIONAL_LIBRARIES.get(str(node.get("_target_")))) is None:
        return
    module, extra = needed
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"{where} needs {module}, which cannot be imported ({exc}): pip install 'lightsweep[{extra}]' "
            f"(the project's {extra} extra), or choose another {where.split('.')[0]}."
        ) from None


def _refused_by_constructor(exc: Exception) -> bool:
    """Whether the constructor Hydra called refused its arguments: they do not bind (a TypeError raised by
    the call itself), or the object being built raised a ValueError or Lightning's
    MisconfigurationException from one of its own methods. Anything else raised while building is a bug
    and keeps its traceback (hydra-core 1.4 re-raises what the target raised, unwrapped)."""
    from hydra._internal.instantiate._instantiate2 import _call_target
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    calls = [i for i, frame in enumerate(frames) if frame.f_code is _call_target.__code__]
    if not calls:
        return False
    call = calls[-1]  # the innermost target being built (recursive nodes nest their calls)
    if call == len(frames) - 1:
        return isinstance(exc, TypeError)
    refusal = isinstance(exc, (ValueError, MisconfigurationException))
    built = frames[call + 1].f_locals.get("self")
    return refusal and built is not None and frames[-1].f_locals.get("self") is built
