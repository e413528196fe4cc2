"""dataset.source=tfds: a dataset prepared by tensorflow-datasets (array_record or parquet files), read with
`tfds.data_source` -- random access in plain numpy, no TensorFlow needed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lightsweep.data.download import cached_arrays
from lightsweep.data.names import check_tfds_name
from lightsweep.errors import ConfigError, first_line

SPLITS = ("train", "test")
CHUNK = 1024  # records decoded per call


def read_tfds(name: str, tfds_dir: str | Path, columns: Mapping[str, str]) -> dict[str, np.ndarray]:
    """The train and test splits of the prepared dataset `name` under `tfds_dir` as arrays.

    `columns` maps a feature to an array prefix: {"image": "x", "label": "y"} gives x_train, y_train,
    x_test, y_test (each feature's values stacked)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as exc:
        raise ConfigError("dataset.source=tfds needs tensorflow-datasets: pip install 'lightsweep[tfds]'.") from exc
    try:
        sources = tfds.data_source(name, data_dir=str(tfds_dir), download=False)
    except Exception as exc:  # tfds raises assorted types for "not prepared / not array_record / unknown"
        raise ConfigError(
            f"dataset.source=tfds: cannot open {name!r} under {Path(tfds_dir).resolve()} ({first_line(exc)}). "
            f"Prepare it there in array_record format, e.g. `tfds build {name} --data_dir {tfds_dir} "
            f"--file_format array_record` (preparing needs TensorFlow; reading does not)."
        ) from exc
    missing = [split for split in SPLITS if split not in sources]
    if missing:
        raise ConfigError(f"dataset.source=tfds: {name!r} has no {missing[0]} split (it has {sorted(sources)}).")
    arrays = {}
    for split in SPLITS:
        source = sources[split]
        records = [
            r
            for start in range(0, len(source), CHUNK)
            for r in source.__getitems__(range(start, min(start + CHUNK, len(source))))
        ]
        for feature, prefix in columns.items():
            if records and feature not in records[0]:
                raise ConfigError(
                    f"dataset.source=tfds: {name!r} has no feature {feature!r} (it has {sorted(records[0])})."
                )
            arrays[f"{prefix}_{split}"] = np.stack([r[feature] for r in records])
    return arrays


def prepared_files(name: str, tfds_dir: str | Path) -> list[Path]:
    """The record files of the prepared dataset `name` (what a cache of it is keyed on); [] if none."""
    folder = Path(tfds_dir) / check_tfds_name(name).split(":")[0].split("/")[0]
    return sorted(folder.rglob("*.array_record*")) + sorted(folder.rglob("*.parquet"))


def cache_file(name: str, cache_dir: str | Path, suffix: str) -> Path:
    """<cache_dir>/<name with '/' and ':' as '-'>-<suffix>.npz: one flat file per dataset, config and version."""
    return Path(cache_dir) / f"{name.replace('/', '-').replace(':', '-')}-{suffix}.npz"


def read_tfds_images(
    name: str, tfds_dir: str | Path, label_key: str = "label", cache_dir: str | Path | None = None
) -> dict[str, np.ndarray]:
    """x/y train/test with images as uint8 (N, C, H, W), decoded once and cached in `cache_dir` (None:
    beside the prepared files)."""
    sources = prepared_files(name, tfds_dir)

    def decode() -> dict[str, np.ndarray]:
        arrays = read_tfds(name, tfds_dir, {"image": "x", label_key: "y"})
        for key in ("x_train", "x_test"):
            arrays[key] = np.ascontiguousarray(arrays[key].transpose(0, 3, 1, 2))  # tfds images are (H, W, C)
        return arrays

    if not sources:
        return decode()  # nothing to key a cache on: read_tfds explains what is missing
    return cached_arrays(cache_file(name, cache_dir or tfds_dir, f"{label_key}.arrays"), decode, sources)
