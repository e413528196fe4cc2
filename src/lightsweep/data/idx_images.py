"""Image datasets in the IDX format of MNIST and Fashion-MNIST (four .gz files, official test set kept)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from lightsweep.data.tensors import InMemoryDataModule
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


class IdxImageDataModule(InMemoryDataModule):
    modality = "image"

    def __init__(
        self, name: str, data_dir: str, url: str, batch_size: int = 128, val_fraction: float = 0.1,
        split_seed: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, split_seed=split_seed)
        self.name, self.data_dir, self.url = name, Path(data_dir), url

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        missing = [f for f in FILES.values() if not (self.data_dir / f).is_file()]
        if missing:
            raise ConfigError(
                f"dataset {self.name}: missing {', '.join(missing)} in {self.data_dir.resolve()}. "
                f"Download them from {self.url} into that folder, or point paths.data_dir at a folder "
                f"holding {self.name}/."
            )
        arrays = {key: read_idx(self.data_dir / f) for key, f in FILES.items()}
        images = {k: arrays[k][:, None].astype(np.float32) / 255.0 for k in ("x_train", "x_test")}
        return images["x_train"], arrays["y_train"], images["x_test"], arrays["y_test"]
