"""Image datasets read from their official files (downloaded when missing) or a prepared tfds dir."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lightsweep.data.download import cached_arrays, fetch
from lightsweep.data.names import check_file_names, check_name, check_tfds_name
from lightsweep.data.tensors import InMemoryDataModule
from lightsweep.errors import ConfigError

SOURCES = ("files", "tfds")


class ImageDataModule(InMemoryDataModule):
    """An image classification dataset decoded once to uint8 (N, C, H, W) arrays, cached in `cache_dir`
    (None: beside the files in `data_dir`).

    source=files: the official files `files` (name -> SHA-256) in `data_dir`, fetched from `url` + name
    when missing. Subclasses implement `decode()` and may accept an already unpacked copy instead
    (`unpacked_sources()`). source=tfds: the dataset `tfds_name` prepared under `tfds_dir`.
    Pixels become floats in [0, 1]; the base class standardises them per channel.
    """

    modality = "image"
    tfds_label_key = "label"  # the label feature of the tfds version of the dataset

    def __init__(
        self,
        name: str,
        data_dir: str,
        url: str,
        files: Mapping[str, str | None],
        source: str = "files",
        tfds_name: str | None = None,
        tfds_dir: str | None = None,
        cache_dir: str | None = None,
        batch_size: int = 128,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, val_fraction, split_seed, num_workers, pin_memory)
        if source not in SOURCES:
            raise ConfigError(f"dataset.source={source!r} is not one of {'|'.join(SOURCES)}.")
        if source == "tfds" and not (tfds_name and tfds_dir):
            raise ConfigError("dataset.source=tfds needs dataset.tfds_name and dataset.tfds_dir (a prepared data dir).")
        if source == "tfds":
            check_tfds_name(tfds_name)
        # name and file names join paths (cache file, downloads) and URLs: plain names only
        self.name = check_name(name, "dataset.name", "a dataset name", "mnist, fashion_mnist")
        self.files = check_file_names(dict(files), "dataset.files")
        self.data_dir, self.url = Path(data_dir), url
        self.cache_dir = Path(cache_dir) if cache_dir else self.data_dir
        self.source, self.tfds_name, self.tfds_dir = source, tfds_name, tfds_dir

    @property
    def cache_file(self) -> Path:
        """Where the decoded arrays are kept; subclasses add settings that change them to the name."""
        return self.cache_dir / f"{self.name}.arrays.npz"

    def unpacked_sources(self) -> list[Path] | None:
        """The files an already unpacked copy would be read from, or None to use the official files."""
        return None

    def decode(self) -> dict[str, np.ndarray]:
        """{"x_train", "y_train", "x_test", "y_test"} from the files, images as uint8 (N, C, H, W)."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        """Download what is missing (Lightning calls this on one process per node)."""
        if self.source == "files" and self.unpacked_sources() is None:
            for file, sha256 in self.files.items():
                fetch(self.url + file, self.data_dir / file, sha256, f"dataset {self.name}")

    def read_arrays(self) -> dict[str, np.ndarray]:
        """The dataset as uint8 images and labels: from the cache, else decoded from the source (and cached)."""
        if self.source == "tfds":
            from lightsweep.data.tfds_source import read_tfds_images

            return read_tfds_images(self.tfds_name, self.tfds_dir, self.tfds_label_key, self.cache_dir)
        self.prepare_data()  # a no-op when the files are there; setup() may run without it
        sources = self.unpacked_sources() or [self.data_dir / file for file in self.files]
        return cached_arrays(self.cache_file, self.decode, sources)

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        arrays = self.read_arrays()
        pixels = {k: arrays[k].astype(np.float32) / 255.0 for k in ("x_train", "x_test")}
        return pixels["x_train"], arrays["y_train"], pixels["x_test"], arrays["y_test"]
