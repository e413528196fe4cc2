"""Dataset readers on real files and the in-memory datamodules' splits."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from conftest import shared_data
from lightsweep.data.digits import DigitsDataModule
from lightsweep.data.idx_images import IdxImageDataModule, read_idx
from lightsweep.errors import ConfigError


def test_digits_splits_are_stratified_disjoint_and_fixed():
    first, second = DigitsDataModule(split_seed=0), DigitsDataModule(split_seed=0)
    first.setup(), second.setup()
    sizes = {k: len(v) for k, v in first.splits.items()}
    assert sum(sizes.values()) == 1797 and sizes["test"] == 360
    assert first.input_shape == (1, 8, 8) and first.num_classes == 10
    for split in ("train", "val", "test"):
        assert (first.splits[split].tensors[0] == second.splits[split].tensors[0]).all()
    counts = np.bincount(first.splits["val"].tensors[1].numpy(), minlength=10)
    assert counts.min() >= 12  # every class is in validation
    train = first.splits["train"].tensors[0]
    assert abs(float(train.mean())) < 1e-4 and abs(float(train.std()) - 1) < 0.05


def test_batches_are_gathered_whole():
    module = DigitsDataModule(batch_size=50)
    module.setup()
    inputs, labels = next(iter(module.train_dataloader()))
    assert inputs.shape == (50, 1, 8, 8) and labels.shape == (50,)


def test_bad_fraction_is_a_config_error():
    with pytest.raises(ConfigError, match="dataset.val_fraction=1.5"):
        DigitsDataModule(val_fraction=1.5).setup()


def test_real_mnist_idx_files():
    folder = shared_data("mnist")
    images = read_idx(folder / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    assert set(np.unique(labels)) == set(range(10))


def test_mnist_module_keeps_the_official_test_set(cache_dir):
    folder = shared_data("mnist")
    module = IdxImageDataModule(
        "mnist", str(folder), "https://example.invalid/", val_fraction=0.1, cache_dir=str(cache_dir)
    )  # never beside the shared files
    module.setup()
    assert len(module.splits["test"]) == 10000 and len(module.splits["train"]) == 54000


def test_truncated_idx_file_is_reported(tmp_path):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"\x00\x00\x08\x01" + (100).to_bytes(4, "big") + b"\x01" * 10)
    with pytest.raises(ConfigError, match="truncated"):
        read_idx(path)
