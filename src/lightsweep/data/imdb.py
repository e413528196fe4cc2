"""IMDB movie reviews (Maas et al. 2011): the official raw `aclImdb` text, or the Keras `imdb.npz`.

format=raw reads `<data_dir>/aclImdb/` (the extracted release) or `<data_dir>/aclImdb_v1.tar.gz`,
downloading the tarball from Stanford when neither is there; labels: neg=0, pos=1.
format=keras reads `imdb.npz` (reviews as word ranks) + `imdb_word_index.json` (word -> rank).
Either way the official 25,000-review test set stays the test set; our tokenizer and vocabulary
(fitted on training reviews only) turn the text into ids.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from lightsweep.data.download import cached_arrays, fetch
from lightsweep.data.keras_text import load_keras_corpus
from lightsweep.data.names import check_tfds_name
from lightsweep.data.text import TextDataModule
from lightsweep.data.tokenizer import corpus_from_texts
from lightsweep.errors import ConfigError

RAW_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
RAW_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
KERAS_FILES = {  # file -> SHA-256: the npz's is the one Keras pins; Keras pins the word index by MD5 (bfafd718...)
    "imdb.npz": "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f",
    "imdb_word_index.json": "027313fe9a320280f3bf0fac5baf58c4a683cf39a7ed9c3d3d3912bde4284cf6",
}
LABELS = {"neg": 0, "pos": 1}
_REVIEW = re.compile(r"(?:^|/)aclImdb/(train|test)/(neg|pos)/(\d+)_\d+\.txt$")


def raw_reviews(source: Path) -> Iterator[tuple[str, int, int, str]]:
    """(split, label, id, text) of every labelled review in an aclImdb folder or .tar.gz, in file order."""
    if source.is_dir():
        for path in source.glob("*/*/*.txt"):
            match = _REVIEW.search(path.as_posix())
            if match:
                yield match[1], LABELS[match[2]], int(match[3]), path.read_text(encoding="utf-8")
        return
    with tarfile.open(source, "r:*") as archive:
        for member in archive:
            match = _REVIEW.search(member.name)
            if match and member.isfile():
                text = archive.extractfile(member).read().decode("utf-8")
                yield match[1], LABELS[match[2]], int(match[3]), text


def read_raw_corpus(source: Path) -> dict[str, np.ndarray]:
    """The corpus arrays (tokenizer.py) of an aclImdb folder or tarball; reviews sorted by (label, id)."""
    reviews: dict[str, list[tuple[int, int, str]]] = {"train": [], "test": []}
    for split, label, review_id, text in raw_reviews(source):
        reviews[split].append((label, review_id, text))
    if not reviews["train"] or not reviews["test"]:
        raise ConfigError(
            f"dataset imdb: {source} holds no aclImdb/train/ or aclImdb/test/ reviews "
            f"(aclImdb/<train|test>/<pos|neg>/<id>_<rating>.txt); get the official {RAW_URL}."
        )
    ordered = {split: sorted(found) for split, found in reviews.items()}
    return corpus_from_texts(
        {split: ([text for _, _, text in found], [label for label, _, _ in found]) for split, found in ordered.items()}
    )


def read_tfds_corpus(name: str, tfds_dir: Path, cache_dir: Path) -> dict[str, np.ndarray]:
    """Corpus arrays of a prepared tensorflow-datasets text dataset (features text, label), cached in cache_dir."""
    from lightsweep.data.tfds_source import cache_file, prepared_files, read_tfds

    def decode() -> dict[str, np.ndarray]:
        arrays = read_tfds(name, tfds_dir, {"text": "x", "label": "y"})
        return corpus_from_texts(
            {
                split: ([text.decode("utf-8") for text in arrays[f"x_{split}"]], arrays[f"y_{split}"])
                for split in ("train", "test")
            }
        )

    sources = prepared_files(name, tfds_dir)
    if not sources:
        return decode()  # nothing to key a cache on: read_tfds explains what is missing
    return cached_arrays(cache_file(name, cache_dir, "text-corpus"), decode, sources)


class ImdbDataModule(TextDataModule):
    def __init__(
        self,
        data_dir: str,
        format: Literal["raw", "keras"] = "raw",
        source: Literal["files", "tfds"] = "files",
        tfds_name: str = "imdb_reviews",
        tfds_dir: str | None = None,
        cache_dir: str | None = None,
        vocab_size: int = 10000,
        seq_len: int = 500,
        truncating: Literal["pre", "post"] = "pre",
        batch_size: int = 64,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        """`cache_dir` holds the decoded corpus (None: beside the files in `data_dir`)."""
        super().__init__(vocab_size, seq_len, truncating, batch_size, val_fraction, split_seed, num_workers, pin_memory)
        if format not in ("raw", "keras"):
            raise ConfigError(
                f"dataset.format={format!r} is not valid for imdb: use raw (aclImdb text) or keras (imdb.npz)."
            )
        if source not in ("files", "tfds"):
            raise ConfigError(f"dataset.source={source!r} is not valid: use files or tfds.")
        if source == "tfds" and not tfds_dir:
            raise ConfigError("dataset.source=tfds needs dataset.tfds_dir (a prepared tensorflow-datasets data dir).")
        if source == "tfds":
            check_tfds_name(tfds_name)
        self.data_dir, self.format, self.source = Path(data_dir), format, source
        self.cache_dir = Path(cache_dir) if cache_dir else self.data_dir
        self.tfds_name, self.tfds_dir = tfds_name, Path(tfds_dir) if tfds_dir else None

    def load_corpus(self) -> dict[str, np.ndarray]:
        if self.source == "tfds":
            return read_tfds_corpus(self.tfds_name, self.tfds_dir, self.cache_dir)
        if self.format == "keras":
            return load_keras_corpus("imdb", self.data_dir, KERAS_FILES, self.cache_dir)
        folder = self.data_dir / "aclImdb"
        if folder.is_dir():
            source, sources = folder, [d for d in folder.glob("*/*") if d.is_dir()]  # a changed folder: new mtime
        else:
            source = fetch(RAW_URL, self.data_dir / Path(RAW_URL).name, RAW_SHA256, "dataset imdb")
            sources = [source]
        return cached_arrays(self.cache_dir / "imdb_raw_corpus.npz", lambda: read_raw_corpus(source), sources)
