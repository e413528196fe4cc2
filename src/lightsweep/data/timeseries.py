"""UCR/UEA time-series classification sets, prepared the way TS2Vec and TimeHUT prepare them
(TS2Vec: datautils.py for loading and normalising, ts2vec.py `fit` for the pre-processing inside `fit`)."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
import zipfile
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import DataLoader

from lightsweep.data.download import OFFLINE_ENV, TIMEOUT_S
from lightsweep.data.loading import LoadingDataModule
from lightsweep.data.names import check_name
from lightsweep.data.tensors import TensorBatches, keep_batch
from lightsweep.data.ucr_formats import SUFFIXES, read_series_file
from lightsweep.errors import ConfigError
from lightsweep.runinfo import write_atomically

# One zip per dataset holding its <name>_TRAIN/_TEST files (the archive site's own per-dataset downloads).
ARCHIVE_URL = "https://www.timeseriesclassification.com/aeon-toolkit/"

# The UCR 2018 sets that the archive stores un-normalised; TS2Vec z-scores them with one global train
# mean/std. Every other UCR set is already z-normalised per series and is used as stored.
NOT_PRE_NORMALISED_UCR = frozenset(
    {
        "AllGestureWiimoteX",
        "AllGestureWiimoteY",
        "AllGestureWiimoteZ",
        "BME",
        "Chinatown",
        "Crop",
        "EOGHorizontalSignal",
        "EOGVerticalSignal",
        "Fungi",
        "GestureMidAirD1",
        "GestureMidAirD2",
        "GestureMidAirD3",
        "GesturePebbleZ1",
        "GesturePebbleZ2",
        "GunPointAgeSpan",
        "GunPointMaleVersusFemale",
        "GunPointOldVersusYoung",
        "HouseTwenty",
        "InsectEPGRegularTrain",
        "InsectEPGSmallTrain",
        "MelbournePedestrian",
        "PickupGestureWiimoteZ",
        "PigAirwayPressure",
        "PigArtPressure",
        "PigCVP",
        "PLAID",
        "PowerCons",
        "Rock",
        "SemgHandGenderCh2",
        "SemgHandMovementCh2",
        "SemgHandSubjectCh2",
        "ShakeGestureWiimoteZ",
        "SmoothSubspace",
        "UMD",
    }
)
# aeon's UnitTest set is Chinatown's train set plus 22 of its test series: raw counts, so it is z-scored too.
Z_SCORED_UCR = NOT_PRE_NORMALISED_UCR | {"UnitTest"}


class TimeSeriesDataModule(LoadingDataModule):
    """A UCR (univariate) or UEA (multivariate) classification set held in memory as tensors.

    After setup(): train_x/test_x (N, T, D) float32 normalised full series (NaN kept) and train_y/test_y.
    train_dataloader() serves the training series after TS2Vec's fit pre-processing as `(x,)` batches;
    test_dataloader() serves [train set, test set] as `(x, y)` batches for the SVM evaluation.
    """

    modality = "timeseries"

    def __init__(
        self,
        name: str,
        data_dir: str,
        archive: Literal["UCR", "UEA"] = "UCR",
        batch_size: int = 8,
        max_train_length: int | None = 3000,
        source: Literal["files", "aeon"] = "files",
        download_url: str = ARCHIVE_URL,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(num_workers=num_workers, pin_memory=pin_memory)
        check_name(name, "dataset.name", "a UCR/UEA dataset name", "Chinatown, PEMS-SF")  # joins a path and a URL
        if archive not in ("UCR", "UEA"):
            raise ConfigError(f"dataset.archive={archive!r} is not valid: use UCR or UEA.")
        if source not in ("files", "aeon"):
            raise ConfigError(f"dataset.source={source!r} is not valid: use files or aeon.")
        if batch_size < 1:
            raise ConfigError(f"dataset.batch_size={batch_size} must be at least 1.")
        if max_train_length is not None and max_train_length < 1:
            raise ConfigError(f"dataset.max_train_length={max_train_length} must be at least 1, or null.")
        self.name, self.data_dir, self.archive, self.source = name, Path(data_dir), archive, source
        self.batch_size, self.max_train_length, self.download_url = batch_size, max_train_length, download_url
        self.train_x: torch.Tensor | None = None
        self.train_y: torch.Tensor | None = None
        self.test_x: torch.Tensor | None = None
        self.test_y: torch.Tensor | None = None
        self.fit_x: torch.Tensor | None = None  # train_x after the fit pre-processing (what training sees)
        self.classes: list[str] = []

    def setup(self, stage: str | None = None) -> None:
        if self.train_x is not None:
            return
        train_path, test_path = self.split_files()
        x_train, train_labels = read_series_file(train_path)
        x_test, test_labels = read_series_file(test_path)
        if x_test.shape[2] != x_train.shape[2]:
            raise ConfigError(
                f"{test_path} has {x_test.shape[2]} channels, {train_path} has {x_train.shape[2]}: use the "
                "archive's own TRAIN/TEST pair."
            )
        if self.archive == "UCR" and x_train.shape[2] > 1:
            raise ConfigError(
                f"dataset {self.name} has {x_train.shape[2]} channels but UCR sets are univariate: "
                "set dataset.archive=UEA."
            )
        self.classes = class_order(train_labels, self.archive)
        y_train = encode_labels(train_labels, self.classes, train_path)
        y_test = encode_labels(test_labels, self.classes, test_path)
        x_train, x_test = normalise(x_train, x_test, self.archive, self.name)
        fit_x = prepare_for_fit(x_train, self.max_train_length)
        if len(fit_x) == 0:
            raise ConfigError(f"{train_path}: every training series is entirely missing (NaN).")
        self.train_x, self.test_x, self.fit_x = (_float32(a) for a in (x_train, x_test, fit_x))
        self.train_y, self.test_y = torch.from_numpy(y_train), torch.from_numpy(y_test)

    def split_files(self) -> tuple[Path, Path]:
        """TRAIN and TEST files: aeon's shipped copy, or <data_dir>/<archive>/<name>/ (downloaded if absent)."""
        if self.source == "aeon":
            folder = aeon_data_dir() / self.name
            found = find_split_files(folder, self.name)
            if found is None:
                raise ConfigError(
                    f"dataset.name={self.name!r} is not shipped with aeon (dataset.source=aeon). Shipped sets: "
                    f"{', '.join(aeon_shipped_sets())}. Pick one, or use dataset.source=files."
                )
            return found
        folder = self.data_dir / self.archive / self.name
        url = f"{self.download_url.rstrip('/')}/{self.name}.zip"
        return find_split_files(folder, self.name) or download_split_files(self.name, self.archive, folder, url)

    @property
    def input_shape(self) -> tuple[int, int]:
        """(T, D) of the training series (a variable-length test set may be longer)."""
        return tuple(self.train_x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def train_dataloader(self) -> DataLoader:
        # TS2Vec: shuffled, drop_last (so the contrastive loss never sees a 1-sample batch), batch <= N.
        return self.loader(
            TensorBatches(self.fit_x),
            self.fit_x.device,
            batch_size=min(self.batch_size, len(self.fit_x)),
            shuffle=True,
            drop_last=True,
            collate_fn=keep_batch,
        )

    def test_dataloader(self) -> list[DataLoader]:
        """[train set, test set], in order: the model embeds both and fits its SVM on the first."""
        return [
            self.loader(TensorBatches(x, y), x.device, batch_size=self.batch_size, collate_fn=keep_batch)
            for x, y in ((self.train_x, self.train_y), (self.test_x, self.test_y))
        ]


def find_split_files(folder: Path, name: str) -> tuple[Path, Path] | None:
    """<name>_TRAIN and _TEST with the first suffix (tsv, ts, arff) for which both exist."""
    for suffix in SUFFIXES:
        train, test = folder / f"{name}_TRAIN.{suffix}", folder / f"{name}_TEST.{suffix}"
        if train.is_file() and test.is_file():
            return train, test
    return None


def download_split_files(name: str, archive: str, folder: Path, url: str) -> tuple[Path, Path]:
    """Fetch the dataset's zip and unpack its TRAIN/TEST files into `folder` (offline: only say where they
    go). Each file is written beside its final name and renamed into place, so a failure never leaves a
    half-written file."""
    wanted = {f"{name}_{split}.{suffix}" for split in ("TRAIN", "TEST") for suffix in SUFFIXES}
    folder = folder.resolve()
    by_hand = (
        f"Download that zip and unzip {name}_TRAIN.ts and {name}_TEST.ts into {folder}, or set paths.data_dir "
        f"to a folder holding {archive}/{name}/."
    )
    missing = f"{archive} dataset {name}: {name}_TRAIN and {name}_TEST (.tsv, .ts or .arff) are not in {folder}"
    if os.environ.get(OFFLINE_ENV) == "1":
        raise ConfigError(f"{missing} and {OFFLINE_ENV}=1 forbids downloading {url}. {by_hand}")
    try:
        with tempfile.TemporaryDirectory() as scratch:
            local_zip = Path(scratch) / f"{name}.zip"
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
                with local_zip.open("wb") as out:
                    shutil.copyfileobj(response, out)  # streamed: some archive zips are hundreds of MB
            unpack_members(local_zip, wanted, folder)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:  # URLError, HTTPError and timeouts are OSErrors
        reason = f"download failed: {getattr(exc, 'reason', exc)}"
    else:
        found = find_split_files(folder, name)
        if found is not None:
            return found
        reason = f"the zip holds no {name}_TRAIN/_TEST pair"
    raise ConfigError(f"{missing} and fetching {url} failed ({reason}). {by_hand}")


def unpack_members(local_zip: Path, wanted: set[str], folder: Path) -> None:
    """Copy the zip's members whose file name is in `wanted` (at any depth) into `folder`, atomically."""
    with zipfile.ZipFile(local_zip) as bundle:
        members = {Path(m).name: m for m in bundle.namelist() if Path(m).name in wanted}
        for file_name, member in members.items():
            folder.mkdir(parents=True, exist_ok=True)
            with bundle.open(member) as source:
                write_atomically(folder / file_name, partial(shutil.copyfileobj, source))


def aeon_data_dir() -> Path:
    """The folder of real datasets shipped inside the aeon wheel (read offline)."""
    try:
        import aeon
    except ImportError:
        raise ConfigError(
            "dataset.source=aeon needs aeon: pip install 'aeon==1.6.0' (the project's timeseries extra)."
        ) from None
    return Path(aeon.__file__).parent / "datasets" / "data"


def aeon_shipped_sets() -> list[str]:
    folder = aeon_data_dir()
    return sorted(d.name for d in folder.iterdir() if find_split_files(d, d.name) is not None)


def class_order(train_labels: np.ndarray, archive: str) -> list[str]:
    """Sorted unique train labels. TS2Vec reads UCR labels as numbers (so '10' sorts after '9') and
    UEA labels as strings."""
    classes = sorted(set(train_labels.tolist()))
    if archive == "UCR" and all(_is_number(c) for c in classes):
        classes.sort(key=float)
    return classes


def encode_labels(labels: np.ndarray, classes: list[str], path: Path) -> np.ndarray:
    """Class indices 0..L-1 in the order of `classes`."""
    index = {label: i for i, label in enumerate(classes)}
    unseen = sorted(set(labels.tolist()) - index.keys())
    if unseen:
        raise ConfigError(f"{path}: labels {unseen} never occur in the training set (classes: {classes}).")
    return np.array([index[label] for label in labels], dtype=np.int64)


def normalise(x_train: np.ndarray, x_test: np.ndarray, archive: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Train statistics applied to both splits: UEA per channel (StandardScaler over every train
    timestamp, NaN ignored); UCR one global scalar for the raw-valued sets only."""
    if archive == "UEA":
        flat = x_train.reshape(-1, x_train.shape[2])
        mean, std = np.nanmean(flat, axis=0), np.nanstd(flat, axis=0)
        std = np.where(std == 0, 1.0, std)  # a constant channel is only centred, as StandardScaler does
    elif name in Z_SCORED_UCR:
        mean, std = np.nanmean(x_train), np.nanstd(x_train)
    else:
        return x_train, x_test
    return (x_train - mean) / std, (x_test - mean) / std


def prepare_for_fit(x: np.ndarray, max_train_length: int | None) -> np.ndarray:
    """TS2Vec's fit pre-processing, in its order: split long series, re-centre padded ones, drop empty ones."""
    x = split_long_series(x, max_train_length)
    x = centre_padded_series(x)
    return x[~np.isnan(x).all(axis=(1, 2))]


def split_long_series(x: np.ndarray, max_train_length: int | None) -> np.ndarray:
    """Cut each series into T // max_train_length nearly-equal time sections (as np.array_split),
    NaN-pad each to the first section's length and stack them as extra samples."""
    if max_train_length is None or x.shape[1] // max_train_length < 2:
        return x
    sections = np.array_split(x, x.shape[1] // max_train_length, axis=1)
    width = sections[0].shape[1]
    padded = [np.pad(s, ((0, 0), (0, width - s.shape[1]), (0, 0)), constant_values=np.nan) for s in sections]
    return np.concatenate(padded, axis=0)


def centre_padded_series(x: np.ndarray) -> np.ndarray:
    """When any series starts or ends with an all-NaN timestamp, shift every series circularly so its
    leading padding becomes half (rounded down) of its leading + trailing padding."""
    empty = np.isnan(x).all(axis=2)  # (N, T): timestamps where every channel is missing
    if not (empty[:, 0].any() or empty[:, -1].any()):
        return x
    n, t = empty.shape
    leading = np.argmax(~empty, axis=1)
    trailing = np.argmax(~empty[:, ::-1], axis=1)
    shift = (leading + trailing) // 2 - leading
    source = (np.arange(t)[None, :] - shift[:, None]) % t
    return x[np.arange(n)[:, None], source]


def _float32(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.astype(np.float32))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
