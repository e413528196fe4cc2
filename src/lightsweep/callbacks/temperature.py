"""Set a contrastive model's temperature once per epoch from a TimeHUT schedule, at the epoch's start as
TimeHUT's training loop does (aminjalali-research/TimeHUT, ts2vec.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import lightning as L

from lightsweep.errors import ConfigError


class TemperatureSchedule(L.Callback):
    """Before each training epoch: `pl_module.temperature = schedule(epoch, history)`, logged as train/tau.

    history is the mean `train/loss` of every finished epoch (the adaptive schedules react to it); it is
    saved in checkpoints so a resumed run keeps the losses seen so far.
    """

    def __init__(self, schedule: Callable[[int, Sequence[float]], float]) -> None:
        self.schedule = schedule
        self.history: list[float] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not hasattr(pl_module, "temperature"):
            raise ConfigError(
                f"a temperature schedule needs a contrastive model with a temperature (model=timehut); "
                f"{type(pl_module).__name__} has none. Use scheduler=none with this model."
            )

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The last epoch's loss is read here, not in on_train_epoch_end: Lightning calls the callbacks'
        # on_train_epoch_end before the module's, which logs train/loss, so the value there is an epoch old.
        loss = trainer.callback_metrics.get("train/loss")
        if loss is not None:
            self.history.append(float(loss))
        tau = float(self.schedule(trainer.current_epoch, tuple(self.history)))
        pl_module.temperature = tau
        pl_module.log("train/tau", tau, on_step=False, on_epoch=True)

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict["history"])
