"""CIFAR-10 and CIFAR-100 from the official "python version": pickled batches, unpacked or in the .tar.gz."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from lightsweep.data.images import ImageDataModule
from lightsweep.errors import ConfigError

# What a batch pickle may reference: numpy's array reconstruction, nothing else (pickles can run code).
# _codecs.encode is how Python 3 writes bytes at the official files' protocol 2 (a re-saved copy).
SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in a CIFAR batch")
        return super().find_class(module, name)


def read_batch(raw: bytes, label_key: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 3, 32, 32), labels) from one batch pickle (written by Python 2: bytes keys)."""
    try:
        batch = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
        data, labels = batch[b"data"], batch[label_key.encode()]
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where} is not a CIFAR python batch with {label_key!r} ({exc}).") from exc
    images = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32)  # rows are R plane, G plane, B plane
    return images, np.asarray(labels, dtype=np.int64)


class CifarDataModule(ImageDataModule):
    """`folder` holds the batches `train_batches` and `test_batch`, either unpacked in data_dir/<folder>/
    or inside the official archive (the single entry of `files`), read without extracting it."""

    folder: str
    train_batches: tuple[str, ...]
    test_batch: str
    label_key = "labels"

    def unpacked_sources(self) -> list[Path] | None:
        names = (*self.train_batches, self.test_batch)
        paths = [self.data_dir / self.folder / name for name in names]
        return paths if all(p.is_file() for p in paths) else None

    def decode(self) -> dict[str, np.ndarray]:
        names = (*self.train_batches, self.test_batch)
        if self.unpacked_sources():
            where = self.data_dir / self.folder
            raw = {name: (where / name).read_bytes() for name in names}
        else:
            where = self.data_dir / next(iter(self.files))
            raw = _read_members(where, self.folder, names)
        x_y = {name: read_batch(raw[name], self.label_key, f"{where}/{name}") for name in names}
        train = [x_y[name] for name in self.train_batches]
        return {
            "x_train": np.concatenate([x for x, _ in train]),
            "y_train": np.concatenate([y for _, y in train]),
            "x_test": x_y[self.test_batch][0],
            "y_test": x_y[self.test_batch][1],
        }


def _read_members(archive: Path, folder: str, names: tuple[str, ...]) -> dict[str, bytes]:
    """The named files of `folder` in a .tar.gz, in one pass (seeking back in a gzip stream re-reads it)."""
    wanted = {f"{folder}/{name}": name for name in names}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    found[wanted[member.name]] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ConfigError(f"{archive} cannot be read as a .tar.gz ({exc}); delete it to download it again.") from exc
    missing = [name for name in names if name not in found]
    if missing:
        raise ConfigError(f"{archive} lacks {folder}/{missing[0]}: not the official CIFAR python archive.")
    return found


class Cifar10DataModule(CifarDataModule):
    folder = "cifar-10-batches-py"
    train_batches = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_batch = "test_batch"


class Cifar100DataModule(CifarDataModule):
    folder = "cifar-100-python"
    train_batches = ("train",)
    test_batch = "test"
    LABELS = ("fine", "coarse")

    def __init__(self, *args: Any, labels: str = "fine", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if labels not in self.LABELS:
            raise ConfigError(f"dataset.labels={labels!r} is not one of {'|'.join(self.LABELS)}.")
        self.label_key = f"{labels}_labels"
        self.tfds_label_key = "label" if labels == "fine" else "coarse_label"

    @property
    def cache_file(self) -> Path:
        return self.cache_dir / f"{self.name}-{self.label_key}.arrays.npz"
