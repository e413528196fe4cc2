"""Optuna trial pruning inside a Hydra sweep: the job reattaches to its trial through the study storage
(Hydra's sweeper never hands the Trial object to the job), reports the monitored metric after every
validation epoch (the trial's learning curve), and stops training when the study's pruner says so. Each job
of a `hydra/sweeper=lightsweep` sweep with a study storage gets it (lightsweep.sweep.study.pruning_callback)."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L

log = logging.getLogger(__name__)


class OptunaPruning(L.Callback):
    def __init__(self, storage: str, study_name: str, trial_number: int, monitor: str) -> None:
        self.storage = storage  # the study's storage URL (a file or server every job can reach)
        self.study_name = study_name
        self.trial_number = trial_number
        self.monitor = monitor  # metric reported each epoch (the sweeper checked it improves like the study)
        self.pruned_at_epoch: int | None = None
        self._trial: Any = None
        self._reported = 0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from lightsweep.sweep.study import load_trial

        self._trial = load_trial(self.storage, self.study_name, self.trial_number)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        epoch = trainer.current_epoch
        self._trial.report(float(trainer.callback_metrics[self.monitor]), step=epoch)
        self._reported += 1
        if self._trial.should_prune():
            self.pruned_at_epoch = epoch
            trainer.should_stop = True
            log.info(f"Trial {self.trial_number} pruned after epoch {epoch} ({self.monitor})")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._reported:  # e.g. TimeHUT: its val/acc is measured after training, not per epoch
            log.warning(
                f"pruning: no {self.monitor!r} was logged during training, so trial "
                f"{self.trial_number} could not be pruned"
            )

    def run_record(self) -> dict[str, Any]:
        return {"pruned_at_epoch": self.pruned_at_epoch}
