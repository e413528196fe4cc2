"""Image datasets in their official formats: tiny CIFAR/GTSRB copies written here, real MNIST/Fashion-MNIST."""

from __future__ import annotations

import io
import pickle
import re
import tarfile
import zipfile

import numpy as np
import pytest

from conftest import SHARED_DATA, cli, shared_data
from lightsweep.build import build
from lightsweep.config import compose
from lightsweep.data.cifar import Cifar10DataModule
from lightsweep.errors import ConfigError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


def datamodule(overrides, tmp_path):
    """The dataset node of the real composed config, built (not set up)."""
    return build(compose(overrides, output_dir=tmp_path / "out").dataset)


# --- CIFAR: Python-2 style pickles (bytes keys, uint8 rows of R, G, B planes) -------------------------


def cifar_batch(n: int, seed: int, label_keys: tuple[str, ...], classes: int) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    batch = {b"batch_label": b"batch", b"data": images.reshape(n, 3072), b"filenames": [b"x.png"] * n}
    for key in label_keys:
        batch[key.encode()] = [int(v) for v in np.arange(n) % classes]
    return batch, images


def write_cifar10(folder, per_batch: int = 20) -> np.ndarray:
    """cifar-10-batches-py/ and cifar-10-python.tar.gz in folder; returns the training images."""
    unpacked = folder / "cifar-10-batches-py"
    unpacked.mkdir(parents=True)
    train = []
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        batch, images = cifar_batch(per_batch, i, ("labels",), 10)
        (unpacked / name).write_bytes(pickle.dumps(batch, protocol=2))
        train += [images] if name != "test_batch" else []
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(unpacked, arcname="cifar-10-batches-py")
    return np.concatenate(train)


def test_cifar10_archive_and_unpacked_folder_decode_alike(tmp_path):
    images = write_cifar10(tmp_path / "cifar10")
    module = Cifar10DataModule("cifar10", str(tmp_path / "cifar10"), "unused/", {"cifar-10-python.tar.gz": None})
    from_folder = module.decode()
    np.testing.assert_array_equal(from_folder["x_train"], images)  # planes land as channels R, G, B
    assert from_folder["y_train"][:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert from_folder["x_test"].shape == (20, 3, 32, 32)
    (tmp_path / "cifar10" / "cifar-10-batches-py" / "test_batch").unlink()  # now only the archive is whole
    from_archive = module.decode()
    for key, value in from_folder.items():
        np.testing.assert_array_equal(from_archive[key], value)


def test_cifar100_fine_and_coarse_labels(tmp_path):
    folder = tmp_path / "cifar100" / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n in (("train", 200), ("test", 100)):
        batch, _ = cifar_batch(n, 0, ("fine_labels",), 100)
        batch[b"coarse_labels"] = [v // 5 for v in batch[b"fine_labels"]]
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    for labels, classes in (("fine", 100), ("coarse", 20)):
        module = datamodule(
            ["dataset=cifar100", f"paths.data_dir={tmp_path}", f"dataset.labels={labels}", "dataset.val_fraction=0.5"],
            tmp_path,
        )
        module.setup()
        assert module.num_classes == classes and module.input_shape == (3, 32, 32)
        assert len(module.splits["test"]) == 100 and len(module.splits["val"]) == 100
        assert (module.cache_dir / f"cifar100-{labels}_labels.arrays.npz").is_file()


def test_a_pickle_that_would_run_code_is_refused(tmp_path, capsys):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    write_cifar10(tmp_path / "cifar10")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    module = Cifar10DataModule("cifar10", str(tmp_path / "cifar10"), "unused/", {"cifar-10-python.tar.gz": None})
    with pytest.raises(ConfigError, match=r"data_batch_3 is not a CIFAR python batch .*unexpected object \w+\.print"):
        module.decode()
    assert "pwned" not in capsys.readouterr().out


@pytest.mark.slow
def test_cifar10_trains_through_the_real_config(tmp_path, run_cfg):
    write_cifar10(tmp_path / "data" / "cifar10")
    result, record = run_cfg(
        ["dataset=cifar10", f"paths.data_dir={tmp_path / 'data'}", "trainer.max_epochs=1", "dataset.batch_size=32"]
    )
    assert result.model_family == "cnn" and record["status"] == "ok"
    assert record["metrics"]["test/loss"] > 0


@pytest.mark.slow
def test_cifar10_missing_offline_is_one_line_with_path_and_official_url(tmp_path):  # offline (conftest)
    proc = cli("dataset=cifar10", f"paths.data_dir={tmp_path}")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert str(tmp_path / "cifar10" / "cifar-10-python.tar.gz") in lines[0] and CIFAR10_URL in lines[0]


# --- GTSRB: PPM images in class folders with ';'-separated CSV annotations --------------------------

HEADER = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n"


def sign_ppm(width: int, height: int, roi: tuple[int, int, int, int]) -> bytes:
    """A blue image with a red sign inside the (inclusive) ROI corners, encoded as PPM like the originals."""
    from PIL import Image

    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[..., 2] = 255
    x1, y1, x2, y2 = roi
    pixels[y1 : y2 + 1, x1 : x2 + 1] = (255, 0, 0)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PPM")
    return buffer.getvalue()


def write_gtsrb(folder, classes: int = 3, per_class: int = 4, test: int = 6) -> None:
    """The three official zips (GTSRB_Final_*.zip) with their real member layout."""
    folder.mkdir(parents=True)
    roi, size = (5, 6, 30, 33), (40, 42)
    with zipfile.ZipFile(folder / "GTSRB_Final_Training_Images.zip", "w") as train:
        for c in range(classes):
            rows = HEADER
            for i in range(per_class):
                name = f"{i // 2:05d}_{i % 2:05d}.ppm"
                train.writestr(f"GTSRB/Final_Training/Images/{c:05d}/{name}", sign_ppm(*size, roi))
                rows += f"{name};{size[0]};{size[1]};{';'.join(map(str, roi))};{c}\n"
            train.writestr(f"GTSRB/Final_Training/Images/{c:05d}/GT-{c:05d}.csv", rows)
    truth = HEADER
    with zipfile.ZipFile(folder / "GTSRB_Final_Test_Images.zip", "w") as test_zip:
        for i in range(test):
            test_zip.writestr(f"GTSRB/Final_Test/Images/{i:05d}.ppm", sign_ppm(*size, roi))
            truth += f"{i:05d}.ppm;{size[0]};{size[1]};{';'.join(map(str, roi))};{i % classes}\n"
        test_zip.writestr("GTSRB/Final_Test/Images/GT-final_test.test.csv", HEADER.replace(";ClassId", ""))
    with zipfile.ZipFile(folder / "GTSRB_Final_Test_GT.zip", "w") as gt:
        gt.writestr("GT-final_test.csv", truth)


def test_gtsrb_zips_and_unpacked_folders_decode_alike(tmp_path):
    write_gtsrb(tmp_path / "gtsrb")
    module = datamodule(["dataset=gtsrb", f"paths.data_dir={tmp_path}", "dataset.image_size=16"], tmp_path)
    arrays = module.decode()
    assert arrays["x_train"].shape == (12, 3, 16, 16) and arrays["x_test"].shape == (6, 3, 16, 16)
    assert arrays["y_train"].tolist() == [0] * 4 + [1] * 4 + [2] * 4 and arrays["y_test"].tolist() == [0, 1, 2] * 2
    red, blue = arrays["x_train"][:, 0], arrays["x_train"][:, 2]
    assert red.min() == 255 and blue.max() == 0  # cropped to the sign's box: no background left
    for name in ("GTSRB_Final_Training_Images.zip", "GTSRB_Final_Test_Images.zip", "GTSRB_Final_Test_GT.zip"):
        with zipfile.ZipFile(module.data_dir / name) as archive:
            archive.extractall(module.data_dir)
        (module.data_dir / name).unlink()
    assert module.unpacked_sources() is not None
    for key, value in module.decode().items():
        np.testing.assert_array_equal(value, arrays[key])


def test_gtsrb_without_roi_crop_keeps_the_background(tmp_path):
    write_gtsrb(tmp_path / "gtsrb", classes=2, per_class=2, test=2)
    module = datamodule(["dataset=gtsrb", f"paths.data_dir={tmp_path}", "dataset.crop_to_roi=false"], tmp_path)
    assert module.decode()["x_train"][:, 2].max() == 255


# --- real MNIST / Fashion-MNIST files ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_real_idx_dataset_splits_and_cache(name, tmp_path, cache_dir):
    shared_data(name)
    module = datamodule([f"dataset={name}", f"paths.data_dir={SHARED_DATA}", "dataset.val_fraction=0.2"], tmp_path)
    module.setup()
    assert module.input_shape == (1, 28, 28) and module.num_classes == 10
    assert {k: len(v) for k, v in module.splits.items()} == {"train": 48000, "val": 12000, "test": 10000}
    val_counts = np.bincount(module.splits["val"].tensors[1].numpy(), minlength=10)
    train_counts = np.bincount(module.splits["train"].tensors[1].numpy(), minlength=10)
    np.testing.assert_allclose(val_counts / 12000, train_counts / 48000, atol=1e-3)  # stratified
    train = module.splits["train"].tensors[0]
    assert abs(float(train.mean())) < 1e-3 and abs(float(train.std()) - 1) < 1e-2  # standardised
    assert (cache_dir / name / f"{name}.arrays.npz").is_file()  # conftest's cache dir, not the shared folder


def test_unknown_source_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("dataset.source='hub' is not one of files|tfds")):
        datamodule(["dataset=cifar10", "dataset.source=hub"], tmp_path)


@pytest.mark.gpu
@pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA GPU")
def test_on_a_gpu_the_tensors_move_there_once():
    """Batches are gathered on the GPU from tensors placed there by the loaders (no per-step copy)."""
    import lightning as L

    from lightsweep.data.digits import DigitsDataModule

    module = DigitsDataModule(batch_size=32)
    module.setup()
    module.trainer = L.Trainer(accelerator="gpu", devices=1, logger=False)
    inputs, labels = next(iter(module.train_dataloader()))
    assert inputs.is_cuda and labels.is_cuda and module.splits["train"].tensors[0].is_cuda
