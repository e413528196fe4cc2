"""The one run path: `run(cfg)` trains and measures one composed config; `main` is the Hydra entry.

This module imports only Hydra/OmegaConf at the top so `python train.py --help` stays fast;
torch and Lightning are imported inside `run`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from lightsweep.config import CONF_DIR, PROJECT_ROOT, register_resolvers
from lightsweep.errors import exit_on_user_error
from lightsweep.runinfo import RUN_JSON, git_sha, now_iso, versions, write_json_atomic


@dataclass
class RunResult:
    status: str                      # ok | pruned (stopped by a sweep's pruner) | failed | interrupted
    run_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    objective: float | list[float] | None = None  # a list for a multi-objective (list) objective.name
    model_family: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def run(cfg: DictConfig) -> RunResult:
    """Train, test and record one run. Writes <paths.output_dir>/run.json whatever happens."""
    run_dir = Path(cfg.paths.output_dir)
    record: dict[str, Any] = {
        "status": "running",
        "started": now_iso(),
        "seed": cfg.get("seed"),
        "overrides": _overrides(),
        "versions": versions(),
        "git_sha": git_sha(PROJECT_ROOT),
    }
    result = RunResult(status="failed", run_dir=run_dir)
    try:
        _train_and_test(cfg, record, result)
        result.status = "pruned" if record.get("pruned_at_epoch") is not None else "ok"
    except BaseException as exc:
        result.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        record.update(
            status=result.status, metrics=result.metrics, objective=result.objective,
            model_family=result.model_family, timings=result.timings, finished=now_iso(),
        )
        record.setdefault("config", _plain(cfg, resolve=False))
        write_json_atomic(run_dir / RUN_JSON, record)
    return result


def _train_and_test(cfg: DictConfig, record: dict[str, Any], result: RunResult) -> None:
    from hydra.utils import get_object

    from lightsweep.models.registry import resolve_model_config
    from lightsweep.objective import check_objective, objective_value
    from lightsweep.validate import validate

    plain = _plain(cfg, resolve=True)
    modality = get_object(plain["dataset"]["_target_"]).modality
    result.model_family, plain["model"] = resolve_model_config(plain["model"], modality)
    record["config"] = plain
    validate(plain)
    check_objective(plain, in_sweep=not _single_run())

    import lightning as L
    import torch

    _one_log_line_per_message()
    from lightsweep.build import build, build_named, build_trainer
    from lightsweep.callbacks.temperature import TemperatureSchedule
    from lightsweep.callbacks.timing import EpochTimer
    from lightsweep.validate import check_devices

    check_devices(plain["trainer"], torch.cuda.is_available(),
                  torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    L.seed_everything(plain["seed"], workers=True, verbose=False)
    datamodule = build(plain["dataset"], where="dataset")
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = build(plain["model"], recursive=False, where="model", input_shape=datamodule.input_shape, num_classes=datamodule.num_classes)
    if plain["trainer"].get("max_epochs") is None and plain["trainer"].get("max_steps", -1) == -1:
        plain["trainer"].update(model.default_budget(datamodule))  # no budget given: the model's own
    timer = EpochTimer()
    callbacks = [*build_named(plain["callbacks"], "callbacks"), timer]
    if "_target_" in plain["scheduler"]:
        callbacks.append(TemperatureSchedule(build(plain["scheduler"], where="scheduler")))
    trainer = build_trainer(plain["trainer"], callbacks, build_named(plain["logger"], "logger"))

    record.update(precision=trainer.precision, world_size=trainer.world_size)
    started = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=plain.get("ckpt_path"))
    result.timings["train_s"] = time.perf_counter() - started
    result.timings["epoch_s"] = timer.epoch_seconds()
    for callback in callbacks:  # callbacks that measure something add it to run.json
        record.update(callback.run_record() if hasattr(callback, "run_record") else {})
    result.metrics.update(_scalars(trainer.callback_metrics))
    record["epochs_trained"] = trainer.current_epoch
    if record.get("pruned_at_epoch") is not None:
        return  # the sweep's pruner stopped this trial: it has no objective, so skip testing too

    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    test_ckpt = "best" if plain["test_ckpt"] == "best" and best else None
    record["tested_weights"] = best if test_ckpt else "last"
    started = time.perf_counter()
    trainer.test(model, datamodule=datamodule, ckpt_path=test_ckpt, verbose=False)
    result.timings["test_s"] = time.perf_counter() - started
    result.metrics.update(_scalars(trainer.callback_metrics))
    measured = {**record, "metrics": result.metrics, "timings": result.timings}
    result.objective, record["objective_detail"] = objective_value(plain["objective"], measured)


def _one_log_line_per_message() -> None:
    """Lightning's `lightning` logger has its own console handler and also propagates to the root
    logger; when Hydra has configured the root (console + train.log) every line would print twice."""
    import warnings

    if logging.getLogger().handlers:
        logging.getLogger("lightning").handlers.clear()
    # Lightning 2.6 on torch 2.13 warns about its own use of a deprecated pytree API at every step.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # The run dir always holds Hydra's snapshot before the CSV logger starts (it replaces only metrics.csv),
    # and on a SLURM machine local runs are meant (cluster jobs go through executor=slurm).
    warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")
    warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system")


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {name: float(value) for name, value in metrics.items()}


def _plain(cfg: DictConfig, resolve: bool) -> dict[str, Any]:
    """Plain containers; resolving also refuses ??? (mandatory) values, naming the key."""
    return OmegaConf.to_container(cfg, resolve=resolve, throw_on_missing=resolve)


def _overrides() -> list[str]:
    """The command-line overrides of this job (empty when run() is called outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


register_resolvers()


@hydra.main(config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | list[float] | str | None:
    """Hydra entry: run one config and hand the objective (or the pruned marker) to a sweeper."""
    from lightsweep.sweep.study import PRUNED, pruning_callback

    try:
        pruning = None if _single_run() else pruning_callback(cfg)
        if pruning:  # a sweep with a pruner: this job reports to its trial every epoch
            with open_dict(cfg):
                cfg.callbacks = cfg.callbacks or {}
                cfg.callbacks.optuna_pruning = pruning
        result = run(cfg)
        _summarise(result)
    except Exception as exc:
        if _single_run():  # in a sweep the sweeper records the failed trial and goes on
            exit_on_user_error(exc)
        raise
    return PRUNED if result.status == "pruned" else result.objective


def _summarise(result: RunResult) -> None:
    """One line a user reads at the end of a run (machines read run.json)."""
    shown = {k: round(v, 4) for k, v in result.metrics.items() if k in ("val/acc", "test/acc", "test/f1_macro")}
    logging.getLogger(__name__).info(
        f"{result.status}: {result.model_family}, {shown}, objective {result.objective}; "
        f"details in {result.run_dir / RUN_JSON}")


def _single_run() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return not HydraConfig.initialized() or HydraConfig.get().mode == RunMode.RUN
