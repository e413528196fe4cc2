"""HealthMonitor: model health measured during training, summarised into run.json's "health".

Per epoch, the loss/accuracy curves. At up to `max_probes` evenly spread epochs (every epoch in short
runs; the last epoch always): real per-layer gradient magnitudes (the epoch's first batch, before
clipping), the shares of dead and saturated weights, and dead units from post-activation outputs on a
fixed probe batch (forward hooks; see callbacks.probe), logged under health/. At the end: the six
component scores (None where nothing could be measured), the overall score from the configured weights
re-scaled over the measured components, recommendations and overfitting.

A model can say which of its weights no input reaches (TimeHUT: dilated taps past a short series read
only padding): `unreachable_weights(input_shape) -> {parameter name: bool mask}` and
`overrides_for(input_shape) -> [config overrides that avoid them]`. Those weights get exactly zero
gradient by construction, so they are left out of the gradient status (judged on the inputs of that very
step) and reported as structurally unused, with their share of the parameters, instead of as dead.
The maths lives in lightsweep.health (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch

from lightsweep.callbacks import probe
from lightsweep.callbacks.timing import planned_epochs
from lightsweep.contracts import KnowsUnreachableWeights
from lightsweep.health import diagnostics, scores

CURVES = ("train/loss", "val/loss", "train/acc", "val/acc")


class HealthMonitor(L.Callback):
    def __init__(self, weights: Mapping[str, float] | None = None, probe_size: int = 64, max_probes: int = 20) -> None:
        self.weights = dict(weights or scores.DEFAULT_WEIGHTS)
        scores.validate_weights(self.weights)
        self.probe_size, self.max_probes = probe_size, max_probes
        self.curves: dict[str, list[float]] = {name: [] for name in CURVES}
        self.gradient_layers: dict[str, str] = {}
        self.gradient_mean_abs: dict[str, float] = {}
        self.dead_ratios: list[float] = []
        self.dead_by_layer: dict[str, float] = {}
        self.report: dict[str, Any] = {}
        self._probe: torch.Tensor | None = None
        self._probe_every = 1
        self._probed_epoch = -1
        self._grab_gradients = False
        self._step_input_shapes: list[torch.Size] = []
        self._input_hook: torch.utils.hooks.RemovableHandle | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._probe_every = max(1, math.ceil(planned_epochs(trainer) / max(1, self.max_probes)))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch > 0:
            self._record_curves(trainer)  # the module logs its epoch metrics after callbacks' epoch end

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if batch_idx == 0:  # read at the epoch's first optimiser step (later, when batches accumulate)
            self._grab_gradients = self._scheduled(trainer)
        if self._probe is None:
            self._probe = probe.inputs_of(batch, self.probe_size)
        if self._grab_gradients and isinstance(pl_module, KnowsUnreachableWeights) and self._input_hook is None:
            shapes = self._step_input_shapes = []
            self._input_hook = probe.network(pl_module).register_forward_pre_hook(
                lambda _module, inputs: shapes.append(inputs[0].shape)
            )

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if not self._grab_gradients:
            return
        self._grab_gradients = False
        unreachable = self._unreachable_in_step(pl_module)
        layers, means = {}, {}
        for name, module in pl_module.named_modules():
            grads = [
                _reachable(p.grad, unreachable.get(f"{name}.{key}" if name else key)).flatten()
                for key, p in module.named_parameters(recurse=False)
                if p.grad is not None
            ]
            if grads:
                layers[name], stats = diagnostics.classify_gradient(torch.cat(grads).abs())
                means[name] = stats["mean"]
        self.gradient_layers, self.gradient_mean_abs = layers, means

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._scheduled(trainer):
            return
        weights = diagnostics.weight_statistics(torch.cat([p.detach().flatten() for p in _trained(pl_module)]))
        logged = {
            "health/dead_weight_share": weights["dead_share"],
            "health/saturated_weight_share": weights["saturated_share"],
        }
        if self.gradient_layers:
            logged["health/gradient_health"] = scores.gradient_health(self.gradient_layers)
        if self._probe_dead_units(pl_module, trainer):
            logged["health/dead_unit_ratio"] = self.dead_ratios[-1]
        pl_module.log_dict(logged)  # one call: each self.log costs Lightning ~0.7 ms

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record_curves(trainer)
        if self._probed_epoch != trainer.current_epoch - 1:  # the final state must be probed
            self._probe_dead_units(pl_module, trainer)
        accuracy = self.curves["val/acc"] or self.curves["train/acc"]  # TimeHUT: none while fitting
        parameters = sum(p.numel() for p in _trained(pl_module))
        dead = self.dead_ratios[-1] if self.dead_ratios else None
        components = {
            "neuron_utilization": scores.neuron_utilization(dead) if dead is not None else None,
            "parameter_efficiency": scores.parameter_efficiency(max(accuracy), parameters) if accuracy else None,
            "training_stability": scores.training_stability(self.curves["train/loss"]),
            "gradient_health": scores.gradient_health(self.gradient_layers),
            "convergence_quality": scores.convergence_quality(accuracy),
            "accuracy_consistency": scores.accuracy_consistency(accuracy),
        }
        overall = scores.overall_health(components, self.weights)
        unused = self._structurally_unused(pl_module)
        self.report = {
            "components": components,
            "weights": self.weights,
            "overall": overall,
            "overall_weights": scores.overall_weights(components, self.weights),  # re-scaled over the measured
            "unmeasured": [name for name, score in components.items() if score is None],
            "recommendations": scores.recommendations(components, overall) + _unused_advice(unused),
            "structurally_unused": unused,
            "gradient_status": diagnostics.overall_gradient_status(self.gradient_layers.values())
            if self.gradient_layers
            else None,
            "gradient_layers": self.gradient_layers,
            "gradient_mean_abs": self.gradient_mean_abs,
            "dead_unit_ratio": dead,
            "dead_units_by_layer": self.dead_by_layer,
            "weights_statistics": _weight_statistics(pl_module),
            "overfitting": self._overfitting(),
            "curves": self.curves,
        }

    def run_record(self) -> dict[str, Any]:
        """What run() adds to run.json."""
        return {"health": self.report}

    def _scheduled(self, trainer: L.Trainer) -> bool:
        return trainer.current_epoch % self._probe_every == 0

    def _unreachable_in_step(self, pl_module: L.LightningModule) -> dict[str, torch.Tensor]:
        """Masks of the weights that none of this step's network inputs could reach (see the module doc)."""
        if self._input_hook is None:
            return {}
        self._input_hook.remove()
        self._input_hook = None
        masks: dict[str, torch.Tensor] = {}
        for index, shape in enumerate(self._step_input_shapes):  # unreachable in every call of the step
            found = pl_module.unreachable_weights(shape)
            masks = found if index == 0 else {n: m & found[n] for n, m in masks.items() if n in found}
        return masks

    def _structurally_unused(self, pl_module: L.LightningModule) -> dict[str, Any] | None:
        """The weights that training inputs (shaped like the probe batch) can never reach, or None when the
        model does not say (or has none)."""
        if not isinstance(pl_module, KnowsUnreachableWeights) or self._probe is None:
            return None
        shape = self._probe.shape
        unused = diagnostics.structurally_unused(
            pl_module.unreachable_weights(shape), sum(p.numel() for p in _trained(pl_module))
        )
        if not unused["parameters"]:
            return None
        return {**unused, "input_shape": list(shape[1:]), "fix": pl_module.overrides_for(shape)}

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

    def _probe_dead_units(self, pl_module: L.LightningModule, trainer: L.Trainer) -> bool:
        """Dead units at every watched site on the probe batch; False when nothing can be probed."""
        net = probe.network(pl_module)
        if self._probe is None or net is None:
            return False
        masks: dict[str, torch.Tensor] = {}

        def capture(name: str, output: torch.Tensor, dim: int) -> None:
            masks[name] = diagnostics.dead_units(output, unit_dim=dim)

        with probe.unit_outputs(net, capture) as sites:
            if not sites:
                return False
            probe.run(net, self._probe.to(pl_module.device))
        self.dead_by_layer = {name: mask.double().mean().item() for name, mask in masks.items()}
        self.dead_ratios.append(diagnostics.dead_ratio(masks))
        self._probed_epoch = trainer.current_epoch
        return True


def _weight_statistics(pl_module: L.LightningModule) -> dict[str, dict[str, float]]:
    """diagnostics.weight_statistics of every weight and bias tensor of the probed network."""
    net = probe.weights_network(pl_module)
    return {name: diagnostics.weight_statistics(p) for name, p in net.named_parameters() if p.numel() > 1}


def _trained(pl_module: L.LightningModule) -> list[torch.nn.Parameter]:
    """The trained parameters of the probed network (TimeHUT: its encoder, not the averaged copy)."""
    return [p for p in probe.weights_network(pl_module).parameters() if p.requires_grad]


def _reachable(grad: torch.Tensor, unreachable: torch.Tensor | None) -> torch.Tensor:
    return grad if unreachable is None else grad[~unreachable]


def _unused_advice(unused: dict[str, Any] | None) -> list[str]:
    if unused is None:
        return []
    fix = f" Use {' '.join(unused['fix'])}: no layer then reaches past the input." if unused["fix"] else ""
    return [
        f"{unused['parameter_share']:.0%} of the parameters ({unused['parameters']:,}) never see data: "
        f"for inputs of shape {unused['input_shape']} they read only padding "
        f"({len(unused['weights'])} weight tensors), so they get no gradient by construction; "
        f"this is the model's shape for this input size, not a training problem.{fix}"
    ]
