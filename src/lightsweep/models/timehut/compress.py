"""Structured pruning of TimeHUT's encoder: each residual block's inner channels (conv1's outputs, which only
conv2 reads) go for real; the block's input and output widths, which the skip path and the next block read,
stay. The trained encoder and its weight-averaged copy lose the same channels, so they stay one model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from lightsweep.errors import ConfigError
from lightsweep.models.timehut.encoder import ConvBlock, TSEncoder


def prune_inner_channels(encoders: Mapping[str, TSEncoder], amount: float) -> dict[str, Any]:
    """Remove round(amount x width) inner channels of every block (at least one stays), those whose conv1
    output filters have the smallest L1 norm in the first encoder (the trained one); every encoder loses the
    same channels. Returns PrunesChannels' record, layers named after the first encoder's prefix."""
    if not 0.0 <= amount < 1.0:
        raise ConfigError(
            f"pruning amount={amount} is not valid: use a share of channels in [0, 1), e.g. 0.3 to remove 30%."
        )
    (prefix, ranked), *_ = encoders.items()
    layers = {}
    for index, block in enumerate(ranked.blocks):
        weight = block.conv1.conv.weight.detach()
        width = weight.size(0)
        kept = width - min(width - 1, round(amount * width))
        if kept < width:
            keep = weight.abs().sum(dim=(1, 2)).topk(kept).indices.sort().values
            for encoder in encoders.values():
                _keep_inner(encoder.blocks[index], keep)
        layers[f"{prefix}.blocks.{index}.conv1.conv"] = [width, kept]
    return {
        "layers": layers,
        "channels_before": sum(before for before, _ in layers.values()),
        "channels_after": sum(after for _, after in layers.values()),
    }


def match_widths(encoder: TSEncoder, state_dict: Mapping[str, torch.Tensor], prefix: str) -> None:
    """Give each block the inner width its weights in `state_dict` have (a checkpoint saved after pruning),
    so that load_state_dict fills them; the values are placeholders until then."""
    for index, block in enumerate(encoder.blocks):
        saved = state_dict.get(f"{prefix}blocks.{index}.conv1.conv.weight")
        if saved is not None and saved.size(0) != block.conv1.conv.out_channels:
            _keep_inner(block, torch.zeros(saved.size(0), dtype=torch.long, device=saved.device))


def _keep_inner(block: ConvBlock, keep: torch.Tensor) -> None:
    conv1, conv2 = block.conv1.conv, block.conv2.conv
    keep = keep.to(conv1.weight.device)
    conv1.weight = _like(conv1.weight, conv1.weight.detach()[keep])
    conv1.bias = _like(conv1.bias, conv1.bias.detach()[keep])
    conv2.weight = _like(conv2.weight, conv2.weight.detach()[:, keep])
    conv1.out_channels = conv2.in_channels = len(keep)


def _like(parameter: nn.Parameter, values: torch.Tensor) -> nn.Parameter:
    """A new, smaller parameter (contiguous, its own storage) that is trained as the one it replaces."""
    return nn.Parameter(values.contiguous().clone(), requires_grad=parameter.requires_grad)
