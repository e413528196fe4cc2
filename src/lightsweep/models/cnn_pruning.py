"""Structured channel pruning of the CNN's conv blocks (contracts.PrunesChannels): channels are removed,
not masked, so every later forward and backward computes less.

In each block, the `amount` share of the conv's filters with the smallest L1 norm (Li et al. 2017,
"Pruning Filters for Efficient ConvNets") goes; the block's batch norm and the layer reading the block
(the next conv's input channels, or the first dense layer's input features) shrink with it. Every block's
filters are ranked on the weights as they were before this call, so blocks are pruned independently."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lightsweep.errors import ConfigError


def kept_filters(conv: nn.Conv2d, amount: float) -> torch.Tensor:
    """Indices (ascending) of the filters kept: all but the round(amount * filters) smallest by L1 norm,
    at least one."""
    norms = conv.weight.detach().abs().sum(dim=(1, 2, 3))
    keep = max(1, conv.out_channels - round(amount * conv.out_channels))
    return norms.topk(keep).indices.sort().values


def prune_blocks(net: nn.Sequential, blocks: list[tuple[int, int]], amount: float) -> dict[str, Any]:
    """Prune the conv blocks net[start:stop] of `net` in place (modules replaced by smaller ones).
    Returns {"layers": {"net.<index>": [channels before, after]}, "channels_before", "channels_after"}."""
    if not 0.0 <= amount < 1.0:
        raise ConfigError(f"prune_channels(amount={amount!r}): amount is the share of channels to remove, in [0, 1).")
    kept = [kept_filters(net[start], amount) for start, _ in blocks]
    layers = {}
    for number, ((start, stop), keep) in enumerate(zip(blocks, kept, strict=True)):
        layers[f"net.{start}"] = [net[start].out_channels, len(keep)]
        net[start] = sliced_conv(net[start], outputs=keep)
        if isinstance(net[start + 1], nn.BatchNorm2d):
            net[start + 1] = sliced_norm(net[start + 1], keep)
        if number + 1 < len(blocks):
            reader = blocks[number + 1][0]
            net[reader] = sliced_conv(net[reader], inputs=keep)
        else:
            reader = next(i for i in range(stop, len(net)) if isinstance(net[i], nn.Linear))
            net[reader] = sliced_linear_inputs(net[reader], keep, channels=layers[f"net.{start}"][0])
    return {
        "layers": layers,
        "channels_before": sum(before for before, _ in layers.values()),
        "channels_after": sum(after for _, after in layers.values()),
    }


def sliced_conv(conv: nn.Conv2d, outputs: torch.Tensor | None = None, inputs: torch.Tensor | None = None) -> nn.Conv2d:
    weight, bias = conv.weight.detach(), None if conv.bias is None else conv.bias.detach()
    if outputs is not None:
        weight, bias = weight[outputs], None if bias is None else bias[outputs]
    if inputs is not None:
        weight = weight[:, inputs]
    smaller = nn.Conv2d(
        weight.shape[1],
        weight.shape[0],
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        bias=bias is not None,
        padding_mode=conv.padding_mode,
        device=weight.device,
        dtype=weight.dtype,
    )
    return _copied(smaller, conv, weight=weight, bias=bias)


def sliced_norm(norm: nn.BatchNorm2d, keep: torch.Tensor) -> nn.BatchNorm2d:
    smaller = nn.BatchNorm2d(
        len(keep),
        norm.eps,
        norm.momentum,
        norm.affine,
        norm.track_running_stats,
        device=keep.device,
        dtype=norm.weight.dtype if norm.affine else None,
    )
    state = {name: value if value.ndim == 0 else value[keep] for name, value in norm.state_dict().items()}
    smaller.load_state_dict(state)
    return smaller.train(norm.training)


def sliced_linear_inputs(linear: nn.Linear, keep: torch.Tensor, channels: int) -> nn.Linear:
    """The dense layer reading a flattened (C, H, W) map (or a globally pooled (C,) one): channel c owns
    the in_features / C consecutive features from c * in_features / C."""
    per_channel = linear.in_features // channels
    features = (keep[:, None] * per_channel + torch.arange(per_channel, device=keep.device)).flatten()
    weight = linear.weight.detach()[:, features]
    smaller = nn.Linear(
        len(features), linear.out_features, linear.bias is not None, device=weight.device, dtype=weight.dtype
    )
    return _copied(smaller, linear, weight=weight, bias=None if linear.bias is None else linear.bias.detach())


def _copied(module: nn.Module, like: nn.Module, **values: torch.Tensor | None) -> nn.Module:
    """`module` with `values` copied into its parameters, in `like`'s training mode."""
    module.train(like.training)
    with torch.no_grad():
        for name, value in values.items():
            if value is not None:
                getattr(module, name).copy_(value)
    return module
