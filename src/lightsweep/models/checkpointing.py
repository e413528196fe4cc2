"""Activation checkpointing of one block (contracts.Checkpointable): torch.utils.checkpoint keeps only the
block's inputs and recomputes its activations in backward (use_reentrant=False, RNG state preserved).

Batch norm is checkpointed with its block: the recomputation normalises with the same batch statistics
(training mode) but would move the running statistics a second time, so they are put back as they were
once it is done. (Recomputing without tracking them instead would save other tensors than the forward did,
which torch.utils.checkpoint refuses.) Outputs, gradients and running statistics equal the unchecked run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


def should_checkpoint(enabled: bool, module: nn.Module) -> bool:
    """Only training forwards that build a graph gain anything from recomputing: evaluation runs plainly."""
    return enabled and module.training and torch.is_grad_enabled()


@contextmanager
def running_stats_restored(block: nn.Module) -> Iterator[None]:
    """The block's batch-norm buffers (running mean, var, num_batches_tracked) as they were on entry."""
    buffers = [
        (buffer, buffer.clone())
        for norm in block.modules()
        if isinstance(norm, nn.modules.batchnorm._BatchNorm)
        for buffer in norm.buffers()
    ]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in buffers:
                buffer.copy_(value)


def checkpointed(block: nn.Module, *inputs: Any, call: Callable[..., Any] | None = None) -> Any:
    """`call(*inputs)` (default: `block(*inputs)`) with its activations recomputed in backward; `block`
    holds the batch norms whose running statistics the recomputation must leave alone."""
    if torch.compiler.is_compiling():
        # Compiled, the recomputation is part of the backward graph, where buffer mutations are not
        # replayed (they are applied once, after the forward); dynamo also rejects a custom context_fn.
        return checkpoint(call or block, *inputs, use_reentrant=False)
    return checkpoint(
        call or block,
        *inputs,
        use_reentrant=False,
        context_fn=lambda: (nullcontext(), running_stats_restored(block)),
    )
