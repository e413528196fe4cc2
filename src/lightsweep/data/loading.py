"""How every datamodule's DataLoaders load: worker processes and pinned memory (`dataset.num_workers`,
`dataset.pin_memory`), checked once, resolved against where the data and the training live, and recorded
in `loader_settings` so a run can report what it really used."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from lightsweep.errors import ConfigError


def check_loader_options(num_workers: Any, pin_memory: Any) -> None:
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ConfigError(
            f"dataset.num_workers={num_workers!r} is not valid: use a whole number >= 0 "
            "(0: batches are loaded in the training process; e.g. +dataset.num_workers=2)."
        )
    if not isinstance(pin_memory, bool):
        raise ConfigError(f"dataset.pin_memory={pin_memory!r} is not valid: use true or false.")


def resolve_loader_settings(
    num_workers: int, pin_memory: bool, data_device: torch.device, train_device: torch.device | None
) -> dict[str, Any]:
    """{num_workers, pin_memory, reason}: what the loaders use, and why (None) it differs from what was
    asked. `train_device` None: not known yet (no trainer), then CUDA being present decides pinning."""
    reasons = []
    if data_device.type == "cuda":
        # Worker processes cannot serve tensors that live on the GPU, and they are already there.
        if num_workers or pin_memory:
            reasons.append(f"the data lives on {data_device} (moved there once): no workers or pinning needed")
        num_workers, pin_memory = 0, False
    elif pin_memory and not (torch.cuda.is_available() if train_device is None else train_device.type == "cuda"):
        # Said once here instead of torch warning at every epoch that pinning does nothing.
        reasons.append(f"pin_memory speeds up copies to a CUDA GPU only; training runs on {train_device or 'cpu'}")
        pin_memory = False
    return {"num_workers": num_workers, "pin_memory": pin_memory, "reason": "; ".join(reasons) or None}


class SteadyLoader(DataLoader):
    """A DataLoader whose use of the global RNG does not depend on its workers, so batches, their order
    and every later random draw of training are the same with num_workers=0 and num_workers=N.

    Each fresh iterator draws one number from `generator` (the global RNG by default) to seed its
    workers; with persistent workers the iterator is reused from the second epoch on and would skip that
    draw, shifting everything random after it. Reusing one makes the same draw."""

    def __iter__(self) -> Any:
        if self._iterator is not None:  # set only when persistent workers are kept
            torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        return super().__iter__()


class LoadingDataModule(L.LightningDataModule):
    """A datamodule whose loaders all follow `num_workers` (worker processes, kept between epochs) and
    `pin_memory` (page-locked batches for fast copies to a CUDA GPU); `loader_settings` says what the
    latest loader used."""

    def __init__(self, num_workers: int = 0, pin_memory: bool = False) -> None:
        super().__init__()
        check_loader_options(num_workers, pin_memory)
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.loader_settings = resolve_loader_settings(num_workers, pin_memory, torch.device("cpu"), None)

    def training_device(self) -> torch.device | None:
        return self.trainer.strategy.root_device if self.trainer is not None else None

    def loader(self, dataset: Dataset, data_device: torch.device, **batching: Any) -> DataLoader:
        """A loader of `dataset` (whose tensors are on `data_device`) batched by `batching` (DataLoader's
        batch_size, shuffle, drop_last, batch_sampler, collate_fn)."""
        self.loader_settings = resolve_loader_settings(
            self.num_workers, self.pin_memory, data_device, self.training_device()
        )
        workers = self.loader_settings["num_workers"]
        return SteadyLoader(
            dataset,
            num_workers=workers,
            persistent_workers=workers > 0,  # not re-spawned every epoch
            pin_memory=self.loader_settings["pin_memory"],
            **batching,
        )
