"""ScheduledPruning: Lightning's ModelPruning driven by a sparsity schedule, reporting what it achieved.

The weights of the probed network's Linear and Conv layers are pruned at the end of training epochs,
the target sparsity rising linearly from 0 (before start_epoch) to `sparsity` (at end_epoch, default
the last planned epoch). torch's pruning is iterative, so each epoch prunes the share of the
still-unpruned weights that brings the total to the target. run.json "pruning" gets the sparsity
reached and the FLOPs pruning removed, counted by FlopCounterMode on a forward pass of the first training
batch's first probe.KEPT_INPUTS samples before and after: masks zero weights inside dense tensors that dense
kernels still multiply, so that figure is 0."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelPruning
from torch import nn
from torch.optim.swa_utils import AveragedModel
from torch.utils.flop_counter import FlopCounterMode

from lightsweep.callbacks import probe
from lightsweep.callbacks.timing import planned_epochs
from lightsweep.errors import ConfigError

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class ScheduledPruning(ModelPruning):
    def __init__(
        self,
        sparsity: float = 0.5,
        pruning_fn: str = "l1_unstructured",
        use_global_unstructured: bool = True,
        pruning_dim: int | None = None,
        pruning_norm: int | None = None,
        start_epoch: int = 0,
        end_epoch: int | None = None,
    ) -> None:
        if not 0.0 <= sparsity < 1.0:
            raise ConfigError(f"callbacks.model_pruning.sparsity={sparsity} must be in [0, 1), e.g. 0.5.")
        if pruning_fn.endswith("_structured") and use_global_unstructured:
            raise ConfigError(
                f"callbacks.model_pruning.pruning_fn={pruning_fn} prunes whole channels per layer: "
                "set callbacks.model_pruning.use_global_unstructured=false (and pruning_dim, e.g. 0)."
            )
        super().__init__(
            pruning_fn,
            amount=self._amount,
            use_global_unstructured=use_global_unstructured,
            pruning_dim=pruning_dim,
            pruning_norm=pruning_norm,
            parameter_names=["weight"],
            use_lottery_ticket_hypothesis=False,
            make_pruning_permanent=True,
        )
        self.sparsity, self.start_epoch, self.end_epoch = sparsity, start_epoch, end_epoch
        self.report: dict[str, Any] = {}
        self._net: nn.Module | None = None
        self._inputs: torch.Tensor | None = None
        self._dense_flops: int | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if any(isinstance(m, AveragedModel) for m in pl_module.modules()):
            raise ConfigError(
                f"callbacks.model_pruning cannot prune {type(pl_module).__name__}: it keeps a running weight "
                "average, which would pair pruned with unpruned tensors. Drop model_pruning for this model."
            )
        self._net = probe.weights_network(pl_module)
        self._parameters_to_prune = [(m, "weight") for m in self._net.modules() if isinstance(m, PRUNABLE)]
        if not self._parameters_to_prune:
            raise ConfigError(
                f"callbacks.model_pruning: {type(pl_module).__name__} has no Linear or Conv layer to prune."
            )
        super().setup(trainer, pl_module, stage)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.end_epoch is None:
            self.end_epoch = planned_epochs(trainer) - 1

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self._inputs is None:
            self._inputs = probe.inputs_of(batch)
            self._dense_flops = self._forward_flops()

    def target(self, epoch: int) -> float:
        """The sparsity the pruned weights should have after `epoch` ends."""
        if epoch < self.start_epoch:
            return 0.0
        span = max(1, (self.end_epoch or 0) - self.start_epoch + 1)
        return self.sparsity * min(1.0, (epoch - self.start_epoch + 1) / span)

    def _amount(self, epoch: int) -> float:
        current = self.current_sparsity()
        return max(0.0, (self.target(epoch) - current) / (1.0 - current))

    def current_sparsity(self) -> float:
        zeros = total = 0
        for module, name in self._parameters_to_prune:
            weight = getattr(module, name)
            zeros, total = zeros + int((weight == 0).sum()), total + weight.numel()
        return zeros / total if total else 0.0

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_end(trainer, pl_module)  # masks become plain zero weights
        pruned_flops = self._forward_flops()
        self.report = {
            "pruning_fn": self._pruning_method_name,
            "target_sparsity": self.sparsity,
            "sparsity": self.current_sparsity(),
            "pruned_layers": len(self._parameters_to_prune),
            "prunable_weights": sum(getattr(m, n).numel() for m, n in self._parameters_to_prune),
            "forward_flops_dense": self._dense_flops,
            "forward_flops_pruned": pruned_flops,
            "flops_removed": None if self._dense_flops is None else self._dense_flops - pruned_flops,
        }

    def run_record(self) -> dict[str, Any]:
        """What run() adds to run.json."""
        return {"pruning": self.report}

    def _forward_flops(self) -> int | None:
        if self._inputs is None or self._net is None:
            return None
        with FlopCounterMode(display=False) as counter:
            probe.run(self._net, self._inputs)
        return counter.get_total_flops()
