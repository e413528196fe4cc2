"""TimeHUT's loss: hierarchical instance/temporal contrastive terms with a temperature, plus angular-margin (AMC)
terms, over a max-pooled time pyramid (TS2Vec and TimeHUT: models/losses.py).

Reference quirks are options, defaulting to the reference behaviour:
* temporal_tau="after_softmax": the temporal term's log-softmax uses unscaled logits and the loss is
  divided by tau afterwards (the instance term divides logits by tau, a true temperature);
  "before_softmax" treats both branches alike.
* last_level_amc="temporal": the final length-1 level (instance term only) weighs its AMC term with
  lambda_T; "instance" uses lambda_I there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

# The reference clamps cosines to 1 - 1e-10, which is 1.0 in float32 (arccos' gradient is infinite there).
_COS_LIMIT = 1.0 - 1e-7
_AMC_SCALE = 25.0  # the reference's hard-coded divisor


@dataclass(frozen=True)
class LossSettings:
    alpha: float = 0.5  # weight of the instance term (1 - alpha: temporal)
    temporal_unit: int = 0  # pyramid levels below this skip the temporal term
    amc_instance: float = 0.0  # lambda_I
    amc_temporal: float = 0.0  # lambda_T
    amc_margin: float = 0.5  # m, radians
    temporal_tau: Literal["after_softmax", "before_softmax"] = "after_softmax"
    last_level_amc: Literal["temporal", "instance"] = "temporal"


def _pair_nll(vectors: torch.Tensor, tau: float) -> torch.Tensor:
    """vectors (S, 2M, C): the two views of M items per slice. Mean over slices and anchors of
    -log softmax(dot / tau)[other view of the same item], the anchor itself excluded."""
    slices, count, _ = vectors.shape
    half = count // 2
    logits = torch.matmul(vectors, vectors.transpose(1, 2)) / tau
    self_pairs = torch.eye(count, dtype=torch.bool, device=vectors.device)
    logits = logits.masked_fill(self_pairs, float("-inf"))
    index = torch.arange(count, device=vectors.device)
    positive = (index + half) % count
    return F.cross_entropy(logits.reshape(-1, count), positive.repeat(slices))


def instance_loss(z1: torch.Tensor, z2: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """Per timestamp, each series against the other series (both views) at that timestamp."""
    if z1.size(0) == 1:
        return z1.new_zeros(())
    return _pair_nll(torch.cat([z1, z2], dim=0).transpose(0, 1), tau)


def temporal_loss(z1: torch.Tensor, z2: torch.Tensor, tau: float = 1.0, tau_after: bool = True) -> torch.Tensor:
    """Per series, each timestamp against the other timestamps (both views) of that series."""
    if z1.size(1) == 1:
        return z1.new_zeros(())
    vectors = torch.cat([z1, z2], dim=1)
    return _pair_nll(vectors, 1.0) / tau if tau_after else _pair_nll(vectors, tau)


def amc(vectors: torch.Tensor, margin: float) -> torch.Tensor:
    """Angular margin term on (S, 2M, C): pull each item's two views to angle 0, push every other pair
    at least `margin` radians apart. A sum over slices and pairs (not a mean), divided by 25."""
    count = vectors.size(1)
    half = count // 2
    unit = F.normalize(vectors, dim=-1)
    angles = torch.arccos(torch.matmul(unit, unit.transpose(1, 2)).clamp(-_COS_LIMIT, _COS_LIMIT))
    index = torch.arange(count, device=vectors.device)
    positive = torch.zeros(count, count, dtype=torch.bool, device=vectors.device)
    positive[index, (index + half) % count] = True
    negative = ~positive & ~torch.eye(count, dtype=torch.bool, device=vectors.device)
    pulled = (angles.square() * positive).sum()
    pushed = (F.relu(margin - angles).square() * negative).sum()
    return (pulled + pushed) / _AMC_SCALE


def _instance_groups(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    return torch.cat([z1, z2], dim=0).transpose(0, 1)  # (T, 2B, C)


def _temporal_groups(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    return torch.cat([z1, z2], dim=1)  # (B, 2T, C)


def hierarchical_loss(z1: torch.Tensor, z2: torch.Tensor, tau: float, settings: LossSettings) -> torch.Tensor:
    """Mean over pyramid levels (lengths T, T//2, ..., 1) of the weighted instance/temporal terms."""
    s = settings
    total = z1.new_zeros(())
    levels = 0
    while z1.size(1) > 1:
        if s.alpha != 0:
            term = instance_loss(z1, z2, tau)
            if s.amc_instance > 0:
                term = term + s.amc_instance * amc(_instance_groups(z1, z2), s.amc_margin)
            total = total + s.alpha * term
        if levels >= s.temporal_unit and s.alpha != 1:
            term = temporal_loss(z1, z2, tau, tau_after=s.temporal_tau == "after_softmax")
            if s.amc_temporal > 0:
                term = term + s.amc_temporal * amc(_temporal_groups(z1, z2), s.amc_margin)
            total = total + (1 - s.alpha) * term
        levels += 1
        z1 = F.max_pool1d(z1.transpose(1, 2), kernel_size=2).transpose(1, 2)
        z2 = F.max_pool1d(z2.transpose(1, 2), kernel_size=2).transpose(1, 2)
    if z1.size(1) == 1:
        if s.alpha != 0:
            weight = s.amc_temporal if s.last_level_amc == "temporal" else s.amc_instance
            term = instance_loss(z1, z2, tau)
            if weight > 0:
                term = term + weight * amc(_instance_groups(z1, z2), s.amc_margin)
            total = total + s.alpha * term
        levels += 1
    return total / levels
