"""ChannelPruning: structured pruning that removes channels for real, once, then fine-tunes.

At the start of epoch round(at x planned epochs) (at least 1: something is trained first, and before the
last: something is fine-tuned) the model family's prune_channels(amount) (contracts.PrunesChannels)
replaces its layers by narrower ones; the optimizers and LR schedulers are rebuilt through Lightning for
the new parameters, and the remaining epochs fine-tune. Checkpoint ranking and early stopping start afresh
at that point: the unpruned network's checkpoints no longer fit the model, and its scores are not the
fine-tuning's to beat.

run.json "channel_pruning" gets the parameters and FLOPs per training step before and after: FLOPs of a
forward and backward pass of the trained network (probe.weights_network) on the same kept inputs of the
first training batch, counted by torch's FlopCounterMode, with the random state replayed so TimeHUT's
masks are the same both times. (callbacks/efficiency.py counts the first real step only, before pruning.)"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lightsweep.callbacks import probe
from lightsweep.callbacks.timing import planned_epochs
from lightsweep.contracts import PrunesChannels
from lightsweep.errors import ConfigError


class ChannelPruning(L.Callback):
    def __init__(self, amount: float = 0.5, at: float = 0.5) -> None:
        if not 0.0 < amount < 1.0:
            raise ConfigError(
                f"callbacks.channel_pruning.amount={amount} must be in (0, 1): the share of channels removed."
            )
        if not 0.0 <= at < 1.0:
            raise ConfigError(
                f"callbacks.channel_pruning.at={at} must be in [0, 1): when to prune, as a share of the planned epochs."
            )
        self.amount, self.at = amount, at
        self.at_epoch: int | None = None
        self.report: dict[str, Any] = {}
        self._inputs: torch.Tensor | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if not isinstance(pl_module, PrunesChannels):
            raise ConfigError(
                f"callbacks.channel_pruning: {type(pl_module).__name__} cannot remove channels (no prune_channels): "
                "drop channel_pruning from callbacks for this model."
            )
        if trainer.world_size > 1:
            raise ConfigError(
                "callbacks.channel_pruning runs on one device: the distributed wrapper keeps the unpruned "
                "parameters. Use strategy=auto with one device."
            )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epochs = planned_epochs(trainer)
        if epochs < 2:
            raise ConfigError(
                f"callbacks.channel_pruning needs at least 2 epochs (train, prune, fine-tune); this run plans "
                f"{epochs}: raise trainer.max_epochs."
            )
        self.at_epoch = min(max(1, round(self.at * epochs)), epochs - 1)
        self.report = {"at_epoch": self.at_epoch, "amount": self.amount, "applied": False}

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int):
        if self._inputs is None:
            self._inputs = probe.inputs_of(batch)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch != self.at_epoch or self.report.get("applied"):
            return
        network = probe.weights_network(pl_module)
        params_before, flops_before = probe.parameter_count(network), self._step_flops(network)
        pruned = pl_module.prune_channels(self.amount)
        trainer.strategy.setup_optimizers(trainer)  # the new, smaller parameters (and their LR schedulers)
        network = probe.weights_network(pl_module)
        self.report.update(
            applied=True,
            params_before=params_before,
            params_after=probe.parameter_count(network),
            flops_per_step_before=flops_before,
            flops_per_step_after=self._step_flops(network),
            channels_before=pruned["channels_before"],
            channels_after=pruned["channels_after"],
            layers=pruned["layers"],
        )
        _start_ranking_afresh(trainer)

    def run_record(self) -> dict[str, Any]:
        """What run() adds to run.json."""
        return {"channel_pruning": self.report}

    def _step_flops(self, network: nn.Module) -> int | None:
        """FLOPs of a forward and backward pass of `network` on the kept inputs; no gradient is stored
        and the random state (dropout, masks) is the same before and after."""
        if self._inputs is None:
            return None
        inputs = self._inputs.to(next(network.parameters()).device)
        params = [p for p in network.parameters() if p.requires_grad]
        devices = [inputs.device] if inputs.is_cuda else []
        with torch.random.fork_rng(devices=devices), FlopCounterMode(display=False) as counter:
            outputs = network(inputs)
            torch.autograd.grad(outputs.float().sum(), params, allow_unused=True)
        return counter.get_total_flops()


def _start_ranking_afresh(trainer: L.Trainer) -> None:
    """The checkpoints' and early stopping's best scores belong to the unpruned network."""
    for callback in trainer.callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.monitor:
            callback.best_k_models, callback.best_model_path, callback.best_model_score = {}, "", None
            callback.kth_best_model_path = ""
            callback.kth_value = torch.tensor(torch.inf if callback.mode == "min" else -torch.inf)
            if hasattr(callback, "metrics_of"):  # MonitoredCheckpoint: the metrics of those checkpoints
                callback.metrics_of = {}
        elif isinstance(callback, EarlyStopping):
            callback.wait_count = 0
            callback.best_score = torch.tensor(torch.inf if callback.monitor_op == torch.lt else -torch.inf)
