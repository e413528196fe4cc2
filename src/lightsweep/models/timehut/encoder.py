"""TS2Vec's encoder: input projection, timestamp masking, dilated residual conv stack
(TS2Vec: models/encoder.py, models/dilated_conv.py)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

MaskMode = Literal["binomial", "continuous", "all_true", "all_false", "mask_last"]


class SamePadConv(nn.Module):
    """Dilated Conv1d whose output has the input's length ('same' padding)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        receptive_field = (kernel_size - 1) * dilation + 1
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=receptive_field // 2, dilation=dilation)
        self.trim = 1 if receptive_field % 2 == 0 else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.centre_tap_only(x.size(-1)):
            return self.per_timestep(x.transpose(1, 2)).transpose(1, 2)
        out = self.conv(x)
        return out[:, :, : out.size(-1) - self.trim] if self.trim else out

    def centre_tap_only(self, length: int) -> bool:
        """Every tap but the centre one reads only zero padding when the dilation reaches past both ends of
        a series of `length` steps, so the conv is exactly its centre tap: a 1x1 conv. (The reference pads
        a 24-step series by up to 1,024 steps each side in its last blocks.)"""
        return self.conv.kernel_size[0] % 2 == 1 and self.conv.dilation[0] >= length

    def per_timestep(self, x: torch.Tensor) -> torch.Tensor:
        """The centre-tap conv on time-major x (B, T, C_in) -> (B, T, C_out): a linear map over channels
        (~1.5x faster than a 1x1 Conv1d for these small shapes)."""
        conv = self.conv
        return F.linear(x, conv.weight[:, :, conv.kernel_size[0] // 2], conv.bias)

    def unreachable_taps(self, length: int) -> torch.Tensor:
        """(kernel_size,) bool: True for a tap that reads only padding on a series of `length` steps.
        Output step t reads input t + k*dilation - padding through tap k, t in [0, length)."""
        conv = self.conv
        offsets = torch.arange(conv.kernel_size[0], device=conv.weight.device) * conv.dilation[0] - conv.padding[0]
        return offsets.abs() >= length


class ConvBlock(nn.Module):
    """Pre-activation residual block: GELU -> conv -> GELU -> conv, plus a (projected) skip."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int, final: bool) -> None:
        super().__init__()
        self.conv1 = SamePadConv(in_channels, out_channels, kernel_size, dilation)
        self.conv2 = SamePadConv(out_channels, out_channels, kernel_size, dilation)
        self.projector = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels or final else None

    def forward(self, x: torch.Tensor, inside: torch.Tensor | None = None) -> torch.Tensor:
        """inside (B, 1, T): 1 where a row's series still runs; convs then read 0 past its end."""
        residual = x if self.projector is None else self.projector(x)
        x = F.gelu(x) if inside is None else F.gelu(x) * inside
        x = self.conv1(x)
        x = F.gelu(x) if inside is None else F.gelu(x) * inside
        return self.conv2(x) + residual

    def per_timestep(self, x: torch.Tensor) -> torch.Tensor:
        """The block on time-major x (B, T, C) when both convs are their centre taps (see
        SamePadConv.centre_tap_only): no step reads another, so no transposes and no `inside` mask (a
        padded step's output is never read by a real one)."""
        projector = self.projector
        # (a 1x1 kernel: squeeze is a view, so its gradient needs no zero-filled (O, I, 1) tensor as a select would)
        residual = x if projector is None else F.linear(x, projector.weight.squeeze(-1), projector.bias)
        x = self.conv1.per_timestep(F.gelu(x))
        return self.conv2.per_timestep(F.gelu(x)) + residual

    def centre_tap_only(self, length: int) -> bool:
        return self.conv1.centre_tap_only(length) and self.conv2.centre_tap_only(length)


class TSEncoder(nn.Module):
    """(B, T, D) with NaN for missing values -> (B, T, output_dims); block i has dilation 2**i."""

    def __init__(
        self,
        input_dims: int,
        output_dims: int = 320,
        hidden_dims: int = 64,
        depth: int = 10,
        mask_mode: MaskMode = "binomial",
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.mask_mode = mask_mode
        self.input_fc = nn.Linear(input_dims, hidden_dims)
        channels = [hidden_dims] * depth + [output_dims]
        self.blocks = nn.ModuleList(
            ConvBlock(channels[i - 1] if i > 0 else hidden_dims, channels[i], kernel_size, 2**i, i == len(channels) - 1)
            for i in range(len(channels))
        )
        self.repr_dropout = nn.Dropout(p=0.1)
        self.checkpointing = False  # see run_block

    def forward(
        self,
        x: torch.Tensor,
        mask: MaskMode | None = None,
        lengths: torch.Tensor | None = None,
        steps: tuple[torch.Tensor, int] | None = None,
    ) -> torch.Tensor:
        """lengths (B,): rows are series of different lengths right-padded to T; each row's output up to
        its length equals encoding that series alone (see encode_pair). steps (starts (B,), n): return only
        out[i, starts[i] : starts[i] + n], equal to slicing the whole output; the per-timestep blocks then
        run on those steps alone (see encode_overlap)."""
        valid = ~x.isnan().any(dim=-1)
        x = self.input_fc(x.masked_fill(~valid.unsqueeze(-1), 0.0))
        mode = mask or (self.mask_mode if self.training else "all_true")
        keep = timestamp_mask(mode, x.shape[:2], x.device) & valid
        inside = None
        if lengths is not None:
            inside = torch.arange(x.size(1), device=x.device) < lengths[:, None]
            keep &= inside
            inside = inside.unsqueeze(1).to(x.dtype)
        x = x.masked_fill(~keep.unsqueeze(-1), 0.0)  # after the projection: no bias leaks
        # Dilations grow block by block: the blocks from `first_per_timestep` on are all centre taps at
        # this length and run time-major (B, T, C); the ones before are real convolutions on (B, C, T).
        split = self.first_per_timestep(x.size(1))
        if split > 0:
            x = x.transpose(1, 2)
            for block in self.blocks[:split]:
                x = self.run_block(block, x, inside)
            x = x.transpose(1, 2)
        full_length = x.size(1)
        if steps is not None:
            index = (steps[0][:, None] + torch.arange(steps[1], device=x.device))[:, :, None]
            x = x.gather(1, index.expand(-1, -1, x.size(2)))
        for block in self.blocks[split:]:
            x = self.run_block(block.per_timestep, x)
        if not self.training:
            return x
        if steps is None:  # dropout on a contiguous (B, C, T) copy: the random mask is drawn in memory order
            return self.repr_dropout(x.transpose(1, 2).contiguous()).transpose(1, 2)  # (the layout it always had)
        # The mask the whole (B, C, T) output would get (the same random draws), at the kept steps only:
        # dropout of ones is its scaled mask, and x * mask is the product dropout itself computes.
        noise = self.repr_dropout(x.new_ones(x.size(0), x.size(2), full_length)).transpose(1, 2)
        return x * noise.gather(1, index.expand(-1, -1, x.size(2)))

    def run_block(self, block, *inputs: torch.Tensor | None) -> torch.Tensor:
        """A block (as a module or its time-major path) on `inputs`; with `checkpointing` on while training
        with gradients, its activations are not kept but recomputed in backward (non-reentrant checkpoint:
        the same maths and, with the RNG state it restores, the same values)."""
        if self.checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, *inputs, use_reentrant=False)
        return block(*inputs)

    def first_per_timestep(self, length: int) -> int:
        """Index of the first block from which every block is its centre taps on series of `length` steps."""
        split = len(self.blocks)
        if any(m._forward_hooks or m._forward_pre_hooks for m in self.blocks.modules()):
            return split  # a probe (the health monitor's dead-unit hooks) watches the blocks: call them as modules
        while split > 0 and self.blocks[split - 1].centre_tap_only(length):
            split -= 1
        return split

    def unreachable_weights(self, length: int) -> dict[str, torch.Tensor]:
        """Parameter name -> bool mask of the conv weights that no series of `length` steps reaches: taps
        that read only zero padding, so their weights get exactly zero gradient (block i has dilation
        2**i: on a 24-step series blocks 5 and up use only their centre tap). Fully reachable tensors are
        left out."""
        masks = {}
        for name, module in self.named_modules():
            if isinstance(module, SamePadConv):
                taps = module.unreachable_taps(length)
                if taps.any():
                    masks[f"{name}.conv.weight"] = taps.expand_as(module.conv.weight)
        return masks


def encode_pair(encoder: TSEncoder, view1: torch.Tensor, view2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both crops in one encoder call (half the kernel launches). The shorter crop is right-padded and
    its padding is held at zero before every temporal conv, which is exactly the zero 'same' padding
    a call of its own would read, so each output equals encoding that crop alone."""
    batch, lengths = _padded_pair(view1, view2)
    out = encoder(batch, lengths=lengths)
    return out[: len(view1), : view1.size(1)], out[len(view1) :, : view2.size(1)]


def encode_overlap(
    encoder: TSEncoder, view1: torch.Tensor, view2: torch.Tensor, overlap: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """encode_pair's outputs on the shared timestamps only: (view 1's last `overlap` steps, view 2's first),
    what the contrastive loss reads. The same values as slicing encode_pair's outputs; the per-timestep
    blocks (the far-dilation ones) compute just those steps."""
    batch, lengths = _padded_pair(view1, view2)
    return encode_crops(encoder, batch, lengths, overlap, view1.size(1))


def encode_crops(
    encoder: TSEncoder, batch: torch.Tensor, lengths: torch.Tensor, overlap: int, length1: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """encode_overlap on a padded batch of both views (views.overlapping_crops): rows 0..B-1 view 1 of
    length `length1`, rows B..2B-1 view 2, steps past `lengths` ignored."""
    half = len(batch) // 2
    starts = torch.zeros(len(batch), dtype=torch.long, device=batch.device)
    starts[:half] = length1 - overlap
    out = encoder(batch, lengths=lengths, steps=(starts, overlap))
    return out[:half], out[half:]


def _padded_pair(view1: torch.Tensor, view2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    length1, length2 = view1.size(1), view2.size(1)
    longest = max(length1, length2)
    batch = torch.cat([F.pad(view1, (0, 0, 0, longest - length1)), F.pad(view2, (0, 0, 0, longest - length2))])
    lengths = torch.tensor([length1] * len(view1) + [length2] * len(view2), device=batch.device)
    return batch, lengths


def timestamp_mask(mode: MaskMode, shape: torch.Size, device: torch.device) -> torch.Tensor:
    """(B, T) bool, True = keep. binomial: each timestamp kept with p=0.5; continuous: 5 spans of 10% dropped."""
    batch, length = shape
    if mode == "binomial":
        return torch.rand(batch, length, device=device) < 0.5
    keep = torch.ones(batch, length, dtype=torch.bool, device=device)
    if mode == "all_false":
        keep[:] = False
    elif mode == "mask_last":
        keep[:, -1] = False
    elif mode == "continuous":
        span = max(1, int(length * 0.1))
        starts = torch.randint(0, max(1, length - span + 1), (batch, 5), device=device)
        positions = torch.arange(length, device=device)
        for start in starts.unbind(dim=1):
            keep &= ~((positions >= start[:, None]) & (positions < start[:, None] + span))
    elif mode != "all_true":
        raise ValueError(f"unknown mask mode {mode!r}")
    return keep
