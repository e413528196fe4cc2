"""Reuters newswire topics: the Keras `reuters.npz` (46 topics) or the official Reuters-21578 SGML.

format=keras reads `reuters.npz` + `reuters_word_index.json` and keeps Keras's own test split.
format=sgml reads the 22 `reut2-*.sgm` files (extracted, or inside `reuters21578.tar.gz`) with the
ModApte split (LEWISSPLIT TRAIN/TEST, TOPICS="YES"). Only single-topic stories are kept, as in the
standard single-label subsets (R52): the classes are the topics of the training stories, sorted by name,
and test stories of other topics are dropped. Title and body are the text, tokenized by our tokenizer.
"""

from __future__ import annotations

import html
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from lightsweep.data.download import cached_arrays, fetch
from lightsweep.data.keras_text import load_keras_corpus
from lightsweep.data.text import TextDataModule
from lightsweep.data.tokenizer import corpus_from_texts, pack_words
from lightsweep.errors import ConfigError

KERAS_FILES = {  # file -> SHA-256; Keras pins only an MD5 for the word index, so it is not checked
    "reuters.npz": "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916",
    "reuters_word_index.json": None,
}
SGML_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/reuters21578-mld/reuters21578.tar.gz"
SGML_SHA256 = "3bae43c9b14e387f76a61b6d82bf98a4fb5d3ef99ef7e7075ff2ccbcf59f9d30"  # as scikit-learn's example pins it
SGML_FILES = [f"reut2-{number:03d}.sgm" for number in range(22)]
_STORY = re.compile(r"<REUTERS\b([^>]*)>(.*?)</REUTERS>", re.S)
_ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')
_TOPICS = re.compile(r"<TOPICS>(.*?)</TOPICS>", re.S)
_TOPIC = re.compile(r"<D>(.*?)</D>", re.S)
_TITLE = re.compile(r"<TITLE>(.*?)</TITLE>", re.S)
_BODY = re.compile(r"<BODY>(.*?)</BODY>", re.S)
_TEXT = re.compile(r"<TEXT\b[^>]*>(.*?)</TEXT>", re.S)
_TAG = re.compile(r"<[^>]+>")


def modapte_stories(sgml: str) -> Iterator[tuple[str, int, list[str], str]]:
    """(split, NEWID, topics, title + body) of each ModApte train/test story in one .sgm file's text."""
    for match in _STORY.finditer(sgml):
        attributes = dict(_ATTRIBUTE.findall(match[1]))
        split = {"TRAIN": "train", "TEST": "test"}.get(attributes.get("LEWISSPLIT", ""))
        if split is None or attributes.get("TOPICS") != "YES":
            continue
        topics_block = _TOPICS.search(match[2])
        topics = _TOPIC.findall(topics_block[1]) if topics_block else []
        parts = [found[1] for found in (_TITLE.search(match[2]), _BODY.search(match[2])) if found]
        if not parts:  # TEXT TYPE="UNPROC" stories: the text stands in <TEXT> itself
            parts = [_TAG.sub(" ", found[1]) for found in [_TEXT.search(match[2])] if found]
        yield split, int(attributes.get("NEWID", 0)), topics, html.unescape("\n".join(parts))


def sgml_texts(source: Path) -> Iterator[str]:
    """The text of every reut2-*.sgm file in a folder or a .tar.gz (the files are Latin-1)."""
    if source.is_dir():
        for name in SGML_FILES:
            if (source / name).is_file():
                yield (source / name).read_text(encoding="latin-1")
        return
    with tarfile.open(source, "r:*") as archive:
        for member in archive:
            if re.search(r"(?:^|/)reut2-\d{3}\.sgm$", member.name) and member.isfile():
                yield archive.extractfile(member).read().decode("latin-1")


def read_sgml_corpus(source: Path) -> dict[str, np.ndarray]:
    """Corpus arrays (tokenizer.py) of the single-topic ModApte stories, plus `label_names`."""
    stories: dict[str, list[tuple[int, str, str]]] = {"train": [], "test": []}
    for sgml in sgml_texts(source):
        for split, newid, topics, text in modapte_stories(sgml):
            if len(topics) == 1:
                stories[split].append((newid, topics[0], text))
    names = sorted({topic for _, topic, _ in stories["train"]})
    if not names or not stories["test"]:
        raise ConfigError(
            f"dataset reuters: no ModApte training/test stories in {source} (expected reut2-000.sgm ... "
            f"reut2-021.sgm from {SGML_URL})."
        )
    label = {name: i for i, name in enumerate(names)}
    kept = {split: sorted(story for story in found if story[1] in label) for split, found in stories.items()}
    corpus = corpus_from_texts(
        {
            split: ([text for _, _, text in found], [label[topic] for _, topic, _ in found])
            for split, found in kept.items()
        }
    )
    corpus["label_names"] = pack_words(names)
    return corpus


class ReutersDataModule(TextDataModule):
    def __init__(
        self,
        data_dir: str,
        format: Literal["keras", "sgml"] = "keras",
        vocab_size: int = 10000,
        seq_len: int = 1000,
        truncating: Literal["pre", "post"] = "pre",
        batch_size: int = 64,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        cache_dir: str | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        """`cache_dir` holds the decoded corpus (None: beside the files in `data_dir`)."""
        super().__init__(vocab_size, seq_len, truncating, batch_size, val_fraction, split_seed, num_workers, pin_memory)
        if format not in ("keras", "sgml"):
            raise ConfigError(
                f"dataset.format={format!r} is not valid for reuters: use keras (reuters.npz) or sgml (Reuters-21578)."
            )
        self.data_dir, self.format = Path(data_dir), format
        self.cache_dir = Path(cache_dir) if cache_dir else self.data_dir

    def load_corpus(self) -> dict[str, np.ndarray]:
        if self.format == "keras":
            return load_keras_corpus("reuters", self.data_dir, KERAS_FILES, self.cache_dir)
        extracted = [self.data_dir / name for name in SGML_FILES if (self.data_dir / name).is_file()]
        if extracted and len(extracted) < len(SGML_FILES):  # a partial corpus would train silently on less
            missing = next(name for name in SGML_FILES if not (self.data_dir / name).is_file())
            raise ConfigError(
                f"dataset reuters: {self.data_dir} holds {len(extracted)} of the {len(SGML_FILES)} reut2-*.sgm files "
                f"({missing} is missing). Extract all {len(SGML_FILES)} from {SGML_URL}, "
                "or remove them to read the tarball."
            )
        sources = extracted or [fetch(SGML_URL, self.data_dir / Path(SGML_URL).name, SGML_SHA256, "dataset reuters")]
        source = self.data_dir if extracted else sources[0]
        return cached_arrays(self.cache_dir / "reuters_sgml_corpus.npz", lambda: read_sgml_corpus(source), sources)
