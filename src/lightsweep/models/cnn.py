"""Convolutional image classifier with the seed search space's knobs (the seed system's
src/hyperparameter_selector.py, suggest_cnn_hyperparameters)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn

from lightsweep.errors import ConfigError
from lightsweep.models.checkpointing import checkpointed, should_checkpoint
from lightsweep.models.classifier import Classifier
from lightsweep.models.cnn_pruning import prune_blocks
from lightsweep.models.quantization import static_int8

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "swish": nn.SiLU}
KERNEL_INITS = {  # conv weights; "default" keeps PyTorch's (Kaiming-uniform with a=sqrt(5))
    "default": None,
    "he_normal": lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"),
    "glorot_uniform": nn.init.xavier_uniform_,
}


def dense_widths(layers: int, first: int) -> list[int]:
    """The seed's dense stack: `first` units, each next layer half the previous one, at least 8."""
    return [max(first // 2**i, 8) for i in range(layers)]


class CNNClassifier(Classifier):
    """`self.net` is one flat nn.Sequential; `self.blocks` holds each conv block's [start, stop) in it
    (conv -> [batch norm] -> activation -> [max-pool]), what checkpointing and pruning work on."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        conv_layers: int = 3,
        filters: int = 16,
        filters_growth: int = 2,
        kernel_size: Literal[3, 5] = 3,
        activation: Literal["relu", "leaky_relu", "swish"] = "relu",
        kernel_init: Literal["default", "he_normal", "glorot_uniform"] = "default",
        batch_norm: bool = True,
        global_pooling: bool = False,
        hidden_layers: int = 1,
        first_hidden_units: int = 128,
        dropout: float = 0.1,
        optimizer: Mapping[str, Any] | None = None,
        block_channels: Sequence[int] | None = None,
    ) -> None:
        """block_channels: each conv block's output channels, in place of filters * filters_growth**block;
        prune_channels() records the pruned widths here, so a pruned model's checkpoints load."""
        super().__init__(num_classes, optimizer)
        if not 1 <= conv_layers <= 4:
            raise ConfigError(f"model.conv_layers={conv_layers} must be between 1 and 4.")
        if not 0 <= hidden_layers <= 4:
            raise ConfigError(f"model.hidden_layers={hidden_layers} must be between 0 and 4.")
        if filters < 1 or filters_growth < 1 or first_hidden_units < 1:
            raise ConfigError("model.filters, model.filters_growth and model.first_hidden_units must be at least 1.")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.dropout={dropout} must be in [0, 1).")
        if block_channels is not None and (len(block_channels) != conv_layers or min(block_channels) < 1):
            raise ConfigError(
                f"model.block_channels={list(block_channels)} must give {conv_layers} (model.conv_layers) "
                "channel counts of at least 1, or be null (model.filters and model.filters_growth decide)."
            )
        if len(input_shape) != 3:
            raise ConfigError(
                f"model=cnn needs images (channels, height, width), got inputs of shape {tuple(input_shape)}; "
                "use model=auto to pick the family that fits the dataset."
            )
        self.save_hyperparameters()
        channels, height, width = input_shape
        layers: list[nn.Module] = []
        self.blocks: list[tuple[int, int]] = []
        self.checkpointing = False
        for block in range(conv_layers):
            start = len(layers)
            out = block_channels[block] if block_channels is not None else filters * filters_growth**block
            conv = nn.Conv2d(channels, out, kernel_size, padding=kernel_size // 2, bias=not batch_norm)
            if KERNEL_INITS[kernel_init]:
                KERNEL_INITS[kernel_init](conv.weight)
            layers += [conv, *([nn.BatchNorm2d(out)] if batch_norm else []), ACTIVATIONS[activation]()]
            if min(height, width) >= 4:  # pool while the map is big enough to keep 2x2 after it
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            self.blocks.append((start, len(layers)))
            channels = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()] if global_pooling else [nn.Flatten()]
        features = channels if global_pooling else channels * height * width
        for units in dense_widths(hidden_layers, first_hidden_units):
            layers += [nn.Dropout(dropout), nn.Linear(features, units), ACTIVATIONS[activation]()]
            features = units
        layers += [nn.Dropout(dropout), nn.Linear(features, num_classes)]
        self.net = nn.Sequential(*layers)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if not should_checkpoint(self.checkpointing, self):
            return self.net(inputs)
        x = inputs
        for start, stop in self.blocks:
            x = checkpointed(self.net[start:stop], x)
        return self.net[stop:](x)

    def set_checkpointing(self, enabled: bool) -> None:
        """contracts.Checkpointable: each conv block (conv, batch norm, activation, pool) recomputes its
        activations in backward while training (models/checkpointing.py)."""
        self.checkpointing = bool(enabled)

    def prune_channels(self, amount: float) -> dict[str, Any]:
        """contracts.PrunesChannels: removes `amount` of each conv block's filters by L1 norm
        (models/cnn_pruning.py); the optimizer must be rebuilt (configure_optimizers()) after it."""
        pruned = prune_blocks(self.net, self.blocks, amount)
        self.hparams["block_channels"] = [after for _, after in pruned["layers"].values()]
        return pruned

    def quantized_network(self, calibration: list[torch.Tensor]) -> nn.Module:
        """contracts.QuantizesForInference: static INT8 (FX graph mode, x86, conv+bn+relu fused) of a copy of
        the network, calibrated on `calibration` (input batches); this module is not changed."""
        return static_int8(self.net, calibration)
