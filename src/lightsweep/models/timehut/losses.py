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

import functools
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


def hierarchical_loss_by_level(z1: torch.Tensor, z2: torch.Tensor, tau: float, settings: LossSettings) -> torch.Tensor:
    """Mean over pyramid levels (lengths T, T//2, ..., 1) of the weighted instance/temporal terms, one level
    at a time as the reference writes it. The slow path: `hierarchical_loss` computes the same sum in one
    pass and is checked against this one."""
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


def hierarchical_loss(z1: torch.Tensor, z2: torch.Tensor, tau: float, settings: LossSettings) -> torch.Tensor:
    """`hierarchical_loss_by_level` in one pass over every pyramid level at once (a few dozen tensor
    operations instead of ~45 per level; the same terms and weights, summed in another order).

    The levels' vectors are laid side by side: instance slices (every level's timestamps, 2B vectors each)
    in one (S, 2B, C) stack, and per series all temporal levels' 2*l_k vectors in one (B, N, C) row whose
    Gram matrix is masked to its per-level blocks. Logits come from one matrix product per branch; the
    AMC cosines are that product divided by the norms (the reference normalises first: the same value);
    positives are the product's diagonal at offset B (instance) / S_T (temporal), counted for both rows of
    a pair as the Gram matrix is symmetric. Fixed per (B, T, settings): masks and per-row weights."""
    plan = _plan(z1.size(0), z1.size(1), settings, z1.device, z1.dtype)
    total = z1.new_zeros(())
    levels = [torch.cat([z1, z2]).transpose(1, 2)]  # (2B, C, l_k) per level
    for _ in plan.lengths[1:]:
        levels.append(F.max_pool1d(levels[-1], kernel_size=2))
    pyramid = torch.cat(levels, dim=2).transpose(1, 2)  # (2B, S, C): all levels' timestamps
    if plan.instance is not None:
        total = total + _branch(pyramid.transpose(0, 1), plan.instance, tau, True)
    before = settings.temporal_tau == "before_softmax"
    for (start, end), branch in plan.temporal:
        rows = pyramid[:, start:end].reshape(2, z1.size(0), end - start, -1).transpose(0, 1).flatten(1, 2)
        total = total + _branch(rows, branch, tau, before, after=None if before else tau)
    return total


class _Gram(torch.autograd.Function):
    """x @ x^T per batch, whose gradient is (g + g^T) @ x: one matrix product where autograd's two-operand
    rule makes two."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.bmm(x, x.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return torch.bmm(grad + grad.transpose(1, 2), x)


_NORM_EPS = 1e-12  # F.normalize's
_SPLIT_FROM = 8  # temporal levels of at least this length get a Gram matrix of their own


@dataclass(frozen=True)
class _BranchPlan:
    """One branch over all its levels: vectors (G, N, C), the two views' halves at offset N // 2. Weights are
    per row (G or 1, N) or per pair (G or 1, N * N), signs and the AMC's 1/25 folded in."""

    blocked: torch.Tensor  # (N, N) bool: True where a logit is left out (self, other levels)
    positive: torch.Tensor  # (N,): flat index r * N + (r + N/2) mod N of each row's positive
    nll_weight: torch.Tensor  # (G or 1, N): -weight of each row's log-probability of its positive
    pull: torch.Tensor | None  # (G or 1, N): AMC weight of each row's angle to its positive (squared)
    push: torch.Tensor | None  # (G or 1, N * N): AMC weight of each negative pair's hinge (squared)
    margin: float


@dataclass(frozen=True)
class _Plan:
    lengths: tuple[int, ...]
    instance: _BranchPlan | None
    temporal: tuple[tuple[tuple[int, int], _BranchPlan], ...]  # (pyramid span of its levels' timestamps, plan)


def _branch(
    vectors: torch.Tensor,
    plan: _BranchPlan,
    tau: float,
    scale_logits: bool,
    after: float | None = None,
) -> torch.Tensor:
    """Weighted NLL + AMC sums of one branch; vectors (G, N, C)."""
    groups = vectors.size(0)
    gram = _Gram.apply(vectors.contiguous())  # (a strided batch makes CPU bmm copy slice by slice)
    logits = gram / tau if scale_logits else gram
    # log_softmax, not logsumexp minus the positive logit: the trained softmax is saturated (positive
    # logits of hundreds) and only log_softmax's own backward keeps the gradient's float32 accuracy
    log_p = torch.log_softmax(logits.masked_fill(plan.blocked, float("-inf")), dim=-1)
    total = (log_p.view(groups, -1).index_select(1, plan.positive) * plan.nll_weight).sum()
    if after is not None:
        total = total / after
    if plan.pull is not None:
        # F.normalize's max(norm, eps), from the squared norms on the diagonal (clamped before the square root:
        # no infinite gradient for an all-zero vector)
        norms = gram.diagonal(dim1=1, dim2=2).clamp_min(_NORM_EPS**2).sqrt()
        cosines = gram / (norms[:, :, None] * norms[:, None, :])
        angles = torch.arccos(cosines.clamp(-_COS_LIMIT, _COS_LIMIT)).view(groups, -1)
        pulled = (angles.index_select(1, plan.positive).square() * plan.pull).sum()
        pushed = ((plan.margin - angles).clamp_min(0).square() * plan.push).sum()
        total = total + pulled + pushed
    return total


def _branch_plan(
    rows: int, nll: list[float], amc: list[float], negative: torch.Tensor, margin: float, dtype: torch.dtype
) -> _BranchPlan:
    """nll, amc: per-row weights of a (G or 1) x N layout; negative (G or 1, N, N): which pairs are negatives
    (within a level, neither the row itself nor its positive)."""
    device = negative.device
    width = negative.size(-1)
    index = torch.arange(width, device=device)
    partner = (index + width // 2) % width
    blocked = torch.ones(width, width, dtype=torch.bool, device=device)
    blocked[negative.reshape(-1, width, width).any(0)] = False
    blocked[index, partner] = False
    amc_weight = torch.tensor(amc, dtype=dtype, device=device).reshape(rows, width) / _AMC_SCALE
    any_amc = bool(amc_weight.ne(0).any())
    return _BranchPlan(
        blocked=blocked,
        positive=index * width + partner,
        nll_weight=-torch.tensor(nll, dtype=dtype, device=device).reshape(rows, width),
        pull=amc_weight if any_amc else None,
        push=(amc_weight[:, :, None] * negative.to(dtype)).reshape(rows, -1) if any_amc else None,
        margin=margin,
    )


@functools.lru_cache(maxsize=256)
def _plan(batch: int, length: int, s: LossSettings, device: torch.device, dtype: torch.dtype) -> _Plan:
    if length < 1:
        raise ValueError("hierarchical_loss needs at least one timestamp")
    lengths = [length]
    while lengths[-1] > 1:
        lengths.append(lengths[-1] // 2)
    count = len(lengths)  # the divisor: every level, the length-1 one included
    final = [k == count - 1 and lengths[k] == 1 for k in range(count)]
    amc_of = [
        (s.amc_temporal if s.last_level_amc == "temporal" else s.amc_instance) if final[k] else s.amc_instance
        for k in range(count)
    ]

    instance = None
    if s.alpha != 0:
        nll, amc_rows = [], []
        for k, size in enumerate(lengths):
            weight = s.alpha * amc_of[k] / count if amc_of[k] > 0 else 0.0
            for _ in range(size):  # one slice per timestamp, 2B rows each
                nll += [s.alpha / (count * size * 2 * batch) if batch > 1 else 0.0] * (2 * batch)
                amc_rows += [weight] * (2 * batch)
        eye = torch.eye(2 * batch, dtype=torch.bool, device=device)
        negative = (~eye & ~eye.roll(batch, dims=1)).expand(len(nll) // (2 * batch), -1, -1)
        instance = _branch_plan(len(nll) // (2 * batch), nll, amc_rows, negative, s.amc_margin, dtype)

    levels = [k for k in range(count) if not final[k] and k >= s.temporal_unit]
    temporal = []
    if s.alpha != 1 and levels:
        # The largest level on its own when it dominates: a block-masked Gram matrix of all levels would
        # spend most of its products on the masked cross-level blocks.
        groups = [levels[:1], levels[1:]] if len(levels) > 1 and lengths[levels[0]] >= _SPLIT_FROM else [levels]
        starts = [sum(lengths[:k]) for k in range(count)]
        for group in groups:
            span = (starts[group[0]], starts[group[-1]] + lengths[group[-1]])
            temporal.append((span, _temporal_plan([lengths[k] for k in group], count, batch, s, device, dtype)))
    return _Plan(tuple(lengths), instance, tuple(temporal))


def _temporal_plan(
    sizes: list[int], count: int, batch: int, s: LossSettings, device: torch.device, dtype: torch.dtype
) -> _BranchPlan:
    """Temporal levels of these lengths side by side: per series, each view's levels in a row, views after
    each other; logits and pairs within a level only."""
    level_of, nll, amc_rows = [], [], []
    for k, size in enumerate(sizes):
        level_of += [k] * size
        nll += [(1 - s.alpha) / (count * batch * 2 * size)] * size
        amc_rows += [(1 - s.alpha) * s.amc_temporal / count] * size
    level_of = torch.tensor(level_of * 2, device=device)
    width = len(level_of)
    eye = torch.eye(width, dtype=torch.bool, device=device)
    negative = (level_of[:, None] == level_of[None, :]) & ~eye & ~eye.roll(width // 2, dims=1)
    return _branch_plan(1, nll * 2, amc_rows * 2, negative[None], s.amc_margin, dtype)
