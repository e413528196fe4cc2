"""What run() records of fit as it goes: the wall time of every training epoch (train + validation +
epoch-end hooks such as checkpointing), and for an interrupted fit the metrics of its finished epochs."""

from __future__ import annotations

import math
import time

import lightning as L


class EpochTimer(L.Callback):
    """Each epoch runs from one on_train_epoch_start to the next (the last one ends at on_train_end)."""

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.end: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.starts.append(time.perf_counter())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.end = time.perf_counter()

    def epoch_seconds(self) -> list[float]:
        bounds = self.starts + ([self.end] if self.end is not None else [])
        return [round(b - a, 6) for a, b in zip(bounds, bounds[1:])]


class FinishedEpochs(L.Callback):
    """The metrics of the last finished training epoch, and whether Ctrl-C stopped fit (Lightning then exits
    with sys.exit(1) from trainer/call.py's _call_and_handle_interrupt, which reads like a crash)."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.interrupted = False

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Every hook of the previous epoch (validation, the module's epoch end) has logged by now.
        self.metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.interrupted = isinstance(exception, KeyboardInterrupt)


def planned_epochs(trainer: L.Trainer) -> int:
    """Epochs this fit will run: max_epochs, or a step budget (max_steps) in epochs."""
    if trainer.max_epochs is not None and trainer.max_epochs > 0:
        return trainer.max_epochs
    batches = trainer.num_training_batches
    steps = trainer.estimated_stepping_batches
    return math.ceil(steps / batches) if batches and math.isfinite(batches) and math.isfinite(steps) else 1
