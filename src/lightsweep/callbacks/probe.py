"""The network a callback probes with a fixed input batch, and where its units' activations are read.

Each model family names the network to probe (probe_network(): classifiers themselves; TimeHUT, which has
no forward and trains its `encoder` with a contrastive loss, its encoder). Units are read after every
activation module (conv channels, linear units), from LSTM outputs, and at TimeHUT's functional GELUs (each
residual block applies GELU to its input and to its first conv's output). Signed outputs (tanh, LSTM
states) are read as magnitudes: a unit that is always negative still carries information; one that is
always zero does not."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from lightsweep.contracts import ModelFamily

KEPT_INPUTS = 256  # inputs kept from a training batch to measure on: all of a usual batch, never a huge one
ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.SiLU, nn.GELU, nn.ELU, nn.Tanh, nn.Sigmoid)

# (name, module) -> unit outputs: torch.Tensor with units on `dim`
Capture = Callable[[str, torch.Tensor, int], None]


def parameter_count(net: nn.Module) -> int:
    """Parameters of `net` (trainable or not): the size the technique records compare."""
    return sum(p.numel() for p in net.parameters())


def network(pl_module: L.LightningModule) -> nn.Module | None:
    """What maps a probe batch to outputs: the model family's probe_network() (lightsweep.contracts.ModelFamily);
    for any other module its own forward, else None."""
    if isinstance(pl_module, ModelFamily):
        return pl_module.probe_network()
    return pl_module if type(pl_module).forward is not L.LightningModule.forward else None


def weights_network(pl_module: L.LightningModule) -> nn.Module:
    """Whose weights callbacks inspect or prune: the probed network, else the whole module."""
    return network(pl_module) or pl_module


def inputs_of(batch: Any, size: int = KEPT_INPUTS) -> torch.Tensor:
    """A detached copy of the first `size` inputs of a batch: a probe that keeps no whole batch alive."""
    return batch[0][:size].detach().clone()


def run(net: nn.Module, probe: torch.Tensor) -> Any:
    """One no-grad forward pass of the probe batch in eval mode; the training mode is restored after."""
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            return net(probe)
    finally:
        net.train(was_training)


@contextmanager
def unit_outputs(net: nn.Module, capture: Capture) -> Iterator[int]:
    """While open, every forward of `net` reports each watched site's post-activation output to
    capture(name, output, unit_dim). Yields the number of watched sites (0: nothing to read)."""
    hooks = []
    for name, module in net.named_modules():
        if isinstance(module, ACTIVATIONS):
            hooks.append(module.register_forward_hook(_after(name, capture, 1, signed=isinstance(module, nn.Tanh))))
        elif isinstance(module, nn.LSTM):  # (batch, time, units) outputs; units on the last axis
            hooks.append(module.register_forward_hook(_after(name, capture, -1, lstm=True, signed=True)))
        elif _is_timehut_block(module):
            hooks.append(module.register_forward_pre_hook(_gelu_of_input(f"{name}.input", capture)))
            hooks.append(module.conv1.register_forward_hook(_after(f"{name}.conv1", capture, 1, gelu=True)))
    try:
        yield len(hooks)
    finally:
        for hook in hooks:
            hook.remove()


def _is_timehut_block(module: nn.Module) -> bool:
    from lightsweep.models.timehut.encoder import ConvBlock

    return isinstance(module, ConvBlock)


def _after(name: str, capture: Capture, dim: int, lstm: bool = False, gelu: bool = False, signed: bool = False):
    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        out = output[0] if lstm else output
        out = F.gelu(out) if gelu else out
        capture(name, out.abs() if signed else out, dim)

    return hook


def _gelu_of_input(name: str, capture: Capture):
    def hook(_module: nn.Module, inputs: tuple[Any, ...]) -> None:
        capture(name, F.gelu(inputs[0]), 1)

    return hook
