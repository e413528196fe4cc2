"""Static INT8 copy of TimeHUT's encoder for CPU inference (torch.ao.quantization, FX graph mode, x86 backend).

What is INT8 and what stays float:
- the residual blocks (every dilated conv, 1x1 projector and residual add) are one FX-traced graph, prepared,
  calibrated on the given batches and converted: quantized Conv1d modules and quantized adds, per-channel
  weights, per-tensor activations. GELU has no INT8 kernel in the x86 backend, so FX runs it in float between a
  dequantize and a quantize.
- the missing-value handling and the input projection stay float: the NaN mask is data-dependent (FX cannot
  trace it) and the projection (D inputs -> hidden) is a negligible share of the work.
The encoder's eval-time maths is kept: no timestamp masking, no dropout, and the far-dilation blocks, which on
the calibration's series read only their centre tap (see SamePadConv.centre_tap_only), are 1x1 convs; that
is exact for series up to the shortest such dilation, so longer series are refused with a clear error."""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from lightsweep.models.timehut.encoder import ConvBlock, SamePadConv, TSEncoder


class Int8Encoder(nn.Module):
    """(B, T, D) with NaN for missing values -> (B, T, output_dims), as TSEncoder in eval mode."""

    def __init__(self, input_fc: nn.Linear, blocks: nn.Module, longest: int | None) -> None:
        super().__init__()
        self.input_fc, self.blocks, self.longest = input_fc, blocks, longest

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.longest is not None and x.size(1) > self.longest:
            raise ValueError(
                f"this INT8 encoder is exact for series of at most {self.longest} steps, got {x.size(1)}: "
                "calibrate it with batches of the longest series it will encode."
            )
        return self.blocks(self.project(x).transpose(1, 2)).transpose(1, 2)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """TSEncoder.forward before its blocks, in eval mode: missing steps are 0 after the projection."""
        missing = x.isnan().any(dim=-1, keepdim=True)
        return self.input_fc(x.masked_fill(missing, 0.0)).masked_fill(missing, 0.0)


class TraceableBlock(nn.Module):
    """ConvBlock.forward without `inside` and without the length test, on (B, C, T): plain modules FX traces.
    `centre`: the convs are their centre taps as 1x1 convs (the block's per_timestep maths)."""

    def __init__(self, block: ConvBlock, centre: bool) -> None:
        super().__init__()
        self.conv1, self.conv2 = _conv(block.conv1, centre), _conv(block.conv2, centre)
        self.projector = copy.deepcopy(block.projector)
        self.gelu1, self.gelu2 = nn.GELU(), nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.projector is None else self.projector(x)
        return self.conv2(self.gelu2(self.conv1(self.gelu1(x)))) + residual


def quantize_encoder(encoder: TSEncoder, calibration: list[torch.Tensor]) -> Int8Encoder:
    """An INT8 Int8Encoder from a copy of `encoder` (left as it is), calibrated on `calibration`: input batches
    (B, T, D), or batches whose first item is one."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    batches = [(b[0] if isinstance(b, (tuple, list)) else b).detach().float().cpu() for b in calibration]
    if not batches:
        raise ValueError("INT8 calibration needs at least one input batch.")
    encoder = copy.deepcopy(encoder).float().cpu().eval()
    length = max(b.size(1) for b in batches)
    split = len(encoder.blocks)  # blocks from `split` on read only their centre tap at this length
    while split > 0 and encoder.blocks[split - 1].centre_tap_only(length):
        split -= 1
    blocks = nn.Sequential(*(TraceableBlock(b, i >= split) for i, b in enumerate(encoder.blocks))).eval()
    longest = encoder.blocks[split].conv1.conv.dilation[0] if split < len(encoder.blocks) else None
    network = Int8Encoder(encoder.input_fc, blocks, longest)
    # torch deprecates torch.ao.quantization for torchao's pt2e flow (not a dependency here): quiet its notices
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.ao|lightsweep")
        warnings.filterwarnings("ignore", message="Please use quant_min and quant_max|torch.quantize_per_tensor")
        projected = [network.project(b).transpose(1, 2) for b in batches]
        prepared = prepare_fx(blocks, get_default_qconfig_mapping("x86"), example_inputs=(projected[0],))
        for batch in projected:
            prepared(batch)
        network.blocks = convert_fx(prepared)
    return network.eval()


def _conv(conv: SamePadConv, centre: bool) -> nn.Conv1d:
    if conv.trim:  # TSEncoder's kernel is odd: 'same' padding needs no trimming
        raise ValueError("INT8 conversion supports odd kernel sizes only.")
    if not centre:
        return copy.deepcopy(conv.conv)
    full = conv.conv
    tap = full.kernel_size[0] // 2
    one = nn.Conv1d(full.in_channels, full.out_channels, 1)
    with torch.no_grad():
        one.weight.copy_(full.weight[:, :, tap : tap + 1])
        one.bias.copy_(full.bias)
    return one
