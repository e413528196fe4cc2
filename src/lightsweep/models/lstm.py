"""LSTM text classifier with the seed search space's knobs (the seed system's
src/hyperparameter_selector.py, suggest_lstm_hyperparameters).

Token ids (N, seq_len), padded with 0 after each text -> embedding -> LSTM layers -> pooling over the
text's own steps (max or mean of the outputs, or each direction's final state) -> dense layers -> logits.

Fast on CPU without packing (packed sequences run ~7x slower there): a batch is cut to its longest
text, and the backward direction is a second LSTM reading each text reversed within its length, so
padding always comes after the real tokens and never reaches the states that are used: exact, like
packing. Every LSTM is a plain nn.LSTM returning tensors, so forward hooks (HealthMonitor) see them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Literal

import torch
from torch import nn

from lightsweep.data.tokenizer import PAD
from lightsweep.errors import ConfigError
from lightsweep.models.checkpointing import checkpointed, should_checkpoint
from lightsweep.models.classifier import Classifier
from lightsweep.models.quantization import dynamic_int8


def reverse_within(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's first `length` steps (N, T, F); padding steps stay where they are."""
    steps = torch.arange(x.shape[1], device=x.device).expand(x.shape[0], -1)
    source = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
    return x.gather(1, source[..., None].expand_as(x))


class TextLSTM(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embedding_dim: int,
        lstm_units: int,
        bidirectional: bool,
        lstm_layers: int,
        hidden_units: Sequence[int],
        dropout: float,
        pooling: str = "max",
    ) -> None:
        super().__init__()
        self.pooling = pooling
        self.checkpointing = False  # set_checkpointing: each LSTM layer recomputes its steps in backward
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout)
        directions = 2 if bidirectional else 1
        self.layers = nn.ModuleList()
        for layer in range(lstm_layers):  # per layer: [forward, backward] single-direction LSTMs
            inputs = embedding_dim if layer == 0 else lstm_units * directions
            self.layers.append(nn.ModuleList(nn.LSTM(inputs, lstm_units, batch_first=True) for _ in range(directions)))
        head: list[nn.Module] = []
        features = lstm_units * directions
        for width in hidden_units:
            head += [nn.Dropout(dropout), nn.Linear(features, width), nn.ReLU()]
            features = width
        head += [nn.Dropout(dropout), nn.Linear(features, num_classes)]
        self.head = nn.Sequential(*head)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        lengths = (tokens != PAD).sum(dim=1).clamp(min=1)  # an empty text still gets one (padding) step
        tokens = tokens[:, : int(lengths.max())]  # the padding after the longest text costs nothing
        x = self.dropout(self.embedding(tokens))
        for index, directions in enumerate(self.layers):
            if should_checkpoint(self.checkpointing, self):
                x = checkpointed(directions, x, lengths, call=partial(self.layer, directions))
            else:
                x = self.layer(directions, x, lengths)
            if index < len(self.layers) - 1:
                x = self.dropout(x)
        return self.head(self.pool(x, lengths))

    @staticmethod
    def layer(directions: nn.ModuleList, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """One LSTM layer, both directions: (N, T, F) -> (N, T, units * directions)."""
        outputs = [directions[0](x)[0]]
        if len(directions) == 2:
            outputs.append(reverse_within(directions[1](reverse_within(x, lengths))[0], lengths))
        return torch.cat(outputs, dim=2)

    def pool(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(N, T, F) outputs -> (N, F) over each text's real steps only."""
        real = torch.arange(x.shape[1], device=x.device)[None, :, None] < lengths[:, None, None]
        if self.pooling == "max":
            return x.masked_fill(~real, float("-inf")).amax(dim=1)
        if self.pooling == "mean":
            return (x * real).sum(dim=1) / lengths[:, None]
        # last: the forward direction's state at the last token, the backward one's at the first
        last = x.gather(1, (lengths - 1)[:, None, None].expand(-1, 1, x.shape[2])).squeeze(1)
        if len(self.layers[-1]) == 2:
            units = x.shape[2] // 2
            last = torch.cat((last[:, :units], x[:, 0, units:]), dim=1)
        return last


class LSTMClassifier(Classifier):
    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        vocab_size: int | None = None,
        embedding_dim: int = 64,
        lstm_units: int = 64,
        bidirectional: bool = True,
        lstm_layers: int = 1,
        hidden_units: Sequence[int] = (64,),
        dropout: float = 0.3,
        pooling: Literal["max", "mean", "last"] = "max",
        optimizer: Mapping[str, Any] | None = None,
        cpu_threads: int | None = 1,
    ) -> None:
        super().__init__(num_classes, optimizer)
        if not 1 <= lstm_layers <= 4:
            raise ConfigError(f"model.lstm_layers={lstm_layers} must be between 1 and 4.")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"model.dropout={dropout} must be in [0, 1).")
        if pooling not in ("max", "mean", "last"):
            raise ConfigError(f"model.pooling={pooling!r} is not valid: use max, mean or last.")
        if len(input_shape) != 1:
            raise ConfigError(
                f"model=lstm needs token sequences (a text dataset), got inputs of shape {tuple(input_shape)}; "
                "use model=auto or model=cnn for images."
            )
        self.save_hyperparameters()
        self.checkpointing = False
        if vocab_size is not None:
            self._build(vocab_size)

    def _build(self, vocab_size: int) -> None:
        h = self.hparams
        self.net = TextLSTM(
            vocab_size,
            h.num_classes,
            h.embedding_dim,
            h.lstm_units,
            h.bidirectional,
            h.lstm_layers,
            h.hidden_units,
            h.dropout,
            h.pooling,
        )
        self.net.checkpointing = self.checkpointing
        self.hparams["vocab_size"] = vocab_size  # saved with checkpoints: load_from_checkpoint rebuilds it

    def setup(self, stage: str) -> None:
        """Size the embedding to the datamodule's vocabulary (known only once its data is read)."""
        if self.hparams.cpu_threads and self.trainer.strategy.root_device.type == "cpu":
            # An LSTM step is many tiny ops: extra threads only add synchronisation (and stall badly
            # when the cores are shared); restored in teardown.
            self._threads_before = getattr(self, "_threads_before", torch.get_num_threads())
            torch.set_num_threads(self.hparams.cpu_threads)
        data_vocab = getattr(self.trainer.datamodule, "vocab_size", None)
        if data_vocab is None:
            if not hasattr(self, "net"):
                raise ConfigError("model=lstm needs model.vocab_size or a text datamodule that reports vocab_size.")
        elif not hasattr(self, "net"):
            self._build(data_vocab)
        elif data_vocab > self.hparams.vocab_size:
            raise ConfigError(
                f"model.vocab_size={self.hparams.vocab_size} is smaller than the dataset's vocabulary "
                f"({data_vocab} ids): token ids would be out of range. Set model.vocab_size=null (follow the "
                f"dataset) or dataset.vocab_size<={self.hparams.vocab_size}."
            )

    def set_checkpointing(self, enabled: bool) -> None:
        """contracts.Checkpointable: each LSTM layer (both directions) keeps only its inputs while training
        and recomputes its steps in backward: the per-step gate activations of long texts are what an LSTM
        stores most of. Dropout stays outside the recomputed layer."""
        self.checkpointing = bool(enabled)
        if hasattr(self, "net"):
            self.net.checkpointing = self.checkpointing

    def quantized_network(self, calibration: list[torch.Tensor]) -> nn.Module:
        """contracts.QuantizesForInference: dynamic INT8 of a copy of the network (LSTM and Linear weights
        INT8, activations quantized per batch, so `calibration` is not needed); it takes the same token
        batches (lengths come from the padding, as in training). This module is not changed."""
        return dynamic_int8(self.net)

    def teardown(self, stage: str) -> None:
        if hasattr(self, "_threads_before"):
            torch.set_num_threads(self.__dict__.pop("_threads_before"))

    @staticmethod
    def default_budget(datamodule) -> dict[str, int]:
        """Text LSTMs fit in a few passes (IMDB: >= 0.85 test accuracy after 3) and then overfit."""
        return {"max_epochs": 3}
