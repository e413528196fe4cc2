"""INT8 copies of a trained classifier's network for CPU inference (contracts.QuantizesForInference).

Both work on a deep copy moved to the CPU, so the trained module is left as it was. torch.ao.quantization
is what this torch offers for eager and FX INT8 (its successor, torchao, is not a dependency); its
deprecation notice is silenced here, where it is known and would repeat for every quantized network."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from lightsweep.errors import ConfigError

BACKEND = "x86"  # fbgemm's successor: INT8 kernels for x86 CPUs


@contextmanager
def _quiet_deprecation() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*reduce_range will be deprecated", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions", category=UserWarning)
        yield


def static_int8(net: nn.Module, calibration: list[torch.Tensor]) -> nn.Module:
    """Static INT8 through FX graph mode: weights and activations INT8, with activation ranges observed on
    `calibration` (input batches); FX fuses conv + batch norm + ReLU (and linear + ReLU) first. The
    result takes the same float inputs and returns float logits."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    if not calibration:
        raise ConfigError("INT8 static quantization needs at least one calibration batch of inputs.")
    if BACKEND not in torch.backends.quantized.supported_engines:
        raise ConfigError(
            f"INT8 static quantization needs the {BACKEND} quantized engine; this torch has "
            f"{torch.backends.quantized.supported_engines}."
        )
    torch.backends.quantized.engine = BACKEND  # weights are packed for, and run on, this engine
    with _quiet_deprecation():
        model = copy.deepcopy(net).cpu().eval()
        prepared = prepare_fx(model, get_default_qconfig_mapping(BACKEND), example_inputs=(calibration[0].cpu(),))
        with torch.no_grad():
            for inputs in calibration:
                prepared(inputs.cpu())
        return convert_fx(prepared)


def dynamic_int8(net: nn.Module) -> nn.Module:
    """Dynamic INT8: the LSTM and Linear weights stored as INT8, activations quantized on the fly per batch
    (so nothing is calibrated); embeddings and the rest stay float. Takes the same inputs as `net`."""
    from torch.ao.quantization import quantize_dynamic

    with _quiet_deprecation():
        return quantize_dynamic(copy.deepcopy(net).cpu().eval(), {nn.LSTM, nn.Linear}, dtype=torch.qint8)
