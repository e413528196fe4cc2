"""Shared LightningModule for supervised classifiers: loss, metrics and optimizer wiring."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from lightsweep.errors import ConfigError

DEFAULT_OPTIMIZER = {"_target_": "torch.optim.Adam", "lr": 1e-3}


def make_optimizer(spec: Mapping[str, Any], params) -> torch.optim.Optimizer:
    """Build a torch.optim optimizer from its config node ({_target_: torch.optim.X, lr: ...}).

    Kept as plain data until here (not a Hydra partial) so the model pickles for ddp_spawn and
    its hyper-parameters load from checkpoints with weights_only=True."""
    target = str(spec.get("_target_", ""))
    optimizer_class = getattr(torch.optim, target.removeprefix("torch.optim."), None)
    if not target.startswith("torch.optim.") or not isinstance(optimizer_class, type):
        raise ConfigError(f"model.optimizer._target_={target!r} is not a torch.optim optimizer (e.g. torch.optim.Adam).")
    settings = {k: v for k, v in spec.items() if not (k.startswith("_") and k.endswith("_"))}
    return optimizer_class(params, **settings)


class Classifier(L.LightningModule):
    """Subclasses build `self.net` (inputs -> logits). Logs train/loss, train/acc, val/loss, val/acc,
    test/loss, test/acc and test/f1_macro, each once per epoch."""

    def __init__(self, num_classes: int, optimizer: Mapping[str, Any] | None) -> None:
        super().__init__()
        self.optimizer_spec = dict(optimizer or DEFAULT_OPTIMIZER)
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_f1 = MulticlassF1Score(num_classes, average="macro")
        self.net: torch.nn.Module

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        inputs, targets = batch
        logits = self(inputs)
        return F.cross_entropy(logits, targets), logits, targets

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss, logits, targets = self._loss(batch)
        self.train_acc(logits, targets)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        loss, logits, targets = self._loss(batch)
        self.val_acc(logits, targets)
        self.log("val/loss", loss, prog_bar=True)
        self.log("val/acc", self.val_acc, prog_bar=True)

    def test_step(self, batch, batch_idx: int) -> None:
        loss, logits, targets = self._loss(batch)
        self.test_acc(logits, targets)
        self.test_f1(logits, targets)
        self.log("test/loss", loss)
        self.log("test/acc", self.test_acc)
        self.log("test/f1_macro", self.test_f1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(self.optimizer_spec, self.parameters())
