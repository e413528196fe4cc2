"""Text classification datamodule: a corpus (see tokenizer.py) -> validation carved from train ->
vocabulary fitted on the remaining training documents -> padded id matrices kept in memory.

Batches hold texts of similar length (the model cuts a batch to its longest text, so padding costs
nothing): training batches come from length-sorted pools of shuffled texts, evaluation splits are
stored sorted by length."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Sampler

from lightsweep.data.tensors import InMemoryDataModule, TensorBatches, stratified_split
from lightsweep.data.tokenizer import PAD, Vocabulary, pad_truncate, select


class TextDataModule(InMemoryDataModule):
    """Subclasses implement `load_corpus()`. Batches are (token ids (N, seq_len) int64, labels);
    `vocab_size` (ids are in [0, vocab_size)) is known after setup."""

    modality = "text"

    def __init__(
        self,
        vocab_size: int = 10000,
        seq_len: int = 500,
        truncating: Literal["pre", "post"] = "pre",
        batch_size: int = 64,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        super().__init__(batch_size, val_fraction, split_seed, num_workers, pin_memory)
        self.max_vocab_size, self.seq_len, self.truncating = vocab_size, seq_len, truncating
        self.vocabulary: Vocabulary | None = None

    def load_corpus(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        corpus = self.load_corpus()
        labels = corpus["train_labels"]
        docs = np.arange(len(labels))
        single = np.bincount(labels)[labels] < 2  # a class with one document cannot be stratified: it trains
        train_docs, _, val_docs, _ = stratified_split(
            docs[~single], labels[~single], self.val_fraction, self.split_seed, "val_fraction"
        )
        train_docs = np.concatenate((train_docs, docs[single]))
        train_tokens, _ = select(corpus["train_tokens"], corpus["train_offsets"], train_docs)
        n_words = int(max(corpus["train_tokens"].max(initial=0), corpus["test_tokens"].max(initial=0))) + 1
        self.vocabulary = Vocabulary.fit(train_tokens, n_words, self.max_vocab_size)
        parts = {
            "train": ("train", train_docs),
            "val": ("train", val_docs),
            "test": ("test", np.arange(len(corpus["test_labels"]))),
        }
        for name, (source, docs) in parts.items():
            tokens, offsets = select(corpus[f"{source}_tokens"], corpus[f"{source}_offsets"], docs)
            ids = pad_truncate(self.vocabulary.encode(tokens), offsets, self.seq_len, self.truncating)
            targets = corpus[f"{source}_labels"][docs].astype(np.int64)
            if name != "train":
                order = np.argsort((ids != PAD).sum(axis=1), kind="stable")
                ids, targets = ids[order], targets[order]
            self.splits[name] = TensorBatches(torch.from_numpy(ids), torch.from_numpy(targets))
        self.classes = int(max(labels.max(), corpus["test_labels"].max()) + 1)

    @property
    def vocab_size(self) -> int:
        if self.vocabulary is None:
            raise RuntimeError("vocab_size is known after setup()")
        return self.vocabulary.size

    def train_dataloader(self) -> DataLoader:
        dataset = self.on_device("train")
        lengths = (dataset.tensors[0] != PAD).sum(dim=1).cpu()
        sampler = LengthBucketBatchSampler(RandomSampler(range(len(dataset))), self.batch_size, lengths)
        return self.split_loader("train", batch_sampler=sampler)


class LengthBucketBatchSampler(BatchSampler):
    """Batches of similar-length texts: the sampler's (shuffled) order is cut into pools of
    `pool_batches` batches, each pool is sorted by length and split into batches, and the batches
    are served in random order. Every text is used once per epoch, as with plain shuffling."""

    def __init__(
        self,
        sampler: Sampler[int],
        batch_size: int,
        lengths: torch.Tensor,
        pool_batches: int = 50,
        drop_last: bool = False,
    ) -> None:
        super().__init__(sampler, batch_size, drop_last)
        self.lengths, self.pool_batches = lengths, pool_batches

    def __iter__(self) -> Iterator[list[int]]:
        indices = torch.tensor(list(self.sampler))
        batches = []
        for pool in indices.split(self.batch_size * self.pool_batches):
            pool = pool[torch.argsort(self.lengths[pool], stable=True)]
            batches += [
                b.tolist() for b in pool.split(self.batch_size) if len(b) == self.batch_size or not self.drop_last
            ]
        for position in torch.randperm(len(batches)).tolist():
            yield batches[position]
