"""EpochProgress: the console display of a run, one line per epoch instead of a bar per epoch.

In a terminal the line is redrawn in place (epoch, the epoch's metrics, seconds so far), so 200 epochs
take one line; elsewhere (logs, CI, a sweep's jobs) a line is logged for about every 5% of the epochs and
the last, so train.log shows the run's course without 200 near-identical lines."""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import TextIO

import lightning as L
from lightning.pytorch.callbacks.progress.progress_bar import ProgressBar

from lightsweep.callbacks.timing import planned_epochs

log = logging.getLogger("lightsweep.progress")
LOGGED_LINES = 20  # epoch lines logged when the output is not a terminal (plus the last one)
SHOWN = ("train/loss", "train/acc", "val/loss", "val/acc", "train/tau")


class EpochProgress(ProgressBar):
    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream or sys.stderr
        self.enabled = True
        self._started = 0.0
        self._width = 0  # of the last in-place line, to blank what a shorter one leaves

    def disable(self) -> None:  # Lightning turns bars off on non-zero ranks
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The finished epoch's metrics are complete only now: modules log their epoch totals in their own
        # on_train_epoch_end, which Lightning calls after the callbacks'.
        if trainer.current_epoch > 0:
            self._show(trainer, trainer.current_epoch - 1, last=False)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._show(trainer, max(trainer.current_epoch - 1, 0), last=True)

    def _show(self, trainer: L.Trainer, epoch: int, last: bool) -> None:
        if not self.enabled or not trainer.is_global_zero:
            return
        total = planned_epochs(trainer)
        metrics = trainer.callback_metrics
        shown = "  ".join(f"{name} {float(metrics[name]):.4g}" for name in SHOWN if name in metrics)
        line = f"epoch {epoch + 1}/{total}  {shown}  {time.perf_counter() - self._started:.1f} s"
        if self.stream.isatty():
            self.stream.write("\r" + line.ljust(self._width) + ("\n" if last else ""))
            self.stream.flush()
            self._width = len(line)
        elif last or (epoch + 1) % max(1, math.ceil(total / LOGGED_LINES)) == 0:
            log.info(line)
