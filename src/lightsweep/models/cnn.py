"""Convolutional image classifier with the seed search space's knobs (the seed system's
src/hyperparameter_selector.py, suggest_cnn_hyperparameters)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from torch import nn

from lightsweep.errors import ConfigError
from lightsweep.models.classifier import Classifier

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
    ) -> None:
        super().__init__(num_classes, optimizer)
        if not 1 <= conv_layers <= 4:
            raise ConfigError(f"model.conv_layers={conv_layers} must be between 1 and 4.")
        if not 0 <= hidden_layers <= 4:
            raise ConfigError(f"model.hidden_layers={hidden_layers} must be between 0 and 4.")
        if filters < 1 or filters_growth < 1 or first_hidden_units < 1:
            raise ConfigError("model.filters, model.filters_growth and model.first_hidden_units must be at least 1.")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.dropout={dropout} must be in [0, 1).")
        if len(input_shape) != 3:
            raise ConfigError(
                f"model=cnn needs images (channels, height, width), got inputs of shape {tuple(input_shape)}; "
                "use model=auto to pick the family that fits the dataset."
            )
        self.save_hyperparameters()
        channels, height, width = input_shape
        layers: list[nn.Module] = []
        for block in range(conv_layers):
            out = filters * filters_growth**block
            conv = nn.Conv2d(channels, out, kernel_size, padding=kernel_size // 2, bias=not batch_norm)
            if KERNEL_INITS[kernel_init]:
                KERNEL_INITS[kernel_init](conv.weight)
            layers += [conv, *([nn.BatchNorm2d(out)] if batch_norm else []), ACTIVATIONS[activation]()]
            if min(height, width) >= 4:  # pool while the map is big enough to keep 2x2 after it
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            channels = out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()] if global_pooling else [nn.Flatten()]
        features = channels if global_pooling else channels * height * width
        for units in dense_widths(hidden_layers, first_hidden_units):
            layers += [nn.Dropout(dropout), nn.Linear(features, units), ACTIVATIONS[activation]()]
            features = units
        layers += [nn.Dropout(dropout), nn.Linear(features, num_classes)]
        self.net = nn.Sequential(*layers)
