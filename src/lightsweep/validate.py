"""Check a composed config before anything is built: types against the constructors' signatures,
keys the constructors do not take, and device support for precision and strategy."""

from __future__ import annotations

import inspect
import os
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from lightsweep.errors import ConfigError, first_line

_PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "64-true", "16-true", "bf16-true")
_GPU_ONLY_STRATEGIES = ("DeepSpeedStrategy", "FSDPStrategy")
# conf/train.yaml's speed block (applied by lightsweep.speed): its settings and their valid values
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
MATMUL_PRECISIONS = ("highest", "high", "medium")
SPEED_SETTINGS = ("compile", "compile_mode", "checkpointing", "threads", "matmul_precision")


def validate(cfg: Mapping[str, Any]) -> None:
    """Raise one ConfigError listing every problem of a resolved config (plain containers), so a user
    fixes them all in one go instead of one per run."""
    found = problems(cfg)
    if len(found) == 1:
        raise ConfigError(found[0])
    if found:
        raise ConfigError(
            f"{len(found)} problems in the config: "
            + " ".join(f"({i}) {problem}" for i, problem in enumerate(found, 1))
        )


def problems(cfg: Mapping[str, Any]) -> list[str]:
    """Every problem found in a resolved config, each a sentence naming the key and what is valid."""
    found = []
    if not isinstance(cfg.get("seed"), int) or isinstance(cfg.get("seed"), bool):
        found.append(f"seed={cfg.get('seed')!r} must be an integer, e.g. seed=1.")
    if cfg.get("test_ckpt") not in ("best", "last"):
        found.append(f"test_ckpt={cfg.get('test_ckpt')!r} is not valid: use best or last.")
    for key in ("dataset", "model", "trainer", "scheduler"):
        found += node_problems(cfg[key], key)
    for group in ("callbacks", "logger"):
        for name, node in (cfg.get(group) or {}).items():
            found += node_problems(node, f"{group}.{name}")
    return found + speed_problems(cfg.get("speed") or {})


def speed_problems(speed: Mapping[str, Any]) -> list[str]:
    """Every bad value of the speed block, one sentence each."""
    unknown = [key for key in speed if key not in SPEED_SETTINGS]
    found = [_unknown_setting("speed", key, "the speed block", list(SPEED_SETTINGS)) for key in unknown]
    for key in ("compile", "checkpointing"):
        if key in speed and not isinstance(speed[key], bool):
            found.append(f"speed.{key}={speed[key]!r} must be true or false.")
    if speed.get("compile_mode", "default") not in COMPILE_MODES:
        found.append(f"speed.compile_mode={speed['compile_mode']!r} is not valid: use {', '.join(COMPILE_MODES)}.")
    threads = speed.get("threads")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        found.append(f"speed.threads={threads!r} must be null (torch's default) or a positive integer, e.g. 2.")
    if speed.get("matmul_precision", "highest") not in MATMUL_PRECISIONS:
        found.append(
            f"speed.matmul_precision={speed['matmul_precision']!r} is not valid: use {', '.join(MATMUL_PRECISIONS)}."
        )
    return found


def check_node(node: Any, where: str) -> None:
    """Raise a ConfigError for the first problem of one `_target_` node."""
    if found := node_problems(node, where):
        raise ConfigError(found[0])


def node_problems(node: Any, where: str) -> list[str]:
    """Every key of a `_target_` node (and nested ones) checked against the target's signature."""
    if not isinstance(node, Mapping) or "_target_" not in node:
        return []
    try:
        target = _locate(node["_target_"], where)
    except ConfigError as exc:
        return [str(exc)]
    params, takes_kwargs = _parameters(target)
    found = []
    for key, value in node.items():
        if key.startswith("_") and key.endswith("_"):
            continue
        if key not in params:
            if not takes_kwargs:
                found.append(_unknown_setting(where, key, node["_target_"], sorted(params)))
            continue
        if isinstance(value, Mapping) and "_target_" in value:
            found += node_problems(value, f"{where}.{key}")
        elif not _matches(value, params[key]):
            found.append(
                f"{where}.{key}={value!r} has the wrong type: expected {_describe(params[key])}, "
                f"got {type(value).__name__}. Fix it with {where}.{key}=<value>."
            )
    return found


def _unknown_setting(where: str, key: str, target: str, valid: list[str]) -> str:
    """The nearest valid names first (a typo is the usual cause), then the whole list."""
    import difflib

    near = difflib.get_close_matches(key, valid, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(f'{where}.{n}' for n in near)}?" if near else ""
    return f"{where}.{key} is not a setting of {target}.{hint} Valid settings: {', '.join(valid) or '(none)'}."


def check_devices(trainer_cfg: Mapping[str, Any], cuda_available: bool, bf16_on_gpu: bool) -> None:
    """Refuse precision/strategy combinations the hardware cannot run (instead of a silent fallback)."""
    precision = str(trainer_cfg.get("precision"))
    if precision not in _PRECISIONS:
        raise ConfigError(f"trainer.precision={precision!r} is not valid: use one of {', '.join(_PRECISIONS)}.")
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    on_gpu = cuda_available and accelerator in ("auto", "gpu", "cuda")
    strategy = trainer_cfg.get("strategy")
    target = strategy.get("_target_", "") if isinstance(strategy, Mapping) else str(strategy)
    for name in _GPU_ONLY_STRATEGIES:
        if name in target and not on_gpu:
            raise ConfigError(
                f"strategy {name} needs CUDA GPUs and this run has none. "
                "On CPU use strategy=auto, strategy=ddp or strategy=ddp_spawn."
            )
    if precision.startswith("bf16") and on_gpu and not bf16_on_gpu:
        raise ConfigError("precision=bf16 is not supported by this GPU (needs Ampere or newer): use precision=16.")
    if precision == "16-mixed" and "DeepSpeed" not in target and not on_gpu and _fp16_autocast_fails():
        raise ConfigError("precision=16 is not supported on this CPU build of torch: use precision=bf16 or 32.")


def _fp16_autocast_fails() -> bool:
    import torch

    try:
        with torch.autocast("cpu", dtype=torch.float16):
            torch.nn.functional.linear(torch.ones(2, 2), torch.ones(2, 2))
        return False
    except RuntimeError:
        return True


def _locate(target: str, where: str) -> Any:
    """The object a `_target_` names. A name that does not import is the user's error (one line); any
    other exception raised while importing its module is a bug there and keeps its traceback."""
    import logging

    from hydra.utils import get_object

    hydra_log = logging.getLogger("hydra.utils")
    level = hydra_log.level
    hydra_log.setLevel(logging.CRITICAL)  # it logs the failure itself before raising: ours is the one line
    try:
        return get_object(target)
    except Exception as exc:  # Hydra wraps the import's own exception
        chain, link = [], exc
        while (link := link.__cause__ or link.__context__) is not None:
            chain.append(link)
        if any(not isinstance(link, (ImportError, AttributeError)) for link in chain):
            raise
        reason = next((link for link in chain if isinstance(link, ImportError)), chain[-1] if chain else exc)
        raise ConfigError(f"{where}._target_={target!r} cannot be imported ({first_line(reason)}).") from exc
    finally:
        hydra_log.setLevel(level)


def _parameters(target: Any) -> tuple[dict[str, Any], bool]:
    """Annotated parameters of a class's __init__ (or a function), and whether it takes any keyword.

    Our own classes pass **kwargs up to their parent: the parents' named parameters are merged in, so
    only a chain ending without an explicit signature takes anything. A third-party **kwargs may go
    elsewhere (DDPStrategy's go to DistributedDataParallel): such a class takes anything."""
    if not inspect.isclass(target):
        return _own_parameters(target)
    params: dict[str, Any] = {}
    for cls in target.__mro__:
        if cls is object or "__init__" not in vars(cls):
            continue
        own, takes_kwargs = _own_parameters(cls.__init__)
        params = {**own, **params}  # a subclass's own parameter (and hint) wins
        if not takes_kwargs:
            return params, False
        if not cls.__module__.startswith("lightsweep."):
            return params, True
    return params, True


def _own_parameters(func: Any) -> tuple[dict[str, Any], bool]:
    signature = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable forward references: check names only
        hints = {}
    params = {
        name: hints.get(name, Any)
        for name, p in signature.parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    return params, takes_kwargs


def _matches(value: Any, hint: Any) -> bool:
    """Does a config value fit a type hint? Unknown kinds of hint are accepted."""
    if hint is Any or isinstance(hint, typing.TypeVar):
        return True
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:  # fixed-length tuple
            return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
        return all(_matches(v, args[0] if args else Any) for v in value)
    if origin in (dict, Mapping) or hint is dict:
        return isinstance(value, Mapping)
    if isinstance(hint, type):  # a class: a primitive fits only if it is one (str also names a path)
        is_primitive = isinstance(value, (str, int, float, bool))
        return not is_primitive or isinstance(value, hint) or (isinstance(value, str) and issubclass(hint, os.PathLike))
    return True


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    return getattr(hint, "__name__", str(hint))
