"""Checkpointing and early stopping that watch a validation metric, and know what to do without one.

TimeHUT has no validation loop (its val/acc is cross-validated after training), so a monitored metric
never appears during fit: Lightning's ModelCheckpoint would warn and EarlyStopping would fail. For such
models the checkpoint keeps only the final weights (last.ckpt, written once when training ends) and early
stopping stands aside; both say so in one log line."""

from __future__ import annotations

import logging

import lightning as L
from lightning.pytorch import callbacks
from lightning.pytorch.utilities.model_helpers import is_overridden

log = logging.getLogger(__name__)


def has_validation_loop(trainer: L.Trainer, pl_module: L.LightningModule) -> bool:
    return is_overridden("validation_step", pl_module) and trainer.limit_val_batches != 0


class MonitoredCheckpoint(callbacks.ModelCheckpoint):
    """Lightning's ModelCheckpoint; without a validation loop: no ranking, last.ckpt when training ends."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit" and self.monitor and not has_validation_loop(trainer, pl_module):
            log.info("%s has no validation loop: checkpoints keep the final weights (last.ckpt), not the best %s.",
                     type(pl_module).__name__, self.monitor)
            self.monitor, self.save_top_k, self.save_last = None, 0, True
            self._every_n_epochs = 0  # no per-epoch writes; on_train_end saves last.ckpt once


class MonitoredEarlyStopping(callbacks.EarlyStopping):
    """Lightning's EarlyStopping; without a validation loop it stands aside (training runs its budget)."""

    active = True

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self.active = has_validation_loop(trainer, pl_module)
        if stage == "fit" and not self.active:
            log.info("%s has no validation loop: early stopping on %s is off for this run.",
                     type(pl_module).__name__, self.monitor)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.active:
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.active:
            super().on_validation_end(trainer, pl_module)
