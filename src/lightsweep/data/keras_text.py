"""The Keras text dataset format: `<name>.npz` holding each document as a list of word ranks, and
`<name>_word_index.json` mapping word -> rank (1 = most frequent).

imdb.npz has x_train/y_train/x_test/y_test; reuters.npz has x/y, which Keras shuffles with seed 113
and splits 80/20 (keras.datasets.reuters.load_data); we do the same, so both keep Keras's test set.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lightsweep.data.download import cached_arrays, fetch
from lightsweep.data.tokenizer import pack_words, ragged_to_flat
from lightsweep.errors import ConfigError

KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
KERAS_SPLIT_SEED, KERAS_TEST_SPLIT = 113, 0.2


def load_keras_corpus(
    name: str, data_dir: Path, files: dict[str, str | None], cache_dir: Path
) -> dict[str, np.ndarray]:
    """Corpus arrays of `<name>.npz` + `<name>_word_index.json` in data_dir (fetched from Keras's bucket
    when missing, checked against `files`' SHA-256s), decoded once and cached in cache_dir."""
    paths = {file: fetch(KERAS_URL + file, data_dir / file, sha, f"dataset {name}") for file, sha in files.items()}
    return cached_arrays(
        cache_dir / f"{name}_keras_corpus.npz",
        lambda: read_keras_text(paths[f"{name}.npz"], paths[f"{name}_word_index.json"]),
        sources=list(paths.values()),
    )


def read_keras_text(npz_path: Path, word_index_path: Path) -> dict[str, np.ndarray]:
    """The corpus arrays (tokenizer.py) of a Keras text dataset; word index i is the word of rank i."""
    # The official files store the ragged documents as pickled object arrays: they cannot be read
    # without allow_pickle. Only read files from their official source (fetch checks the SHA-256).
    with np.load(npz_path, allow_pickle=True) as stored:
        if {"x_train", "y_train", "x_test", "y_test"} <= set(stored.files):
            parts = {split: (stored[f"x_{split}"], stored[f"y_{split}"]) for split in ("train", "test")}
        elif {"x", "y"} <= set(stored.files):
            parts = keras_split(stored["x"], stored["y"])
        else:
            raise ConfigError(
                f"{npz_path} is not a Keras text dataset: it has arrays {stored.files}, expected "
                "x_train, y_train, x_test, y_test (imdb.npz) or x, y (reuters.npz)."
            )
    corpus = {}
    for split, (documents, labels) in parts.items():
        corpus[f"{split}_tokens"], corpus[f"{split}_offsets"] = ragged_to_flat(documents)
        corpus[f"{split}_labels"] = np.asarray(labels, dtype=np.int64)
    corpus["words"] = pack_words(read_word_index(word_index_path))
    return corpus


def keras_split(documents: np.ndarray, labels: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Keras's own train/test split of x/y files: a seeded shuffle, then the last 20% is the test set."""
    order = np.arange(len(documents))
    np.random.RandomState(KERAS_SPLIT_SEED).shuffle(order)
    cut = int(len(documents) * (1 - KERAS_TEST_SPLIT))
    return {
        "train": (documents[order[:cut]], labels[order[:cut]]),
        "test": (documents[order[cut:]], labels[order[cut:]]),
    }


def read_word_index(path: Path) -> list[str]:
    """Words by rank: position i holds the word of rank i (position 0, never a rank, is empty)."""
    try:
        index = json.loads(Path(path).read_text(encoding="utf-8"))
        words = [""] * (max(index.values(), default=0) + 1)
        for word, rank in index.items():
            words[rank] = word.replace("\n", " ")
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ConfigError(f"{path} is not a Keras word index (a JSON object word -> rank >= 1): {exc}.") from exc
    return words
