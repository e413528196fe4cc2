"""The six health component scores from per-epoch histories, and their weighted overall score.

Every score is clamped to [0, 1] and higher means healthier. A score that cannot be measured (too short a
history, nothing to measure) is None, not a number: the seed scored it a neutral 0.5, which the overall
score then averaged in as if measured. The overall score is the weighted mean of the measured components.
Formulas follow the seed system's src/health_analyzer.py (calculate_comprehensive_health, _calculate_*)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from lightsweep.errors import ConfigError

WEIGHT_SUM_TOLERANCE = 1e-6

DEFAULT_WEIGHTS: dict[str, float] = {
    "neuron_utilization": 0.25,
    "parameter_efficiency": 0.15,
    "training_stability": 0.20,
    "gradient_health": 0.15,
    "convergence_quality": 0.15,
    "accuracy_consistency": 0.10,
}
COMPONENTS: tuple[str, ...] = tuple(DEFAULT_WEIGHTS)

# A component below its threshold earns a recommendation (seed's _generate_health_recommendations).
RECOMMEND_BELOW: dict[str, float] = {
    "neuron_utilization": 0.7,
    "parameter_efficiency": 0.6,
    "training_stability": 0.6,
    "gradient_health": 0.6,
    "convergence_quality": 0.7,
    "accuracy_consistency": 0.7,
}
# Histories shorter than this (epochs) leave a component unmeasured (None): it earns no advice.
MIN_HISTORY: dict[str, int] = {"training_stability": 3, "convergence_quality": 3, "accuracy_consistency": 5}
CRITICAL_NEURON_UTILIZATION = 0.4
URGENT_OVERALL = 0.5
OPTIMAL_OVERALL = 0.7

ADVICE: dict[str, str] = {
    "neuron_utilization": "Many units are dead: lower the learning rate, use leaky_relu/gelu, or check initialization.",
    "parameter_efficiency": "Accuracy is low for the parameter count: try fewer filters, units or layers.",
    "training_stability": "Training loss is noisy or not falling: lower the learning rate or increase the batch size.",
    "gradient_health": "Some layers have vanishing, exploding or dead gradients: add normalization or clipping.",
    "convergence_quality": "Accuracy converges poorly: train for more epochs or tune the learning rate schedule.",
    "accuracy_consistency": "Accuracy swings between epochs: lower the learning rate or add regularization.",
}


def _clamp(value: float) -> float:
    # NaN comes from a diverged run; that is the least healthy outcome, not a neutral one.
    if math.isnan(value):
        return 0.0
    return max(0.0, min(1.0, float(value)))


def training_stability(train_loss: Sequence[float]) -> float | None:
    """0.5*trend + 0.2*smooth + 0.3*recent over the training loss L (None with < 3 epochs).

    trend = clamp(-(L[-1] - L[0]) / max(|L[0]|, 1e-6)), the relative decrease;
    smooth = 1 / (1 + 3*MAD(diff(L))), MAD = median |x - median(x)|;
    recent = clamp(0.5 - (L[-1] - L[-5])) with >= 5 epochs, else 0.5 (the seed's midpoint)."""
    loss = np.asarray(train_loss, dtype=float)
    if loss.size < MIN_HISTORY["training_stability"]:
        return None
    trend = _clamp(-(loss[-1] - loss[0]) / max(abs(loss[0]), 1e-6))
    steps = np.diff(loss)
    mad = float(np.median(np.abs(steps - np.median(steps))))
    smooth = 1.0 / (1.0 + 3.0 * mad)
    recent = _clamp(0.5 - (loss[-1] - loss[-5])) if loss.size >= 5 else 0.5
    return _clamp(0.5 * trend + 0.2 * smooth + 0.3 * recent)


def convergence_quality(accuracy: Sequence[float]) -> float | None:
    """0.6*final + 0.3*improve + 0.1*final_stab over the accuracy A (None with < 3 epochs).

    final = A[-1]; improve = clamp(5*(A[-1] - A[0]));
    final_stab = 1 / (1 + 20*var(A[-5:])) (population variance) with >= 5 epochs, else 0.5."""
    acc = np.asarray(accuracy, dtype=float)
    if acc.size < MIN_HISTORY["convergence_quality"]:
        return None
    improve = _clamp(5.0 * (acc[-1] - acc[0]))
    final_stab = 1.0 / (1.0 + 20.0 * float(np.var(acc[-5:]))) if acc.size >= 5 else 0.5
    return _clamp(0.6 * acc[-1] + 0.3 * improve + 0.1 * final_stab)


def accuracy_consistency(accuracy: Sequence[float]) -> float | None:
    """1 / (1 + 10*cv), cv = std(A)/mean(A) across epochs (population std); 0 if the mean is 0,
    None with < 5 epochs. This is epoch-to-epoch variation, not cross-validation."""
    acc = np.asarray(accuracy, dtype=float)
    if acc.size < MIN_HISTORY["accuracy_consistency"]:
        return None
    mean = float(np.mean(acc))
    if mean == 0.0:
        return 0.0
    return _clamp(1.0 / (1.0 + 10.0 * float(np.std(acc)) / mean))


def parameter_efficiency(best_accuracy: float, parameter_count: int) -> float:
    """clamp(best_accuracy * scale), k = parameters/1000: scale = 1 for k <= 100,
    else 1 / (1 + log10(k/100)) (1M params -> 0.5, 10M -> 1/3)."""
    thousands = parameter_count / 1000.0
    scale = 1.0 if thousands <= 100 else 1.0 / (1.0 + math.log10(thousands / 100))
    return _clamp(best_accuracy * scale)


def neuron_utilization(dead_ratio: float) -> float:
    """1 - dead_ratio (share of dead units), clamped."""
    return _clamp(1.0 - dead_ratio)


def gradient_health(layer_statuses: Mapping[str, str]) -> float | None:
    """Share of layers whose real-gradient status (diagnostics.classify_gradient) is "healthy";
    None when no layer was analysed."""
    if not layer_statuses:
        return None
    healthy = sum(status == "healthy" for status in layer_statuses.values())
    return healthy / len(layer_statuses)


def validate_weights(weights: Mapping[str, float]) -> None:
    """Refuse weights unless they name exactly the six components, are >= 0 and sum to 1."""
    names = ", ".join(COMPONENTS)
    if set(weights) != set(COMPONENTS):
        missing = sorted(set(COMPONENTS) - set(weights))
        unknown = sorted(set(weights) - set(COMPONENTS))
        raise ConfigError(
            f"health weights must name exactly: {names} (missing: {missing or 'none'}, unknown: {unknown or 'none'})."
        )
    negative = sorted(name for name, weight in weights.items() if weight < 0)
    if negative:
        raise ConfigError(f"health weights must be >= 0; negative: {', '.join(negative)}.")
    total = sum(weights.values())
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise ConfigError(f"health weights for {names} must sum to 1; they sum to {total:.6g}.")


def overall_weights(components: Mapping[str, float | None], weights: Mapping[str, float]) -> dict[str, float]:
    """The caller's weights of the measured components (score not None), rescaled to sum to 1: what the
    overall score is made of. Empty when no measured component has weight."""
    validate_weights(weights)
    measured = {name: weights[name] for name in COMPONENTS if components[name] is not None}
    total = sum(measured.values())
    return {name: weight / total for name, weight in measured.items()} if total > 0 else {}


def overall_health(components: Mapping[str, float | None], weights: Mapping[str, float]) -> float | None:
    """clamp(sum of w[c] * components[c]) over the measured components c, w = overall_weights (the
    caller's weights re-scaled over what was measured); None when nothing weighted was measured."""
    used = overall_weights(components, weights)
    return _clamp(sum(weight * components[name] for name, weight in used.items())) if used else None


def recommendations(components: Mapping[str, float | None], overall: float | None) -> list[str]:
    """Plain advice for every measured component under its threshold, then a verdict on the overall
    score. Unmeasured components (None) earn no advice; when some are unmeasured the verdict says which
    part of the health it covers."""
    advice = []
    for name in COMPONENTS:
        score = components[name]
        if score is None or score >= RECOMMEND_BELOW[name]:
            continue
        critical = name == "neuron_utilization" and score < CRITICAL_NEURON_UTILIZATION
        prefix = "CRITICAL: " if critical else ""
        advice.append(f"{prefix}{name} is {score:.2f}. {ADVICE[name]}")
    if overall is None:
        return advice
    measured = sum(components[name] is not None for name in COMPONENTS)
    scope = "" if measured == len(COMPONENTS) else f" ({measured} of {len(COMPONENTS)} components measured)"
    if overall < URGENT_OVERALL:
        advice.append(
            f"URGENT: overall health{scope} is {overall:.2f}; fix the issues above before trusting this model."
        )
    elif overall < OPTIMAL_OVERALL:
        advice.append(f"Overall health{scope} is {overall:.2f}, below optimal; address the issues above.")
    return advice
