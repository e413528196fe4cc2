"""In-memory datasets: decoded once to tensors, served a whole batch per index call."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, Dataset

from lightsweep.data.loading import LoadingDataModule
from lightsweep.errors import ConfigError


class TensorBatches(Dataset):
    """Tensors indexed one batch at a time: the DataLoader calls __getitems__ with the batch's indices,
    so a batch is one gather instead of batch_size item lookups plus a collate."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        picked = torch.as_tensor(indices, device=self.tensors[0].device)
        return tuple(t[picked] for t in self.tensors)

    def to(self, device: torch.device) -> TensorBatches:
        return TensorBatches(*(t.to(device) for t in self.tensors))


def keep_batch(batch: Any) -> Any:
    """collate_fn for TensorBatches: the batch is already stacked."""
    return batch


def stratified_split(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_keep, y_keep, x_held, y_held): `fraction` of the samples held out, class proportions kept."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"dataset.{what}={fraction!r} must be between 0 and 1 (exclusive), e.g. 0.1.")
    x_keep, x_held, y_keep, y_held = train_test_split(x, y, test_size=fraction, random_state=seed, stratify=y)
    return x_keep, y_keep, x_held, y_held


class InMemoryDataModule(LoadingDataModule):
    """A classification dataset small enough to live in memory as tensors.

    Subclasses set `modality` and implement `load_arrays()` -> (x_train, y_train, x_test, y_test)
    as numpy arrays; validation is carved from train (stratified, seeded), inputs are standardised
    per channel with training statistics.
    On a GPU the tensors move to it once, so batches are gathered there (no copy per step, and then no
    loader workers or pinning: see loading.py).
    """

    modality = "image"

    def __init__(
        self,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(num_workers=num_workers, pin_memory=pin_memory)
        if batch_size < 1:
            raise ConfigError(f"dataset.batch_size={batch_size} must be at least 1.")
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.splits: dict[str, TensorBatches] = {}

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        x_train, y_train, x_test, y_test = self.load_arrays()
        x_train, y_train, x_val, y_val = stratified_split(
            x_train, y_train, self.val_fraction, self.split_seed, "val_fraction"
        )
        axes = (0,) + tuple(range(2, x_train.ndim))  # all but the channel axis
        mean = x_train.mean(axis=axes, keepdims=True)
        std = x_train.std(axis=axes, keepdims=True) + 1e-8
        for name, x, y in (("train", x_train, y_train), ("val", x_val, y_val), ("test", x_test, y_test)):
            inputs = torch.from_numpy(((x - mean) / std).astype(np.float32))
            self.splits[name] = TensorBatches(inputs, torch.from_numpy(y.astype(np.int64)))
        self.classes = int(max(y_train.max(), y_test.max()) + 1)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.splits["train"].tensors[0].shape[1:])

    @property
    def num_classes(self) -> int:
        return self.classes

    def on_device(self, split: str) -> TensorBatches:
        """The split, moved once to the training GPU when there is one."""
        device = self.training_device()
        if device is not None and device.type == "cuda" and self.splits[split].tensors[0].device != device:
            self.splits[split] = self.splits[split].to(device)
        return self.splits[split]

    def split_loader(self, split: str, **batching: Any) -> DataLoader:
        """A loader of the split (on the training GPU when there is one), batches kept as gathered."""
        dataset = self.on_device(split)
        return self.loader(dataset, dataset.tensors[0].device, collate_fn=keep_batch, **batching)

    def train_dataloader(self) -> DataLoader:
        return self.split_loader("train", batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.split_loader("val", batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return self.split_loader("test", batch_size=self.batch_size)
