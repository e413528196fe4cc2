"""Shared LightningModule for supervised classifiers: loss, metrics and optimizer wiring."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassF1Score

from lightsweep.errors import ConfigError

DEFAULT_OPTIMIZER = {"_target_": "torch.optim.Adam", "lr": 1e-3}


def make_optimizer(spec: Mapping[str, Any], params) -> torch.optim.Optimizer:
    """Build a torch.optim optimizer from its config node ({_target_: torch.optim.X, lr: ...}).

    Kept as plain data until here (not a Hydra partial) so the model pickles for ddp_spawn and
    its hyper-parameters load from checkpoints with weights_only=True."""
    target = str(spec.get("_target_", ""))
    optimizer_class = getattr(torch.optim, target.removeprefix("torch.optim."), None)
    if not target.startswith("torch.optim.") or not isinstance(optimizer_class, type):
        raise ConfigError(
            f"model.optimizer._target_={target!r} is not a torch.optim optimizer (e.g. torch.optim.Adam)."
        )
    settings = {k: v for k, v in spec.items() if not (k.startswith("_") and k.endswith("_"))}
    return optimizer_class(params, **settings)


class EpochTotals:
    """Loss and accuracy over an epoch, exact, summed across ranks at the end.

    A step only keeps its loss, predictions and targets (one argmax); counting happens once per epoch,
    so the step does not pay for several small tensor ops on a small model's critical path."""

    def __init__(self) -> None:
        self.losses: list[torch.Tensor] = []
        self.predictions: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []

    def update(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        self.losses.append(loss.detach())
        self.predictions.append(logits.detach().argmax(-1))
        self.targets.append(targets)

    def compute(self, reduce) -> dict[str, torch.Tensor]:
        """{"loss", "acc"} over everything seen since the last call (all ranks); {} if nothing was seen."""
        if not self.losses:
            return {}
        counts = torch.tensor([t.numel() for t in self.targets], dtype=torch.float32, device=self.losses[0].device)
        correct = (torch.cat(self.predictions).flatten() == torch.cat(self.targets).flatten()).sum()
        totals = torch.stack(((torch.stack(self.losses).float() * counts).sum(), correct.float(), counts.sum()))
        self.losses, self.predictions, self.targets = [], [], []
        loss_sum, correct, count = reduce(totals)
        return {"loss": loss_sum / count, "acc": correct / count}


class Classifier(L.LightningModule):
    """Subclasses build `self.net` (inputs -> logits). Logs train/loss, train/acc, val/loss, val/acc,
    test/loss, test/acc and test/f1_macro (torchmetrics) once per epoch.

    Steps only add to running totals and logging happens once per epoch: each `self.log` call costs
    Lightning ~0.7 ms, as much as a whole step of a small model (benchmarks/overhead.py)."""

    def __init__(self, num_classes: int, optimizer: Mapping[str, Any] | None) -> None:
        super().__init__()
        self.optimizer_spec = dict(optimizer or DEFAULT_OPTIMIZER)
        self.totals = {stage: EpochTotals() for stage in ("train", "val", "test")}
        self.test_f1 = MulticlassF1Score(num_classes, average="macro")
        self.net: torch.nn.Module

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        inputs, targets = batch
        logits = self(inputs)
        loss = F.cross_entropy(logits, targets)
        self.totals[stage].update(loss, logits, targets)
        if stage == "test":
            self.test_f1.update(logits, targets)
        return loss

    def _log_epoch(self, stage: str) -> None:
        reduce = lambda t: self.trainer.strategy.reduce(t, reduce_op="sum")  # noqa: E731
        values = {f"{stage}/{name}": value for name, value in self.totals[stage].compute(reduce).items()}
        if stage == "test":
            values["test/f1_macro"] = self.test_f1.compute()
            self.test_f1.reset()
        self.log_dict(values, prog_bar=stage == "val")

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(self.optimizer_spec, self.parameters())

    @staticmethod
    def default_budget(datamodule: L.LightningDataModule) -> dict[str, int]:
        """Trainer limits when the config sets neither trainer.max_epochs nor trainer.max_steps."""
        return {"max_epochs": 10}

    def probe_network(self) -> torch.nn.Module:
        """What callbacks probe with a batch of inputs: the classifier itself (inputs -> logits)."""
        return self
