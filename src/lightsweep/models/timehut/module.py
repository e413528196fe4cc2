"""TimeHUT as a LightningModule: contrastive pre-training of a TS2Vec encoder, then a classifier
fitted on the weight-averaged encoder's embeddings (TS2Vec: ts2vec.py fit and encode, tasks/classification.py;
TimeHUT: ts2vec.py, models/losses.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import lightning as L
import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_swa_multi_avg_fn

from lightsweep.models.timehut.encoder import MaskMode, TSEncoder, encode_crops
from lightsweep.models.timehut.evaluation import Protocol, evaluate
from lightsweep.models.timehut.losses import LossSettings, hierarchical_loss
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

    def training_step(self, batch: tuple[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x = random_window(batch[0], getattr(self.trainer.datamodule, "max_train_length", None))
        loss = self.contrastive_loss(*self.encode_views(*self.crop_views(x)))
        self._loss_sum, self._steps = self._loss_sum + loss.detach(), self._steps + 1
        return loss

    def crop_views(self, x: torch.Tensor) -> tuple[Crops]:
        """Two overlapping random crops of each series in one padded batch (TS2Vec's cropping)."""
        return (overlapping_crops(x, self.temporal_unit),)

    def encode_views(self, crops: Crops) -> tuple[torch.Tensor, torch.Tensor]:
        """(z1, z2), each (B, overlap, output_dims): the trained encoder's outputs on the shared timestamps."""
        return encode_crops(self.encoder, crops.batch, crops.lengths, crops.overlap, crops.length1)

    def contrastive_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return hierarchical_loss(z1, z2, self.temperature, self.loss_settings)

    def on_train_start(self) -> None:
        self._average = None  # parameters and count read afresh after a device move or a checkpoint load

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
