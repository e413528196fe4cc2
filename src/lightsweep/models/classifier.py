"""Shared LightningModule for supervised classifiers: loss, metrics and optimizer wiring."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass
class Teacher:
    """A frozen teacher and how much it weighs. Kept in a plain object, not as a submodule: the teacher is
    not in the student's state_dict, parameters or optimizer, and the student's train() leaves it in eval."""

    network: torch.nn.Module
    weight: float
    temperature: float


def distillation_loss(
    logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor, weight: float, temperature: float
) -> torch.Tensor:
    """Hinton et al. 2015 ("Distilling the Knowledge in a Neural Network"), with w = weight, T = temperature:

        (1 - w) * CE(student, targets) + w * T^2 * KL(softmax(teacher / T) || softmax(student / T))

    KL summed over classes and averaged over the batch; T^2 keeps the soft term's gradients on the scale of
    the hard term's as T grows."""
    hard = F.cross_entropy(logits, targets)
    soft = F.kl_div(
        F.log_softmax(logits / temperature, dim=-1),
        F.log_softmax(teacher_logits / temperature, dim=-1),
        reduction="batchmean",
        log_target=True,
    )
    return (1.0 - weight) * hard + weight * temperature**2 * soft


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
    test/loss, test/acc and test/f1_macro (torchmetrics) once per epoch. With a teacher (set_teacher) the
    training loss (train/loss) is the distillation loss; validation and test losses stay cross-entropy.

    Steps only add to running totals and logging happens once per epoch: each `self.log` call costs
    Lightning ~0.7 ms, as much as a whole step of a small model (benchmarks/overhead.py)."""

    def __init__(self, num_classes: int, optimizer: Mapping[str, Any] | None) -> None:
        super().__init__()
        self.optimizer_spec = dict(optimizer or DEFAULT_OPTIMIZER)
        self.totals = {stage: EpochTotals() for stage in ("train", "val", "test")}
        self.test_f1 = MulticlassF1Score(num_classes, average="macro")
        self.net: torch.nn.Module
        self.teacher: Teacher | None = None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        inputs, targets = batch
        logits = self(inputs)
        if stage == "train" and self.teacher is not None:
            with torch.no_grad():
                teacher_logits = self.teacher.network(inputs)
            loss = distillation_loss(logits, teacher_logits, targets, self.teacher.weight, self.teacher.temperature)
        else:
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

    def on_fit_start(self) -> None:
        if self.teacher is not None:  # the student moved to its device after set_teacher
            self.teacher.network.to(self.device)

    def set_teacher(self, teacher: torch.nn.Module, weight: float, temperature: float) -> None:
        """contracts.Distillable: train against `teacher` (a trained, wider model of the same family mapping
        the same inputs to logits) with distillation_loss(); the teacher is frozen (eval mode, no gradients)
        and never trained. weight=0 is plain cross-entropy."""
        if not isinstance(teacher, torch.nn.Module):
            raise ConfigError(f"The distillation teacher must be a torch module, got {type(teacher).__name__}.")
        if not 0.0 <= weight <= 1.0 or temperature <= 0:
            raise ConfigError(
                f"Distillation weight={weight} must be in [0, 1] and temperature={temperature} above 0 "
                "(Hinton et al. use weights near 0.5-0.9 and temperatures of 2-20)."
            )
        teacher.eval().requires_grad_(False).to(self.device)
        self.teacher = Teacher(teacher, float(weight), float(temperature))

    def inference_network(self) -> torch.nn.Module:
        """contracts.QuantizesForInference: the classifier itself is what is evaluated."""
        return self

    def evaluate_network(self, network: torch.nn.Module, datamodule: L.LightningDataModule) -> dict[str, float]:
        """contracts.QuantizesForInference: {"accuracy", "f1_macro"} over the datamodule's test split with
        `network` (inputs -> logits, e.g. quantized_network()) in eval mode on its own device (the CPU when
        it has no float parameters, as INT8 networks): the figures test/acc and test/f1_macro give for it."""
        device = next((p.device for p in network.parameters()), torch.device("cpu"))
        f1 = MulticlassF1Score(self.test_f1.num_classes, average="macro")
        correct = count = 0
        was_training = network.training
        network.eval()
        datamodule.setup("test")
        try:
            with torch.no_grad():
                for batch in datamodule.test_dataloader():
                    inputs, targets = batch[0].to(device), batch[1].cpu()
                    predictions = network(inputs).float().cpu().argmax(-1)
                    f1.update(predictions, targets)
                    correct += int((predictions == targets).sum())
                    count += len(targets)
        finally:
            network.train(was_training)
        return {"accuracy": correct / count, "f1_macro": float(f1.compute())}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(self.optimizer_spec, self.parameters())

    @staticmethod
    def default_budget(datamodule: L.LightningDataModule) -> dict[str, int]:
        """Trainer limits when the config sets neither trainer.max_epochs nor trainer.max_steps."""
        return {"max_epochs": 10}

    def probe_network(self) -> torch.nn.Module:
        """What callbacks probe with a batch of inputs: the classifier itself (inputs -> logits)."""
        return self
