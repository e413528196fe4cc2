"""Our own text pipeline: words -> corpus arrays -> a vocabulary fitted on training documents only ->
fixed-length id matrices. Pure numpy, so a whole corpus is encoded in a few vectorised steps.

A corpus is a dict of arrays (what the loaders return and the cache stores):
  words                      the word list as "\\n"-joined UTF-8 bytes (uint8); word index i -> i-th word
  <split>_tokens, _offsets   every document's word indices, concatenated; document d is
                             tokens[offsets[d]:offsets[d + 1]]
  <split>_labels             one class id per document
for split in train and test.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from lightsweep.errors import ConfigError

PAD, OOV = 0, 1  # reserved ids: padding, and every word outside the vocabulary
RESERVED = 2
_HTML_BREAK = re.compile(r"<br\s*/?>", re.I)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # letters/digits, with inner apostrophes (don't, o'neil)


def tokenize(text: str) -> list[str]:
    """Lower-cased words; HTML line breaks (IMDB reviews have <br />) and punctuation separate words."""
    return _WORD.findall(_HTML_BREAK.sub(" ", text.lower()))


class WordIndexer:
    """Assigns each distinct word an index in order of first appearance; documents -> corpus arrays."""

    def __init__(self, words: Sequence[str] = ()) -> None:
        self.index: dict[str, int] = {word: i for i, word in enumerate(words)}

    def documents(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """(tokens, offsets) of the tokenized texts."""
        index, tokens, offsets = self.index, [], [0]
        for text in texts:
            tokens.extend(index.setdefault(word, len(index)) for word in tokenize(text))
            offsets.append(len(tokens))
        return np.asarray(tokens, dtype=np.int32), np.asarray(offsets, dtype=np.int64)

    def words(self) -> np.ndarray:
        return pack_words(list(self.index))


def corpus_from_texts(splits: Mapping[str, tuple[Iterable[str], Sequence[int]]]) -> dict[str, np.ndarray]:
    """Corpus arrays of {"train": (texts, labels), "test": (texts, labels)}; training words are indexed first,
    so their indices never depend on the test text."""
    indexer, corpus = WordIndexer(), {}
    for split in ("train", "test"):
        texts, labels = splits[split]
        corpus[f"{split}_tokens"], corpus[f"{split}_offsets"] = indexer.documents(texts)
        corpus[f"{split}_labels"] = np.asarray(labels, dtype=np.int64)
    corpus["words"] = indexer.words()
    return corpus


def pack_words(words: Sequence[str]) -> np.ndarray:
    return np.frombuffer("\n".join(words).encode(), dtype=np.uint8)


def unpack_words(packed: np.ndarray) -> list[str]:
    return packed.tobytes().decode().split("\n")


def ragged_to_flat(sequences: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, offsets) of a list of integer sequences (e.g. the Keras .npz object arrays)."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    tokens = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences]) if offsets[-1] else np.zeros(0)
    return tokens.astype(np.int32), offsets


class Vocabulary:
    """The `size - 2` most frequent words of the training documents get ids 2, 3, ... (most frequent
    first, ties by word index); id 0 is padding and id 1 stands for every other word, so every id is
    in [0, size)."""

    def __init__(self, table: np.ndarray, size: int) -> None:
        self.table = table  # word index -> token id
        self.size = size

    @classmethod
    def fit(cls, tokens: np.ndarray, n_words: int, max_size: int) -> Vocabulary:
        if max_size <= RESERVED:
            raise ConfigError(f"dataset.vocab_size={max_size} must be more than {RESERVED} (padding and OOV ids).")
        counts = np.bincount(tokens, minlength=n_words)
        ranked = np.argsort(-counts, kind="stable")
        kept = ranked[: min(max_size - RESERVED, int((counts > 0).sum()))]
        table = np.full(n_words, OOV, dtype=np.int64)
        table[kept] = np.arange(RESERVED, RESERVED + len(kept))
        return cls(table, RESERVED + len(kept))

    def encode(self, tokens: np.ndarray) -> np.ndarray:
        """Word indices -> token ids; indices beyond the word list (unseen words) -> OOV."""
        ids = np.full(len(tokens), OOV, dtype=np.int64)
        known = tokens < len(self.table)
        ids[known] = self.table[tokens[known]]
        return ids


def select(tokens: np.ndarray, offsets: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, offsets) of the documents `docs` (indices), in that order."""
    lengths = (offsets[1:] - offsets[:-1])[docs]
    new_offsets = np.concatenate(([0], np.cumsum(lengths)))
    starts = np.repeat(offsets[:-1][docs] - new_offsets[:-1], lengths)
    return tokens[np.arange(new_offsets[-1]) + starts], new_offsets


def pad_truncate(ids: np.ndarray, offsets: np.ndarray, seq_len: int, truncating: str = "pre") -> np.ndarray:
    """(documents, seq_len) matrix, each row left-aligned and padded with PAD after it. Longer documents
    keep their last seq_len ids (truncating=pre, Keras's default) or their first (post)."""
    if seq_len < 1:
        raise ConfigError(f"dataset.seq_len={seq_len} must be at least 1.")
    if truncating not in ("pre", "post"):
        raise ConfigError(
            f"dataset.truncating={truncating!r} is not valid: use pre (keep the end) or post (keep the start)."
        )
    lengths = offsets[1:] - offsets[:-1]
    position = np.arange(len(ids)) - np.repeat(offsets[:-1], lengths)
    dropped = np.maximum(lengths - seq_len, 0) if truncating == "pre" else np.zeros_like(lengths)
    column = position - np.repeat(dropped, lengths)
    keep = (column >= 0) & (column < seq_len)
    matrix = np.full((len(lengths), seq_len), PAD, dtype=np.int64)
    matrix[np.repeat(np.arange(len(lengths)), lengths)[keep], column[keep]] = ids[keep]
    return matrix
