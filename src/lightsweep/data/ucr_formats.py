"""Readers of the UCR/UEA archive file formats: .tsv (UCR 2018), .ts (sktime/aeon text) and .arff (UEA).

Every reader returns (x, labels): x is float64 (N, T, D), NaN-padded at the end when the series have
different lengths; labels are the class names as strings, exactly as written in the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lightsweep.errors import ConfigError

SUFFIXES = ("tsv", "ts", "arff")


def read_series_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one split file, choosing the reader by its suffix."""
    readers = {"tsv": read_tsv, "ts": read_ts, "arff": read_arff}
    suffix = path.suffix.lstrip(".")
    if suffix not in readers:
        raise ConfigError(f"{path}: unknown series format .{suffix}; valid formats: {', '.join(SUFFIXES)}.")
    return readers[suffix](path)


def read_tsv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """UCR 2018 .tsv: one series per line, label in column 0, tab-separated, no header.
    Variable-length sets are NaN-padded in the file itself, so every row has the same width."""
    lines = _text_lines(path)
    rows = [line.split("\t") for _, line in lines]
    for (number, _), row in zip(lines, rows):
        if len(row) != len(rows[0]):
            raise ConfigError(
                f"{path}, line {number}: {len(row)} tab-separated fields, the first line has {len(rows[0])}: "
                "the file is truncated or not a UCR .tsv (label, then one value per timestamp)."
            )
    if len(rows[0]) == 1:
        raise ConfigError(f"{path}: rows hold a label but no values; is it tab-separated?")
    labels = np.array([row[0].strip() for row in rows], dtype=str)
    values = _floats([row[1:] for row in rows], path, "values")
    return values[:, :, None], labels


def read_ts(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """sktime/aeon .ts: '@key value' header lines up to '@data', then one case per line: channels
    separated by ':', values by ',', the class label last; '?' and NaN mark missing values."""
    header, data_lines = _ts_header(path)
    if header.get("timestamps", "").lower() == "true":
        raise ConfigError(f"{path}: .ts files with time stamps are not supported; use the plain version.")
    if (header.get("classlabel") or "false").split()[0].lower() != "true":
        raise ConfigError(f"{path}: not a classification file (its header lacks '@classLabel true ...').")
    declared_classes = set(header["classlabel"].split()[1:])
    cases, labels = [], []
    for number, line in data_lines:
        *channels, label = line.split(":")
        label = label.strip()
        if not channels:
            raise ConfigError(f"{path}, line {number}: no ':' between the values and the class label.")
        if declared_classes and label not in declared_classes:
            raise ConfigError(
                f"{path}, line {number}: label {label!r} is not one of the declared classes "
                f"{sorted(declared_classes)}; the line is truncated or malformed."
            )
        series = [_floats(c.replace("?", "NaN").split(","), path, f"line {number}") for c in channels]
        if len({len(s) for s in series}) > 1:
            raise ConfigError(
                f"{path}, line {number}: channels have lengths {[len(s) for s in series]}; "
                "all channels of a case must have the same length."
            )
        cases.append(np.stack(series, axis=1))  # (T, D)
        labels.append(label)
    _check_ts_shapes(path, header, cases)
    return _pad_and_stack(cases), np.array(labels, dtype=str)


def read_arff(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Weka .arff: UEA multivariate files hold one relational attribute per case (D channels x T
    values); univariate UCR files hold one numeric attribute per timestamp. The class is last."""
    from scipy.io import arff

    try:
        records, _ = arff.loadarff(str(path))
    except (OSError, ValueError) as exc:  # scipy's ArffError is an OSError
        raise ConfigError(f"{path}: not a readable .arff file ({exc}).") from exc
    if len(records) == 0:
        raise ConfigError(f"{path}: holds no series.")
    fields = records.dtype.names
    labels = np.array([_decode(v) for v in records[fields[-1]]], dtype=str)
    if len(fields) == 2 and records.dtype[fields[0]] == np.dtype(object):  # relational: one (D, T) block per case
        cases = [np.array(case.tolist(), dtype=np.float64).T for case in records[fields[0]]]
        return _pad_and_stack(cases), labels
    values = np.array(records[list(fields[:-1])].tolist(), dtype=np.float64)
    return values[:, :, None], labels


def _ts_header(path: Path) -> tuple[dict[str, str], list[tuple[int, str]]]:
    """The '@key value' pairs (keys lower-cased; values kept as written: class names are case-sensitive)
    and the numbered data lines after '@data'."""
    header: dict[str, str] = {}
    data_lines: list[tuple[int, str]] = []
    in_data = False
    for number, line in _text_lines(path):
        if line.startswith(("#", "%")):  # comments (aeon writes '#', some archive files '%')
            continue
        if in_data:
            data_lines.append((number, line))
        elif line.startswith("@"):
            key, _, value = line[1:].partition(" ")
            header[key.lower()] = value.strip()
            in_data = key.lower() == "data"
        else:
            raise ConfigError(f"{path}, line {number}: expected a '@key value' header line before '@data'.")
    if not in_data:
        raise ConfigError(f"{path}: no '@data' line; not a .ts file or its header is truncated.")
    if not data_lines:
        raise ConfigError(f"{path}: holds no series after '@data'.")
    return header, data_lines


def _check_ts_shapes(path: Path, header: dict[str, str], cases: list[np.ndarray]) -> None:
    """Catch truncated or inconsistent files: the header's promises must hold for every case."""
    channels = {case.shape[1] for case in cases}
    univariate = header.get("univariate", "").lower() == "true"
    expected = 1 if univariate else _header_int(path, header, "dimensions", max(channels))
    if channels != {expected}:
        raise ConfigError(f"{path}: cases have {sorted(channels)} channels, the header promises {expected}.")
    if header.get("equallength", "").lower() == "true":
        lengths = {case.shape[0] for case in cases}
        promised = {_header_int(path, header, "serieslength", 0)} if "serieslength" in header else lengths
        if len(lengths) > 1 or lengths != promised:
            raise ConfigError(
                f"{path}: series lengths {sorted(lengths)[:5]} break the header's equal length "
                f"{sorted(promised)[0]}; the file is truncated or malformed."
            )


def _header_int(path: Path, header: dict[str, str], key: str, default: int) -> int:
    try:
        return int(header.get(key, default))
    except ValueError:
        raise ConfigError(f"{path}: header '@{key} {header[key]}' is not a whole number.") from None


def _text_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, stripped text) of the non-empty lines of a text file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as text ({exc}).") from exc
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise ConfigError(f"{path}: is empty.")
    return lines


def _floats(values: list, path: Path, where: str) -> np.ndarray:
    try:
        return np.array(values, dtype=np.float64)
    except ValueError as exc:
        raise ConfigError(f"{path}, {where}: not a number ({exc}); the file is truncated or malformed.") from None


def _pad_and_stack(cases: list[np.ndarray]) -> np.ndarray:
    """(T_i, D) cases -> (N, max T, D), shorter series right-padded with NaN."""
    longest = max(case.shape[0] for case in cases)
    out = np.full((len(cases), longest, cases[0].shape[1]), np.nan)
    for i, case in enumerate(cases):
        out[i, : case.shape[0]] = case
    return out


def _decode(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
