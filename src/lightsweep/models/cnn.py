"""Convolutional image classifier with the seed search space's knobs (hpo_seed.md section 3.2)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from torch import nn

from lightsweep.errors import ConfigError
from lightsweep.models.classifier import Classifier

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "swish": nn.SiLU}


class CNNClassifier(Classifier):
    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        conv_layers: int = 2,
        filters: int = 32,
        kernel_size: Literal[3, 5] = 3,
        activation: Literal["relu", "leaky_relu", "swish"] = "relu",
        batch_norm: bool = True,
        global_pooling: bool = True,
        hidden_units: Sequence[int] = (128,),
        dropout: float = 0.25,
        optimizer: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(num_classes, optimizer)
        if not 1 <= conv_layers <= 4:
            raise ConfigError(f"model.conv_layers={conv_layers} must be between 1 and 4.")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.dropout={dropout} must be in [0, 1).")
        self.save_hyperparameters()
        channels, height, width = input_shape
        layers: list[nn.Module] = []
        for block in range(conv_layers):
            out = filters * 2**block
            layers += [nn.Conv2d(channels, out, kernel_size, padding=kernel_size // 2, bias=not batch_norm)]
            layers += [nn.BatchNorm2d(out)] if batch_norm else []
            layers += [ACTIVATIONS[activation]()]
            if min(height, width) >= 4:  # pool while the map is big enough to keep 2x2 after it
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            channels = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()] if global_pooling else [nn.Flatten()]
        features = channels if global_pooling else channels * height * width
        for width_units in hidden_units:
            layers += [nn.Dropout(dropout), nn.Linear(features, width_units), ACTIVATIONS[activation]()]
            features = width_units
        layers += [nn.Dropout(dropout), nn.Linear(features, num_classes)]
        self.net = nn.Sequential(*layers)
