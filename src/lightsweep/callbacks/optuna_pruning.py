"""Optuna trial pruning inside a Hydra sweep: the job reattaches to its trial through the study storage
(Hydra's sweeper never hands the Trial object to the job), reports the monitored metric after every
validation epoch (the trial's learning curve), and stops training when the study's pruner says so. Each job
of a `hydra/sweeper=lightsweep` sweep with a study storage gets it (lightsweep.sweep.study.pruning_callback).

A trial trained by several processes (strategy=ddp/ddp_spawn) is one trial: only global rank 0 talks to the
study (one report per epoch, its value already reduced over the ranks by the model's logging) and decides;
the decision is broadcast so that every rank stops after the same epoch (a rank left training would wait
forever for the others in its next gradient all-reduce)."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch

log = logging.getLogger(__name__)


class OptunaPruning(L.Callback):
    def __init__(self, storage: str, study_name: str, trial_number: int, monitor: str) -> None:
        self.storage = storage  # the study's storage URL (a file or server every job can reach)
        self.study_name = study_name
        self.trial_number = trial_number
        self.monitor = monitor  # metric reported each epoch (the sweeper checked it improves like the study)
        self.pruned_at_epoch: int | None = None
        self.by_rank: list[dict[str, int]] = []  # {"reports", "epochs"} of every rank, gathered at train end
        self._trial: Any = None
        self._reported = 0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from lightsweep.sweep.study import load_trial

        if trainer.is_global_zero:  # the other ranks never reach the storage
            self._trial = load_trial(self.storage, self.study_name, self.trial_number)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Every rank logs the same metric names, so every rank passes here or none does: the broadcast below
        # is reached by all of them.
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        epoch = trainer.current_epoch
        prune = False
        if trainer.is_global_zero:
            self._trial.report(float(trainer.callback_metrics[self.monitor]), step=epoch)
            self._reported += 1
            # After the last epoch nothing is left to save: the trial finishes with its objective.
            prune = not _last_epoch(trainer) and self._trial.should_prune()
        if trainer.strategy.broadcast(prune, src=0):
            self.pruned_at_epoch = epoch
            trainer.should_stop = True
            if trainer.is_global_zero:
                log.info(f"Trial {self.trial_number} pruned after epoch {epoch} ({self.monitor})")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Gathered while the process group is up (fit's teardown comes before on_fit_end): run.json, written
        # from rank 0's records, shows that only rank 0 reported and that all ranks stopped together.
        mine = torch.tensor([self._reported, trainer.current_epoch], device=pl_module.device)
        gathered = trainer.strategy.all_gather(mine).reshape(-1, 2).tolist()
        self.by_rank = [{"reports": reports, "epochs": epochs} for reports, epochs in gathered]

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and not self._reported:
            # A model without a validation loop (TimeHUT: val/acc is measured after training) is expected not
            # to report; one with a loop that never logged the monitor is a setting worth a warning.
            expected = type(pl_module).validation_step is L.LightningModule.validation_step
            (log.info if expected else log.warning)(
                f"pruning: no {self.monitor!r} was logged during training, so trial "
                f"{self.trial_number} could not be pruned"
            )

    def run_record(self) -> dict[str, Any]:
        return {"pruned_at_epoch": self.pruned_at_epoch, "pruning_by_rank": self.by_rank}


def _last_epoch(trainer: L.Trainer) -> bool:
    """Whether this validation ends the epoch budget (max_epochs; -1 or None: no epoch budget)."""
    return bool(trainer.max_epochs and trainer.max_epochs > 0 and trainer.current_epoch + 1 >= trainer.max_epochs)
