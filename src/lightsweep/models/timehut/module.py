"""TimeHUT as a LightningModule: contrastive pre-training of a TS2Vec encoder, then a classifier
fitted on the weight-averaged encoder's embeddings (TS2Vec: ts2vec.py fit and encode, tasks/classification.py;
TimeHUT: ts2vec.py, models/losses.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_swa_multi_avg_fn

from lightsweep.errors import ConfigError
from lightsweep.models.timehut.compress import match_widths, prune_inner_channels
from lightsweep.models.timehut.encoder import MaskMode, TSEncoder, encode_crops
from lightsweep.models.timehut.evaluation import Protocol, _fit, evaluate
from lightsweep.models.timehut.losses import LossSettings, hierarchical_loss
from lightsweep.models.timehut.quantize import quantize_encoder
from lightsweep.models.timehut.views import Crops, overlapping_crops, random_window


class TimeHUT(L.LightningModule):
    """`temperature` is the current tau; a TemperatureSchedule callback (scheduler=...) sets it each epoch."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden_dims: int = 64,
        output_dims: int = 320,
        depth: int = 10,
        mask_mode: MaskMode = "binomial",
        lr: float = 0.001,
        alpha: float = 0.5,
        temporal_unit: int = 0,
        amc_instance: float = 0.0,
        amc_temporal: float = 0.0,
        amc_margin: float = 0.5,
        temperature: float = 1.0,
        temporal_tau: Literal["after_softmax", "before_softmax"] = "after_softmax",
        last_level_amc: Literal["temporal", "instance"] = "temporal",
        eval_protocol: Protocol = "svm",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.encoder = TSEncoder(input_shape[-1], output_dims, hidden_dims, depth, mask_mode)
        # Encoding uses the equal-weight average of the initial weights and the weights after every step:
        # as TS2Vec's ts2vec.py, the copy takes the initial weights as its first average (n_averaged 1)
        # before any step. The copy is averaged, never trained: no gradient, and callbacks count the
        # encoder's parameters only (probe.weights_network).
        # (foreach update: one fused call per step instead of one per parameter tensor)
        self.averaged_encoder = AveragedModel(self.encoder, multi_avg_fn=get_swa_multi_avg_fn())
        self.averaged_encoder.requires_grad_(False)
        self.averaged_encoder.update_parameters(self.encoder)
        self.loss_settings = LossSettings(
            alpha, temporal_unit, amc_instance, amc_temporal, amc_margin, temporal_tau, last_level_amc
        )
        self.temperature = temperature
        self.lr, self.temporal_unit, self.eval_protocol = lr, temporal_unit, eval_protocol
        self._loss_sum = self._steps = 0
        self._average: tuple | None = None  # see update_average
        self._embeddings: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        # (teacher, weight) of set_teacher: in a tuple, so the teacher is no submodule (not saved, counted or trained)
        self._teacher: tuple[TimeHUT, float] | None = None

    def training_step(self, batch: tuple[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x = random_window(batch[0], getattr(self.trainer.datamodule, "max_train_length", None))
        loss = self.step_loss(x)
        self._loss_sum, self._steps = self._loss_sum + loss.detach(), self._steps + 1
        return loss

    def step_loss(self, x: torch.Tensor) -> torch.Tensor:
        """The training loss on a batch of series: contrastive, plus the distillation term once set_teacher ran."""
        crops = self.crop_views(x)
        z1, z2 = self.encode_views(*crops)
        loss = self.contrastive_loss(z1, z2)
        if self._teacher is not None and self._teacher[1]:
            loss = loss + self._teacher[1] * self.distillation_loss(crops[0], z1, z2)
        return loss

    def crop_views(self, x: torch.Tensor) -> tuple[Crops]:
        """Two overlapping random crops of each series in one padded batch (TS2Vec's cropping)."""
        return (overlapping_crops(x, self.temporal_unit),)

    def encode_views(self, crops: Crops) -> tuple[torch.Tensor, torch.Tensor]:
        """(z1, z2), each (B, overlap, output_dims): the trained encoder's outputs on the shared timestamps."""
        return encode_crops(self.encoder, crops.batch, crops.lengths, crops.overlap, crops.length1)

    def contrastive_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """In float32 whatever the precision plugin autocasts: under bf16 the angular margins' cosines round
        to exactly 1, where acos has an infinite gradient (every loss NaN from the first step)."""
        with torch.autocast(z1.device.type, enabled=False):
            return hierarchical_loss(z1.float(), z2.float(), self.temperature, self.loss_settings)

    def distillation_loss(self, crops: Crops, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """Mean squared error between the student's embeddings (z1, z2) and the teacher's weight-averaged
        encoder's (the one it is evaluated with; eval mode, no gradient) on the same crops."""
        teacher = self._teacher[0].averaged_encoder.module
        with torch.no_grad():
            t1, t2 = encode_crops(teacher, crops.batch, crops.lengths, crops.overlap, crops.length1)
        return F.mse_loss(torch.cat([z1, z2]), torch.cat([t1, t2]).to(z1.dtype))

    def set_teacher(self, teacher: TimeHUT, weight: float, temperature: float) -> None:
        """Distillable: each training step adds weight x MSE(student embeddings, teacher embeddings) (see
        distillation_loss). Embeddings are matched directly: `temperature`, which softens classifier logits,
        has no role here and is ignored. The teacher is frozen, kept in eval mode and on this module's device."""
        if not isinstance(teacher, TimeHUT):
            raise ConfigError(f"a TimeHUT student needs a TimeHUT teacher, got {type(teacher).__name__}.")
        ours, theirs = self.hparams.output_dims, teacher.hparams.output_dims
        if ours != theirs:
            raise ConfigError(
                f"teacher output_dims={theirs} differs from the student's output_dims={ours}: distillation "
                "matches embeddings, so set the same model.output_dims for both (widen hidden_dims instead)."
            )
        if weight < 0:
            raise ConfigError(f"distillation weight={weight} must be at least 0.")
        teacher.requires_grad_(False).eval().to(self.device)
        self._teacher = (teacher, float(weight))

    def on_train_start(self) -> None:
        self._average = None  # parameters and count read afresh after a device move or a checkpoint load
        if self._teacher is not None:
            self._teacher[0].to(self.device)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.update_average()

    @torch.no_grad()
    def update_average(self) -> None:
        """Fold the encoder's current weights into the equal-weight average used for encoding: what
        AveragedModel.update_parameters does with the SWA average (one foreach lerp by 1 / (n + 1)), without
        its per-step walk over both modules, its per-tensor `.to()` and the two host syncs of its tensor
        count (`n_averaged == 0`, `1 / (n_averaged + 1)` as a Python number) on a GPU."""
        if self._average is None:
            average = self.averaged_encoder
            self._average = (
                list(average.module.parameters()),
                list(self.encoder.parameters()),
                list(average.module.buffers()),
                list(self.encoder.buffers()),
                int(average.n_averaged),
            )
        averaged, current, averaged_buffers, buffers, count = self._average
        if count == 0:
            torch._foreach_copy_(averaged, current)
        else:
            torch._foreach_lerp_(averaged, current, 1.0 / (count + 1))
        if buffers:  # AveragedModel(use_buffers=False) keeps the buffers equal to the trained model's
            torch._foreach_copy_(averaged_buffers, buffers)
        self.averaged_encoder.n_averaged += 1
        self._average = (averaged, current, averaged_buffers, buffers, count + 1)

    def on_train_epoch_end(self) -> None:
        if self._steps:
            mean = self.trainer.strategy.reduce(self._loss_sum / self._steps, reduce_op="mean")
            self.log("train/loss", mean)
        self._loss_sum = self._steps = 0

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, output_dims): averaged encoder, no masking, max-pooled over all timestamps."""
        return self.averaged_encoder.module(x, mask="all_true").amax(dim=1)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        """Loader 0 is the training set, loader 1 the test set (see TimeSeriesDataModule.test_dataloader)."""
        inputs, labels = batch
        self._embeddings.setdefault(dataloader_idx, []).append((self.encode(inputs).float().cpu(), labels.cpu()))

    def on_test_epoch_end(self) -> None:
        (train_x, train_y), (test_x, test_y) = (self._stacked(i) for i in (0, 1))
        self._embeddings.clear()
        metrics = evaluate(self.eval_protocol, train_x, train_y, test_x, test_y)
        self.log_dict({name: float(value) for name, value in metrics.items()})

    def _stacked(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        features, labels = zip(*self._embeddings[index])
        return torch.cat(features).numpy(), torch.cat(labels).numpy()

    def unreachable_weights(self, input_shape: Sequence[int]) -> dict[str, torch.Tensor]:
        """For the health monitor: the encoder weights that inputs of this (..., T, D) shape cannot reach (one
        sample's shape or a batch's: T is the second-last axis either way)."""
        length = input_shape[-2]
        return {f"encoder.{name}": mask for name, mask in self.encoder.unreachable_weights(length).items()}

    def overrides_for(self, input_shape: Sequence[int]) -> list[str]:
        """The shallower encoder whose every tap reaches series of T steps: the deepest whose last block's
        dilation 2**depth is below T (its receptive field already spans the series)."""
        depth = max(0, (input_shape[-2] - 1).bit_length() - 1)
        return [f"model.depth={depth}"] if depth < self.hparams.depth else []

    def set_checkpointing(self, enabled: bool) -> None:
        """Checkpointable: the trained encoder's residual blocks recompute their activations in backward."""
        self.encoder.checkpointing = enabled

    def prune_channels(self, amount: float) -> dict[str, Any]:
        """PrunesChannels: each residual block loses the `amount` share of its inner channels (conv1's outputs,
        conv2's inputs) with the smallest L1 norm of conv1's filters, in the encoder and, at the same indices,
        in its weight-averaged copy. The caller rebuilds the optimizer (configure_optimizers)."""
        record = prune_inner_channels({"encoder": self.encoder, "averaged": self.averaged_encoder.module}, amount)
        self._average = None  # update_average's lists hold the replaced parameters
        return record

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A checkpoint saved after prune_channels holds narrower blocks: shape the encoders to match it."""
        for encoder, prefix in ((self.encoder, "encoder."), (self.averaged_encoder.module, "averaged_encoder.module.")):
            match_widths(encoder, checkpoint["state_dict"], prefix)
        self._average = None

    def inference_network(self) -> torch.nn.Module:
        """QuantizesForInference: the encoder that is evaluated, the weight-averaged one."""
        return self.averaged_encoder.module

    def quantized_network(self, calibration: list[Any]) -> torch.nn.Module:
        """QuantizesForInference: a static INT8 copy of the weight-averaged encoder (the one evaluated) for CPU
        inference, calibrated on `calibration` (input batches); what stays float and why: quantize.py. It maps
        (B, T, D) to (B, T, output_dims) as the encoder does."""
        return quantize_encoder(self.averaged_encoder.module, calibration)

    @torch.no_grad()
    def evaluate_network(self, network: torch.nn.Module, datamodule: L.LightningDataModule) -> dict[str, float]:
        """The test metrics with `network` in the weight-averaged encoder's place: its (B, T, C) outputs
        max-pooled over time (as encode), the evaluation protocol fitted on the training set's embeddings and
        scored on the test set's. With the averaged encoder itself, the numbers test() logs."""
        from sklearn.metrics import f1_score

        was_training = network.training
        network.eval()
        try:
            (train_x, train_y), (test_x, test_y) = (_embed(network, loader) for loader in datamodule.test_dataloader())
        finally:
            network.train(was_training)
        predicted = _fit(self.eval_protocol, train_x, train_y).predict(test_x)
        return {
            "accuracy": float((predicted == test_y).mean()),
            "f1_macro": float(f1_score(test_y, predicted, average="macro")),
        }

    def probe_network(self) -> torch.nn.Module:
        """What callbacks probe with a batch of series: the trained encoder (it has no forward of its own)."""
        return self.encoder

    @staticmethod
    def default_budget(datamodule: L.LightningDataModule) -> dict[str, int]:
        """TS2Vec's rule when no budget is configured: 200 steps for a training set of at most
        100,000 values (N x T x D), else 600."""
        return {"max_epochs": -1, "max_steps": 200 if datamodule.train_x.numel() <= 100_000 else 600}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # fused: AdamW's update maths in one kernel over all tensors (CPU and CUDA; equal to the per-tensor
        # loop within float rounding), ~2.5x faster than foreach on CPU, which was itself ~5 ms a step less
        # than the loop (torch's default is foreach only on CUDA).
        fused = self.device.type in ("cpu", "cuda")
        return torch.optim.AdamW(self.encoder.parameters(), lr=self.lr, fused=fused, foreach=None if fused else True)


def _embed(network: torch.nn.Module, loader) -> tuple[np.ndarray, np.ndarray]:
    """Max-pooled embeddings of a loader's (x, y) batches and their labels, on the network's device."""
    first = next(network.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    pairs = [(network(x.to(device)).amax(dim=1).float().cpu(), y) for x, y in loader]
    features, labels = zip(*pairs)
    return torch.cat(features).numpy(), torch.cat(labels).numpy()
