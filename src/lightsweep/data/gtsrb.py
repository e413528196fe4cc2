"""GTSRB (German Traffic Sign Recognition Benchmark), official release: PPM images + CSV annotations.

The three official zips (training images, test images, test ground truth) are read as they are, or
their unpacked copy in the same folder: GTSRB/Final_Training/Images/<class>/{GT-<class>.csv,*.ppm},
GTSRB/Final_Test/Images/*.ppm and GT-final_test.csv (Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId).
"""

from __future__ import annotations

import csv
import io
import zipfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from lightsweep.data.images import ImageDataModule
from lightsweep.errors import ConfigError

TRAIN_ZIP = "GTSRB_Final_Training_Images.zip"
TEST_ZIP, TEST_GT_ZIP = "GTSRB_Final_Test_Images.zip", "GTSRB_Final_Test_GT.zip"
TRAIN_IMAGES, TEST_IMAGES, TEST_GT = "GTSRB/Final_Training/Images", "GTSRB/Final_Test/Images", "GT-final_test.csv"


class GTSRBDataModule(ImageDataModule):
    def __init__(self, *args: Any, image_size: int = 32, crop_to_roi: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if image_size < 8:
            raise ConfigError(f"dataset.image_size={image_size} is too small: use at least 8 (e.g. 32).")
        missing = {TRAIN_ZIP, TEST_ZIP, TEST_GT_ZIP} - set(self.files)
        if missing:
            raise ConfigError(f"dataset.files lacks the official GTSRB archives {sorted(missing)}.")
        self.image_size, self.crop_to_roi = image_size, crop_to_roi

    @property
    def cache_file(self) -> Path:
        return self.cache_dir / f"{self.name}-{self.image_size}px{'-roi' if self.crop_to_roi else ''}.arrays.npz"

    def unpacked_sources(self) -> list[Path] | None:
        train = self.data_dir / TRAIN_IMAGES
        if not ((self.data_dir / TEST_IMAGES).is_dir() and (self.data_dir / TEST_GT).is_file() and train.is_dir()):
            return None
        return sorted(train.glob("*/GT-*.csv")) + [self.data_dir / TEST_GT]

    def _roots(self, stack: ExitStack) -> tuple[Any, Any, Any]:
        """Training image folder, test image folder, test annotations: paths or zipfile.Paths."""
        if self.unpacked_sources():
            return self.data_dir / TRAIN_IMAGES, self.data_dir / TEST_IMAGES, self.data_dir / TEST_GT
        try:
            opened = {
                name: stack.enter_context(zipfile.ZipFile(self.data_dir / name))
                for name in (TRAIN_ZIP, TEST_ZIP, TEST_GT_ZIP)
            }
        except zipfile.BadZipFile as exc:
            raise ConfigError(
                f"dataset {self.name}: a file in {self.data_dir} is not a zip ({exc}); delete it to download it again."
            ) from exc
        return (
            zipfile.Path(opened[TRAIN_ZIP], TRAIN_IMAGES + "/"),
            zipfile.Path(opened[TEST_ZIP], TEST_IMAGES + "/"),
            zipfile.Path(opened[TEST_GT_ZIP], TEST_GT),
        )

    def decode(self) -> dict[str, np.ndarray]:
        with ExitStack() as stack:
            train_root, test_root, test_annotations = self._roots(stack)
            class_dirs = sorted((d for d in train_root.iterdir() if d.is_dir()), key=lambda d: d.name)
            if not class_dirs:
                raise ConfigError(f"dataset {self.name}: no class folders in {train_root}.")
            train = [self._read_annotated(d, d / f"GT-{d.name}.csv") for d in class_dirs]
            x_test, y_test = self._read_annotated(test_root, test_annotations)
        return {
            "x_train": np.concatenate([x for x, _ in train]),
            "y_train": np.concatenate([y for _, y in train]),
            "x_test": x_test,
            "y_test": y_test,
        }

    def _read_annotated(self, folder: Any, annotations: Any) -> tuple[np.ndarray, np.ndarray]:
        """The images an annotation CSV lists (in `folder`), as uint8 (N, 3, size, size), and their classes."""
        if not annotations.is_file():
            raise ConfigError(f"dataset {self.name}: annotations {annotations} are missing.")
        rows = list(csv.DictReader(io.StringIO(annotations.read_text()), delimiter=";"))
        try:
            images = np.stack([self._image((folder / row["Filename"]).read_bytes(), row) for row in rows])
            labels = np.array([int(row["ClassId"]) for row in rows], dtype=np.int64)
        except (KeyError, ValueError, FileNotFoundError) as exc:
            raise ConfigError(f"dataset {self.name}: {annotations} does not match its images ({exc}).") from exc
        return images, labels

    def _image(self, raw: bytes, row: dict[str, str]) -> np.ndarray:
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as image:
            image = image.convert("RGB")
            if self.crop_to_roi:  # the sign's bounding box (inclusive corners) from the annotations
                x1, y1, x2, y2 = (int(row[k]) for k in ("Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2"))
                image = image.crop((x1, y1, x2 + 1, y2 + 1))
            image = image.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)
