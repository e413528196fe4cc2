"""HealthMonitor: model health measured during training, summarised into run.json's "health".

Per epoch: real per-layer gradient magnitudes (first batch of the epoch, before clipping), dead units
from post-activation outputs on a fixed probe batch (forward hooks), and the loss/accuracy curves.
At the end: the six component scores, the overall score from the configured weights, recommendations
and overfitting. The maths lives in lightsweep.health (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning as L
import torch
from torch import nn

from lightsweep.health import diagnostics, scores

ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.SiLU, nn.GELU, nn.ELU, nn.Tanh, nn.Sigmoid)
CURVES = ("train/loss", "val/loss", "train/acc", "val/acc")


class HealthMonitor(L.Callback):
    def __init__(self, weights: Mapping[str, float] | None = None, probe_size: int = 64) -> None:
        self.weights = dict(weights or scores.DEFAULT_WEIGHTS)
        scores.validate_weights(self.weights)
        self.probe_size = probe_size
        self.curves: dict[str, list[float]] = {name: [] for name in CURVES}
        self.gradient_layers: dict[str, str] = {}
        self.dead_ratios: list[float] = []
        self.report: dict[str, Any] = {}
        self._probe: torch.Tensor | None = None
        self._grab_gradients = False

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch > 0:
            self._record_curves(trainer)  # the module logs its epoch metrics after callbacks' epoch end

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._grab_gradients = batch_idx == 0
        if self._probe is None:
            self._probe = batch[0][: self.probe_size].detach().clone()

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if not self._grab_gradients:
            return
        self._grab_gradients = False
        layers = {}
        for name, module in pl_module.named_modules():
            grads = [p.grad.flatten() for p in module.parameters(recurse=False) if p.grad is not None]
            if grads:
                layers[name] = diagnostics.classify_gradient(torch.cat(grads).abs())[0]
        self.gradient_layers = layers
        pl_module.log("health/gradient_health", scores.gradient_health(layers), on_step=False, on_epoch=True)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        ratio = self._dead_ratio(pl_module)
        if ratio is not None:
            self.dead_ratios.append(ratio)
            pl_module.log("health/dead_unit_ratio", ratio)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record_curves(trainer)
        accuracy = self.curves["val/acc"] or self.curves["train/acc"]
        parameters = sum(p.numel() for p in pl_module.parameters() if p.requires_grad)
        dead = self.dead_ratios[-1] if self.dead_ratios else None
        components = {
            "neuron_utilization": scores.neuron_utilization(dead) if dead is not None else scores.NEUTRAL,
            "parameter_efficiency": scores.parameter_efficiency(max(accuracy, default=0.0), parameters),
            "training_stability": scores.training_stability(self.curves["train/loss"]),
            "gradient_health": scores.gradient_health(self.gradient_layers),
            "convergence_quality": scores.convergence_quality(accuracy),
            "accuracy_consistency": scores.accuracy_consistency(accuracy),
        }
        overall = scores.overall_health(components, self.weights)
        self.report = {
            "components": components,
            "weights": self.weights,
            "overall": overall,
            "recommendations": scores.recommendations(components, overall),
            "gradient_status": diagnostics.overall_gradient_status(self.gradient_layers.values())
            if self.gradient_layers else None,
            "gradient_layers": self.gradient_layers,
            "dead_unit_ratio": dead,
            "overfitting": self._overfitting(),
            "curves": self.curves,
        }

    def run_record(self) -> dict[str, Any]:
        """What run() adds to run.json."""
        return {"health": self.report}

    def _record_curves(self, trainer: L.Trainer) -> None:
        for name in CURVES:
            if name in trainer.callback_metrics:
                self.curves[name].append(float(trainer.callback_metrics[name]))

    def _overfitting(self) -> dict[str, Any] | None:
        series = [self.curves[name] for name in ("train/loss", "val/loss", "train/acc", "val/acc")]
        if not all(series) or len({len(s) for s in series}) != 1:
            return None
        severity, onset = diagnostics.overfitting(*series)
        return {"severity": severity, "onset_epoch": onset}

    def _dead_ratio(self, pl_module: L.LightningModule) -> float | None:
        """Dead units after each activation module (and LSTM outputs) on the probe batch; None when
        the model has no such modules (e.g. functional activations) or no forward()."""
        watched = [(n, m) for n, m in pl_module.named_modules() if isinstance(m, (*ACTIVATIONS, nn.LSTM))]
        if self._probe is None or not watched or type(pl_module).forward is L.LightningModule.forward:
            return None
        masks: dict[str, torch.Tensor] = {}

        def capture(name: str, module: nn.Module, _inputs: Any, output: Any) -> None:
            out = output[0] if isinstance(output, tuple) else output
            masks[name] = diagnostics.dead_units(out, unit_dim=-1 if isinstance(module, nn.LSTM) else 1)

        hooks = [m.register_forward_hook(lambda mod, i, o, n=n: capture(n, mod, i, o)) for n, m in watched]
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad():
                pl_module(self._probe.to(pl_module.device))
        finally:
            pl_module.train(was_training)
            for hook in hooks:
                hook.remove()
        return diagnostics.dead_ratio(masks)
