"""Per-layer diagnostics: gradient status, dead units, weight statistics and overfitting.

Thresholds are the seed system's (src/plot_creation/gradient_flow.py, weights_bias.py, training_history.py)
except where noted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch

DEAD_GRADIENT = 1e-8  # |g| below this counts as a dead gradient entry
DEAD_GRADIENT_SHARE = 0.5  # layer is "dead" when more than this share of |g| is dead
VANISHING_MEAN = 1e-6  # mean |g| below this: vanishing
EXPLODING_MEAN = 1.0  # mean |g| above this: exploding

# Worst first: exploding gradients diverge the whole run within steps, vanishing ones stall
# every layer below them, dead entries only silence the units they belong to.
GRADIENT_PRIORITY = ("exploding", "vanishing", "dead")
GRADIENT_STATUSES = (*GRADIENT_PRIORITY, "healthy")

DEAD_ACTIVATION = 1e-8  # a unit whose largest post-activation output is at most this never fires
CONSTANT_ACTIVATION_STD = 1e-8  # a unit whose output varies less than this carries no signal

DEAD_WEIGHT = 1e-6  # |w| below this counts as a dead weight
SATURATED_WEIGHT = 3.0  # |w| above this counts as a saturated weight

SEVERE_LOSS_GAP, SEVERE_ACC_GAP = 0.3, 0.10
MILD_LOSS_GAP, MILD_ACC_GAP = 0.1, 0.05
ONSET_RISING_EPOCHS = 2  # val_loss must rise this many epochs in a row (train_loss falling) to mark onset


def classify_gradient(grad_abs_values: torch.Tensor) -> tuple[str, dict[str, float]]:
    """Status of one layer from its gradient magnitudes, checked in order:
    dead (> 50% of |g| < 1e-8) -> vanishing (mean < 1e-6) -> exploding (mean > 1.0) -> healthy."""
    if grad_abs_values.numel() == 0:
        raise ValueError("classify_gradient needs at least one gradient value.")
    magnitudes = grad_abs_values.detach().abs().double().flatten()
    stats = {
        "mean": magnitudes.mean().item(),
        "std": magnitudes.std(unbiased=False).item(),
        "max": magnitudes.max().item(),
        "dead_share": (magnitudes < DEAD_GRADIENT).double().mean().item(),
    }
    if stats["dead_share"] > DEAD_GRADIENT_SHARE:
        status = "dead"
    elif stats["mean"] < VANISHING_MEAN:
        status = "vanishing"
    elif stats["mean"] > EXPLODING_MEAN:
        status = "exploding"
    else:
        status = "healthy"
    return status, stats


def overall_gradient_status(statuses: Iterable[str]) -> str:
    """ "healthy" if every layer is healthy, else the worst status present (exploding > vanishing > dead)."""
    present = set(statuses)
    unknown = present - set(GRADIENT_STATUSES)
    if unknown:
        raise ValueError(f"unknown gradient status {sorted(unknown)}; expected one of {GRADIENT_STATUSES}.")
    return next((status for status in GRADIENT_PRIORITY if status in present), "healthy")


def dead_units(activations: torch.Tensor, unit_dim: int) -> torch.Tensor:
    """Bool per unit along unit_dim (conv channel, linear/LSTM feature) for a probe batch of
    post-activation outputs: dead when its max over all other positions is <= 1e-8, or its std
    over them is < 1e-8 (it never varies, so it carries no information)."""
    per_unit = activations.detach().movedim(unit_dim, 0).flatten(1).double()
    never_fires = per_unit.max(dim=1).values <= DEAD_ACTIVATION
    constant = per_unit.std(dim=1, unbiased=False) < CONSTANT_ACTIVATION_STD
    return never_fires | constant


def dead_ratio(per_layer: Mapping[str, torch.Tensor]) -> float:
    """Dead units / all units over every layer's dead_units mask (0.0 when there are no units)."""
    total = sum(mask.numel() for mask in per_layer.values())
    dead = sum(int(mask.sum().item()) for mask in per_layer.values())
    return dead / total if total else 0.0


def structurally_unused(unreachable: Mapping[str, torch.Tensor], total_parameters: int) -> dict:
    """From a model's masks of the weights no input reaches (parameter name -> bool mask): how many they
    are, their share of all `total_parameters`, and each masked tensor's unreachable share."""
    count = sum(int(mask.sum().item()) for mask in unreachable.values())
    return {
        "parameters": count,
        "parameter_share": count / total_parameters if total_parameters else 0.0,
        "weights": {name: mask.double().mean().item() for name, mask in unreachable.items() if mask.any()},
    }


def weight_statistics(weight: torch.Tensor) -> dict[str, float]:
    """Mean, std, min, max, dead share (|w| < 1e-6) and saturated share (|w| > 3.0) of a weight tensor."""
    values = weight.detach().double().flatten()
    magnitudes = values.abs()
    return {
        "mean": values.mean().item(),
        "std": values.std(unbiased=False).item(),
        "min": values.min().item(),
        "max": values.max().item(),
        "dead_share": (magnitudes < DEAD_WEIGHT).double().mean().item(),
        "saturated_share": (magnitudes > SATURATED_WEIGHT).double().mean().item(),
    }


def overfitting(
    train_loss: Sequence[float],
    val_loss: Sequence[float],
    train_acc: Sequence[float],
    val_acc: Sequence[float],
) -> tuple[str, int | None]:
    """Severity on the final epoch and the 0-based onset epoch.

    loss_gap = val_loss - train_loss and acc_gap = train_acc - val_acc (positive = overfitting;
    the seed had the loss sign inverted). severe: loss_gap > 0.3 or acc_gap > 0.10;
    mild: loss_gap > 0.1 or acc_gap > 0.05; else none. Onset: the first epoch e after which
    val_loss rises for 2 consecutive epochs while train_loss keeps falling (None if never)."""
    loss_gap = val_loss[-1] - train_loss[-1]
    acc_gap = train_acc[-1] - val_acc[-1]
    if loss_gap > SEVERE_LOSS_GAP or acc_gap > SEVERE_ACC_GAP:
        severity = "severe"
    elif loss_gap > MILD_LOSS_GAP or acc_gap > MILD_ACC_GAP:
        severity = "mild"
    else:
        severity = "none"
    return severity, _overfitting_onset(train_loss, val_loss)


def _overfitting_onset(train_loss: Sequence[float], val_loss: Sequence[float]) -> int | None:
    for epoch in range(len(val_loss) - ONSET_RISING_EPOCHS):
        window = range(epoch, epoch + ONSET_RISING_EPOCHS)
        val_rises = all(val_loss[e + 1] > val_loss[e] for e in window)
        train_falls = all(train_loss[e + 1] < train_loss[e] for e in window)
        if val_rises and train_falls:
            return epoch
    return None
