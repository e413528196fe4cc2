"""The one run path: `run(cfg)` trains and measures one composed config; `main` is the Hydra entry.

This module imports only Hydra/OmegaConf at the top so `python train.py --help` stays fast;
torch and Lightning are imported inside `run`.
"""

from __future__ import annotations

import logging
import os
import sys
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


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training or testing: run.json says `interrupted`; `resume_from` is the checkpoint to
    continue from (None when none was written)."""

    def __init__(self, resume_from: str | None, finished_epochs: int) -> None:
        super().__init__(resume_from, finished_epochs)
        self.resume_from, self.finished_epochs = resume_from, finished_epochs


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
    except KeyboardInterrupt as exc:
        result.status = "interrupted"
        record["resume_from"] = getattr(exc, "resume_from", None)
        raise
    except BaseException as exc:
        result.status = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        record.update(
            status=result.status, metrics=result.metrics, objective=result.objective,
            model_family=result.model_family, timings=result.timings, finished=now_iso(),
        )
        record.setdefault("config", _plain(cfg, resolve=False))
        write_json_atomic(run_dir / RUN_JSON, record)
        _finish_wandb_run(cfg, result.status)
    return result


def _finish_wandb_run(cfg: DictConfig, status: str) -> None:
    """W&B keeps one run open per process and Lightning never finishes it: the next run in this process
    (tests, a sweep's in-process jobs) would log into it, and an offline run is written out only when
    finished."""
    wandb = sys.modules.get("wandb")
    if wandb is None or wandb.run is None:
        return
    targets = {node.get("_target_") for node in (cfg.get("logger") or {}).values() if node}
    if "lightning.pytorch.loggers.WandbLogger" in targets:
        wandb.finish(exit_code=0 if status in ("ok", "pruned") else 1)


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
    from lightsweep.callbacks.timing import EpochTimer, FinishedEpochs
    from lightsweep.validate import check_devices

    check_devices(plain["trainer"], torch.cuda.is_available(),
                  torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    L.seed_everything(plain["seed"], workers=True, verbose=False)
    datamodule = build(plain["dataset"], where="dataset")
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = build(plain["model"], recursive=False, where="model", input_shape=datamodule.input_shape,
                  num_classes=datamodule.num_classes)
    if plain["trainer"].get("max_epochs") is None and plain["trainer"].get("max_steps", -1) == -1:
        plain["trainer"].update(model.default_budget(datamodule))  # no budget given: the model's own
    timer, finished = EpochTimer(), FinishedEpochs()
    callbacks = [*build_named(plain["callbacks"], "callbacks"), timer, finished]
    if "_target_" in plain["scheduler"]:
        callbacks.append(TemperatureSchedule(build(plain["scheduler"], where="scheduler")))
    trainer = build_trainer(plain["trainer"], callbacks, build_named(plain["logger"], "logger"))

    record.update(precision=trainer.precision, world_size=trainer.world_size)
    started = time.perf_counter()
    try:
        _stoppable(trainer, finished, trainer.fit, model, datamodule=datamodule, ckpt_path=plain.get("ckpt_path"))
    except RunInterrupted:
        result.metrics.update(finished.metrics)
        record["epochs_trained"] = trainer.current_epoch
        raise
    finally:
        result.timings["train_s"] = time.perf_counter() - started
        result.timings["epoch_s"] = timer.epoch_seconds()
    for callback in callbacks:  # callbacks that measure something add it to run.json
        record.update(callback.run_record() if hasattr(callback, "run_record") else {})
    record["epochs_trained"] = trainer.current_epoch
    if record.get("pruned_at_epoch") is not None:
        result.metrics.update(_scalars(trainer.callback_metrics))
        return  # the sweep's pruner stopped this trial: it has no objective, so skip testing too

    test_ckpt, epoch_metrics, record["objective_epoch"] = _weights_to_test(trainer, plain["test_ckpt"])
    result.metrics.update(epoch_metrics)
    record["tested_weights"] = test_ckpt or "last"
    started = time.perf_counter()
    _stoppable(trainer, finished, trainer.test, model, datamodule=datamodule, ckpt_path=test_ckpt, verbose=False)
    result.timings["test_s"] = time.perf_counter() - started
    result.metrics.update(_scalars(trainer.callback_metrics))
    measured = {**record, "metrics": result.metrics, "timings": result.timings}
    result.objective, record["objective_detail"] = objective_value(plain["objective"], measured)


def _stoppable(trainer: Any, finished: Any, call: Any, *args: Any, **kwargs: Any) -> None:
    """trainer.fit/test, with Ctrl-C raised as RunInterrupted. Lightning answers Ctrl-C with its graceful
    shutdown and then sys.exit(1) (trainer/call.py, _call_and_handle_interrupt), which reads like a crash."""
    try:
        call(*args, **kwargs)
    except (KeyboardInterrupt, SystemExit) as exc:
        if isinstance(exc, SystemExit) and not finished.interrupted:
            raise
        last = getattr(trainer.checkpoint_callback, "last_model_path", "")
        raise RunInterrupted(last if last and os.path.isfile(last) else None, trainer.current_epoch) from None


def _weights_to_test(trainer: Any, test_ckpt: str) -> tuple[str | None, dict[str, float], int | None]:
    """(ckpt_path for trainer.test, the metrics of the epoch those weights come from, that epoch). The
    objective must describe the weights that are tested: the best checkpoint comes with the metrics it
    was ranked by; the final weights with the last epoch's."""
    checkpoint = trainer.checkpoint_callback
    ranked = checkpoint.best_metrics() if test_ckpt == "best" and hasattr(checkpoint, "best_metrics") else None
    if ranked:
        return checkpoint.best_model_path, {k: v for k, v in ranked.items() if k != "epoch"}, int(ranked["epoch"])
    if test_ckpt == "best" and checkpoint is not None and checkpoint.best_model_path:
        logging.getLogger(__name__).warning(
            "Testing the final weights: the epoch of %s is not recorded in its checkpoint.", checkpoint.best_model_path)
    last_epoch = trainer.current_epoch - 1 if trainer.current_epoch else None  # not known after ddp_spawn
    return None, _scalars(trainer.callback_metrics), last_epoch


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
    except KeyboardInterrupt as exc:
        if not _single_run():  # a sweep stops too; its sweeper records the trial
            raise
        print(_how_to_resume(exc), file=sys.stderr)
        sys.exit(130)  # the shell's code for a command stopped by SIGINT
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


def _how_to_resume(exc: KeyboardInterrupt) -> str:
    done = f"lightsweep: interrupted after {getattr(exc, 'finished_epochs', 0)} finished epoch(s)"
    if resume_from := getattr(exc, "resume_from", None):
        return f"{done}; to resume, run the same command with ckpt_path={resume_from}"
    return f"{done} and no checkpoint to resume from (callbacks.model_checkpoint writes it): run it again to start over"


def _single_run() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return not HydraConfig.initialized() or HydraConfig.get().mode == RunMode.RUN
