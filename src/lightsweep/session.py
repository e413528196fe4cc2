"""One run's work, from a resolved config to what it measured: build the pieces, fit, test, objective.

`measure(plain, in_sweep)` returns a `Measured`; nothing it is given is changed. Ctrl-C arrives as
RunInterrupted carrying what the finished epochs measured. train.run() turns either into run.json."""

from __future__ import annotations

import copy
import gc
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


@dataclass
class Measured:
    config: dict[str, Any]  # the config as it ran (finders' values in)
    metrics: dict[str, float] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)  # what else run.json gets (callbacks' records...)
    objective: float | list[float] | None = None
    pruned: bool = False


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training or testing. `resume_from`: the checkpoint to continue from (None when none
    was written); `measured`: what the finished epochs measured."""

    def __init__(self, resume_from: str | None, finished_epochs: int, measured: Measured | None = None) -> None:
        super().__init__(resume_from, finished_epochs)
        self.resume_from, self.finished_epochs, self.measured = resume_from, finished_epochs, measured


def resolved_config(cfg: DictConfig) -> tuple[dict[str, Any], str]:
    """(plain resolved config with model=auto replaced by its family's config, the family). Resolving
    also refuses ??? (mandatory) values, naming the key."""

    from lightsweep.models.registry import dataset_modality, resolve_model_config

    plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    family, plain["model"] = resolve_model_config(plain["model"], dataset_modality(plain["dataset"]["_target_"]))
    return plain, family


def measure(plain: dict[str, Any], in_sweep: bool) -> Measured:
    """Validate, build, fit and test one resolved config; the objective from what the tested weights did.
    Process-wide settings of the speed block (threads, matmul precision) end with it."""
    from lightsweep.speed import process_settings_restored

    with process_settings_restored():
        return _measure(plain, in_sweep)


def _measure(plain: dict[str, Any], in_sweep: bool) -> Measured:
    from lightsweep.objective import check_objective, objective_value
    from lightsweep.validate import validate

    measured = Measured(config=copy.deepcopy(plain))
    config = measured.config
    validate(config)
    check_objective(config, in_sweep=in_sweep)

    import lightning as L
    import torch

    from lightsweep.build import build, build_named, build_trainer
    from lightsweep.callbacks.progress import EpochProgress
    from lightsweep.callbacks.rank_zero import RankZeroState
    from lightsweep.callbacks.temperature import TemperatureSchedule
    from lightsweep.callbacks.timing import EpochTimer, FinishedEpochs
    from lightsweep.models.registry import resolve_model_config
    from lightsweep.speed import SpeedReport, apply_speed, settle_model_threads
    from lightsweep.validate import check_devices

    if not gc.isenabled():  # the CLI imported all this with the collector off (cli.train_entry): back on,
        gc.freeze()  # and the objects of those imports, long-lived, out of its passes
        gc.enable()

    quiet_lightning()
    check_devices(
        config["trainer"], torch.cuda.is_available(), torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    )
    L.seed_everything(config["seed"], workers=True, verbose=False)
    datamodule = build(config["dataset"], where="dataset")
    datamodule.prepare_data()
    datamodule.setup("fit")
    settle_model_threads(config)
    model = build(
        config["model"],
        recursive=False,
        where="model",
        input_shape=datamodule.input_shape,
        num_classes=datamodule.num_classes,
    )
    on_cuda = torch.cuda.is_available() and str(config["trainer"].get("accelerator", "auto")) in ("auto", "gpu", "cuda")
    family, _ = resolve_model_config(config["model"], datamodule.modality)
    speed = SpeedReport(apply_speed(model, config.get("speed"), family, on_cuda))
    if config["trainer"].get("max_epochs") is None and config["trainer"].get("max_steps", -1) == -1:
        config["trainer"].update(model.default_budget(datamodule))  # no budget given: the model's own
    finished, rank_zero = FinishedEpochs(), RankZeroState()  # rank_zero: what callbacks measured, also under ddp_spawn
    callbacks = [*build_named(config["callbacks"], "callbacks"), EpochTimer(), finished, speed, rank_zero]
    if config["trainer"].get("enable_progress_bar", True):
        callbacks.append(EpochProgress())  # one line per epoch, not a bar per epoch
    if "_target_" in config["scheduler"]:
        callbacks.append(TemperatureSchedule(build(config["scheduler"], where="scheduler")))
    trainer = build_trainer(config["trainer"], callbacks, build_named(config["logger"], "logger"))

    measured.record.update(precision=trainer.precision, world_size=trainer.world_size)
    started = time.perf_counter()
    try:
        _stoppable(
            trainer, finished, measured, trainer.fit, model, datamodule=datamodule, ckpt_path=config.get("ckpt_path")
        )
    finally:
        measured.timings["train_s"] = time.perf_counter() - started
        fitted = rank_zero.collect(trainer)
        measured.timings["epoch_s"] = fitted["fit"]["epoch_s"]
    measured.record.update(fitted["records"])
    measured.record["loader_settings"] = getattr(datamodule, "loader_settings", None)  # workers, pinning, why
    for key, value in fitted["config_changes"].items():
        _set_dotted(config, key, value)
    epochs_trained = measured.record["epochs_trained"] = fitted["fit"]["epochs_trained"]
    if measured.record.get("pruned_at_epoch") is not None:  # the sweep's pruner stopped this trial:
        measured.pruned = True  # no objective, so no test either
        measured.metrics.update(_scalars(trainer.callback_metrics))
        return measured

    test_ckpt, epoch_metrics, measured.record["objective_epoch"] = _weights_to_test(
        trainer, config["test_ckpt"], epochs_trained
    )
    measured.metrics.update(epoch_metrics)
    measured.record["tested_weights"] = test_ckpt or "last"
    started = time.perf_counter()
    _stoppable(
        trainer, finished, measured, trainer.test, model, datamodule=datamodule, ckpt_path=test_ckpt, verbose=False
    )
    measured.timings["test_s"] = time.perf_counter() - started
    measured.record.update(rank_zero.collect(trainer)["records"])  # again: some measure the tested weights (int8)
    measured.record["test_samples"] = _test_samples(trainer)  # what one test example is worth in accuracy
    measured.metrics.update(_scalars(trainer.callback_metrics))
    so_far = {**measured.record, "metrics": measured.metrics, "timings": measured.timings}
    measured.objective, measured.record["objective_detail"] = objective_value(config["objective"], so_far)
    return measured


def _test_samples(trainer: Any) -> int | None:
    """Samples in the test split: the last test loader's (TimeHUT's first one embeds the training set)."""
    loaders = trainer.test_dataloaders  # None in the main process of a ddp_spawn run
    loader = loaders[-1] if isinstance(loaders, list) else loaders
    try:
        return len(loader.dataset)
    except (TypeError, AttributeError):  # no loader here, or an iterable dataset without a length
        return None


def _stoppable(trainer: Any, finished: Any, measured: Measured, call: Any, *args: Any, **kwargs: Any) -> None:
    """trainer.fit/test, with Ctrl-C raised as RunInterrupted. Lightning answers Ctrl-C with its graceful
    shutdown and then sys.exit(1) (trainer/call.py, _call_and_handle_interrupt), which reads like a crash."""
    try:
        call(*args, **kwargs)
    except (KeyboardInterrupt, SystemExit) as exc:
        if isinstance(exc, SystemExit) and not finished.interrupted:
            raise
        measured.metrics.update(finished.metrics)
        measured.record["epochs_trained"] = trainer.current_epoch
        last = getattr(trainer.checkpoint_callback, "last_model_path", "")
        resume_from = last if last and os.path.isfile(last) else None
        raise RunInterrupted(resume_from, trainer.current_epoch, measured) from None


def _weights_to_test(
    trainer: Any, test_ckpt: str, epochs_trained: int
) -> tuple[str | None, dict[str, float], int | None]:
    """(ckpt_path for trainer.test, the metrics of the epoch those weights come from, that epoch). The
    objective must describe the weights that are tested: the best checkpoint comes with the metrics it
    was ranked by; the final weights with the last epoch's."""
    checkpoint = trainer.checkpoint_callback
    ranked = checkpoint.best_metrics() if test_ckpt == "best" and hasattr(checkpoint, "best_metrics") else None
    if ranked:
        return checkpoint.best_model_path, {k: v for k, v in ranked.items() if k != "epoch"}, int(ranked["epoch"])
    if test_ckpt == "best" and checkpoint is not None and checkpoint.best_model_path:
        log.warning(
            "Testing the final weights: the epoch of %s is not recorded in its checkpoint.", checkpoint.best_model_path
        )
    last_epoch = epochs_trained - 1 if epochs_trained else None
    return None, _scalars(trainer.callback_metrics), last_epoch


def _set_dotted(config: dict[str, Any], key: str, value: Any) -> None:
    *parents, name = key.split(".")
    for parent in parents:
        config = config.setdefault(parent, {})
    config[name] = value


def quiet_lightning() -> None:
    """Lightning's `lightning` logger has its own console handler and also propagates to the root
    logger; when Hydra has configured the root (console + train.log) every line would print twice.
    Warnings that are noise in lightsweep's layout are silenced."""
    import warnings

    if logging.getLogger().handlers:
        logging.getLogger("lightning").handlers.clear()
    # Lightning 2.6 on torch 2.13 warns about its own use of a deprecated pytree API at every step.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # The run dir always holds Hydra's snapshot before the CSV logger starts (it replaces only metrics.csv),
    # and on a SLURM machine local runs are meant (cluster jobs go through executor=slurm).
    warnings.filterwarnings("ignore", message=r"Experiment logs directory .* exists and is not empty")
    warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system")
    # Epoch curves are logged whatever the step interval; only per-step rows in metrics.csv follow it.
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging")


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {name: float(value) for name, value in metrics.items()}
