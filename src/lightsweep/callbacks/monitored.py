"""Checkpointing and early stopping that watch a validation metric, and know what to do without one.

TimeHUT has no validation loop (its val/acc is cross-validated after training), so a monitored metric
never appears during fit: Lightning's ModelCheckpoint would warn and EarlyStopping would fail. For such
models the checkpoint keeps only the final weights (last.ckpt, written once when training ends) and early
stopping stands aside; both say so in one log line.

The checkpoint also keeps, with each best checkpoint, the metrics of the epoch it was ranked at (so a run
can report the validation metrics of the weights it tests), carries the best checkpoints over when a run
resumes into a new directory, and writes last.ckpt when Ctrl-C stops training."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch import callbacks
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.model_helpers import is_overridden

from lightsweep.runinfo import write_atomically

log = logging.getLogger(__name__)


def has_validation_loop(trainer: L.Trainer, pl_module: L.LightningModule) -> bool:
    return is_overridden("validation_step", pl_module) and trainer.limit_val_batches != 0


class MonitoredCheckpoint(callbacks.ModelCheckpoint):
    """Lightning's ModelCheckpoint; without a validation loop: no ranking, last.ckpt when training ends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics_of: dict[str, dict[str, float]] = {}  # top-k checkpoint path -> metrics it was ranked with
        self._ranking: dict[str, float] | None = None

    def best_metrics(self) -> dict[str, float] | None:
        """The metrics (and `epoch`) of the epoch whose weights best_model_path holds; None if unknown. After
        ddp_spawn only best_model_path and its score come back from the training processes: the rest is
        read from the checkpoint's own state."""
        path = self.best_model_path
        if path and path not in self.metrics_of and os.path.isfile(path):
            saved = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
            self.metrics_of = saved.get("callbacks", {}).get(self.state_key, {}).get("metrics_of", {})
        return self.metrics_of.get(path)

    def _update_best_and_save(
        self, current: torch.Tensor, trainer: L.Trainer, monitor_candidates: dict[str, torch.Tensor]
    ) -> None:
        self._ranking = {name: float(value) for name, value in monitor_candidates.items() if name != "step"}
        super()._update_best_and_save(current, trainer, monitor_candidates)

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        if self._ranking is not None:  # a new top-k checkpoint: recorded before its own state is saved
            self.metrics_of = {path: m for path, m in self.metrics_of.items() if path in self.best_k_models}
            self.metrics_of[filepath], self._ranking = self._ranking, None
        super()._save_checkpoint(trainer, filepath)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "metrics_of": self.metrics_of}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Lightning drops the ranking when the checkpoint comes from another directory (a resumed run writes
        into its own run dir), so the first resumed epoch would become "best" however poor. Copy the earlier
        best checkpoints into this directory and keep ranking against them."""
        moved = state_dict.get("dirpath", self.dirpath) != self.dirpath
        if not moved or state_dict.get("monitor") != self.monitor or not self._carry_over(state_dict):
            super().load_state_dict(state_dict)
            self.metrics_of = {} if moved else dict(state_dict.get("metrics_of", {}))

    def _carry_over(self, state_dict: dict[str, Any]) -> bool:
        earlier = state_dict.get("best_k_models", {})
        if not all(os.path.isfile(path) for path in earlier):
            log.info("The best checkpoints of the resumed run are gone: ranking starts afresh in %s.", self.dirpath)
            return False
        os.makedirs(self.dirpath, exist_ok=True)
        here = {path: os.path.join(self.dirpath, os.path.basename(path)) for path in earlier}
        for source, copy in here.items():
            with open(source, "rb") as handle:  # atomic: every rank of a distributed run may copy at once
                write_atomically(Path(copy), lambda target, source=handle: shutil.copyfileobj(source, target))
        self.best_k_models = {here[path]: score for path, score in earlier.items()}
        self.kth_best_model_path = here.get(state_dict.get("kth_best_model_path", ""), "")
        self.kth_value = state_dict.get("kth_value", self.kth_value)
        self.best_model_path = here.get(state_dict.get("best_model_path", ""), "")
        self.best_model_score = state_dict.get("best_model_score") if self.best_model_path else None
        self.metrics_of = {here[path]: m for path, m in state_dict.get("metrics_of", {}).items() if path in here}
        return True

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        """Ctrl-C while training: write last.ckpt now, so the run resumes from where it stopped."""
        super().on_exception(trainer, pl_module, exception)
        if (
            isinstance(exception, KeyboardInterrupt)
            and trainer.state.fn == TrainerFn.FITTING
            and not trainer.sanity_checking
            and self._last_global_step_saved != trainer.global_step
        ):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage == "fit" and self.monitor and not has_validation_loop(trainer, pl_module):
            log.info(
                "%s has no validation loop: checkpoints keep the final weights (last.ckpt), not the best %s.",
                type(pl_module).__name__,
                self.monitor,
            )
            self.monitor, self.save_top_k, self.save_last = None, 0, True
            self._every_n_epochs = 0  # no per-epoch writes; on_train_end saves last.ckpt once


class MonitoredEarlyStopping(callbacks.EarlyStopping):
    """Lightning's EarlyStopping; without a validation loop it stands aside (training runs its budget)."""

    active = True

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self.active = has_validation_loop(trainer, pl_module)
        if stage == "fit" and not self.active:
            log.info(
                "%s has no validation loop: early stopping on %s is off for this run.",
                type(pl_module).__name__,
                self.monitor,
            )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.active:
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.active:
            super().on_validation_end(trainer, pl_module)
