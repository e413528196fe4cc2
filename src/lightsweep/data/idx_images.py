"""Image datasets in the IDX format of MNIST and Fashion-MNIST (four .gz files, official test set kept)."""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lightsweep.data.images import ImageDataModule
from lightsweep.errors import ConfigError

FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}


def read_idx(path: Path) -> np.ndarray:
    """Decode an IDX file (gzipped): magic 0x0000 + dtype code + ndim, big-endian dims, raw data."""
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ConfigError(f"{path} is not an unsigned-byte IDX file (bad header {raw[:4].hex()}).")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ConfigError(f"{path} is truncated: header says {shape}, found {data.size} values.")
    return data.reshape(shape)


class IdxImageDataModule(ImageDataModule):
    """The four official IDX files in data_dir; `files` maps each name to its SHA-256 (None: unchecked)."""

    def __init__(
        self, name: str, data_dir: str, url: str, files: Mapping[str, str | None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(name, data_dir, url, files or dict.fromkeys(FILES.values()), **kwargs)
        if set(self.files) != set(FILES.values()):  # decode() reads exactly these four
            raise ConfigError(
                f"dataset.files must list exactly the four IDX files {sorted(FILES.values())}; "
                f"got {sorted(self.files)}."
            )

    def decode(self) -> dict[str, np.ndarray]:
        arrays = {key: read_idx(self.data_dir / file) for key, file in FILES.items()}
        for key in ("x_train", "x_test"):
            arrays[key] = arrays[key][:, None]  # one grey channel
        return arrays
