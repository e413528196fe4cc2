"""Text data: our tokenizer and vocabulary, IMDB (raw aclImdb folder/tarball, Keras npz) on real reviews,
Reuters in both real formats (Keras npz, Reuters-21578 SGML) written here in temp dirs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_data
from lightsweep.data.imdb import ImdbDataModule, raw_reviews
from lightsweep.data.keras_text import read_word_index
from lightsweep.data.reuters import ReutersDataModule
from lightsweep.data.tokenizer import OOV, PAD, Vocabulary, WordIndexer, pad_truncate, tokenize, unpack_words
from lightsweep.errors import ConfigError


def test_tokenize_lowercases_and_splits_on_html_breaks_and_punctuation():
    assert tokenize("Great film!<br /><br />Don't miss it... 10/10, Café") == [
        "great",
        "film",
        "don't",
        "miss",
        "it",
        "10",
        "10",
        "café",
    ]
    assert tokenize("") == [] and tokenize(" <br/> ... ") == []


def test_vocabulary_is_fitted_on_training_words_only_and_maps_the_rest_to_oov():
    indexer = WordIndexer()
    train, _ = indexer.documents(["b b b a a c", "a b"])  # b x4, a x3, c x1
    test, _ = indexer.documents(["c d a zzz"])  # d and zzz never occur in training text
    vocab = Vocabulary.fit(train, n_words=len(indexer.index), max_size=4)  # pad, OOV + 2 words
    words = list(indexer.index)
    assert vocab.size == 4
    assert [int(vocab.encode(np.array([words.index(w)]))[0]) for w in "bacd"] == [2, 3, OOV, OOV]
    ids = vocab.encode(np.append(test, 10**6))  # an index beyond the word list is OOV too
    assert ids.min() >= 0 and ids.max() < vocab.size and (ids == OOV).sum() == 4
    with pytest.raises(ConfigError, match="dataset.vocab_size=2"):
        Vocabulary.fit(train, len(words), max_size=2)


def test_vocabulary_smaller_than_asked_when_training_has_fewer_words():
    tokens, _ = WordIndexer().documents(["one two two"])
    assert Vocabulary.fit(tokens, n_words=2, max_size=10000).size == 4


def test_pad_truncate_keeps_the_end_or_the_start_and_pads_after():
    ids = np.array([5, 6, 7, 8, 9, 3, 4], dtype=np.int64)
    offsets = np.array([0, 5, 5, 7])  # documents: [5..9], [] (empty text), [3, 4]
    assert pad_truncate(ids, offsets, 3, "pre").tolist() == [[7, 8, 9], [PAD] * 3, [3, 4, PAD]]
    assert pad_truncate(ids, offsets, 3, "post").tolist() == [[5, 6, 7], [PAD] * 3, [3, 4, PAD]]
    with pytest.raises(ConfigError, match="dataset.truncating='middle'"):
        pad_truncate(ids, offsets, 3, "middle")
    with pytest.raises(ConfigError, match="dataset.seq_len=0"):
        pad_truncate(ids, offsets, 0)


def _module(data_dir: Path, **settings) -> ImdbDataModule:
    module = ImdbDataModule(str(data_dir), **{"vocab_size": 500, "seq_len": 120, "val_fraction": 0.25, **settings})
    module.setup()
    return module


def test_raw_imdb_folder_and_tarball_give_the_same_data(tiny_imdb, tmp_path):
    with tarfile.open(tmp_path / "aclImdb_v1.tar.gz", "w:gz") as archive:
        archive.add(tiny_imdb / "aclImdb", arcname="aclImdb")
    from_folder, from_tarball = _module(tiny_imdb), _module(tmp_path)
    assert (tmp_path / "imdb_raw_corpus.npz").is_file()  # decoded once, cached beside the data
    for split in ("train", "val", "test"):
        for a, b in zip(from_folder.splits[split].tensors, from_tarball.splits[split].tensors):
            assert (a == b).all()
    assert _module(tmp_path).splits["test"].tensors[0].equal(from_tarball.splits["test"].tensors[0])  # cached


def test_raw_imdb_keeps_the_test_set_and_stratifies_validation(tiny_imdb):
    module = _module(tiny_imdb)
    sizes = {name: len(split) for name, split in module.splits.items()}
    assert sizes == {"train": 60, "val": 20, "test": 80}
    assert module.modality == "text" and module.input_shape == (120,) and module.num_classes == 2
    assert np.bincount(module.splits["val"].tensors[1].numpy()).tolist() == [10, 10]
    for tokens, labels in (split.tensors for split in module.splits.values()):
        assert tokens.dtype == labels.dtype and int(tokens.min()) >= 0 and int(tokens.max()) < module.vocab_size
    assert module.vocab_size == 500 and (module.splits["test"].tensors[0] == OOV).any()


def test_real_word_index_and_a_keras_npz_of_real_reviews(tiny_imdb, tmp_path):
    """Encode the real reviews with the real Keras word index into imdb.npz (ranks, object arrays, as
    Keras stores them); format=keras must give back the same words."""
    index_file = shared_data("imdb") / "imdb_word_index.json"
    words = read_word_index(index_file)
    assert len(words) == 88585 and words[1] == "the" and words[0] == ""
    rank = json.loads(index_file.read_text())
    arrays = {}
    for split in ("train", "test"):
        reviews = sorted(r for r in raw_reviews(tiny_imdb / "aclImdb") if r[0] == split)
        docs = [[rank[w] for w in tokenize(text) if w in rank] for _, _, _, text in reviews]
        arrays[f"x_{split}"] = np.array(docs, dtype=object)
        arrays[f"y_{split}"] = np.array([label for _, label, _, _ in reviews])
    folder = tmp_path / "imdb"
    folder.mkdir()
    np.savez(folder / "imdb.npz", **arrays)
    (folder / "imdb_word_index.json").write_bytes(index_file.read_bytes())
    module = _module(folder, format="keras", seq_len=2000, val_fraction=0.5)
    assert len(module.splits["test"]) == 80 and module.num_classes == 2
    # decode one test review back to words through the vocabulary: the words of the raw review
    ids_to_words = {int(i): words[w] for w, i in enumerate(module.vocabulary.table) if i > OOV}
    review = module.splits["test"].tensors[0][-1]  # stored sorted by length: the longest
    decoded = [ids_to_words.get(int(i), "?") for i in review if i != PAD]
    longest = max(arrays["x_test"], key=len)
    assert decoded == [words[r] if module.vocabulary.table[r] > OOV else "?" for r in longest]


def _keras_reuters(folder: Path, n: int = 300) -> None:
    rng = np.random.default_rng(0)
    words = {f"w{i}": i for i in range(1, 401)}
    docs = [list(rng.integers(1, 401, size=rng.integers(5, 60))) for _ in range(n)]
    folder.mkdir(parents=True)
    np.savez(folder / "reuters.npz", x=np.array(docs, dtype=object), y=rng.integers(0, 46, size=n) % 5)
    (folder / "reuters_word_index.json").write_text(json.dumps(words))


def test_reuters_keras_npz_keeps_keras_test_split(tmp_path):
    _keras_reuters(tmp_path / "reuters")
    module = ReutersDataModule(str(tmp_path / "reuters"), vocab_size=100, seq_len=50)
    module.setup()
    assert len(module.splits["test"]) == 60 and len(module.splits["train"]) + len(module.splits["val"]) == 240
    assert module.input_shape == (50,) and module.num_classes == 5 and module.vocab_size == 100
    with np.load(tmp_path / "reuters" / "reuters.npz", allow_pickle=True) as stored:
        order = np.arange(300)
        np.random.RandomState(113).shuffle(order)  # keras.datasets.reuters.load_data's split
        expected = np.sort(np.bincount(stored["y"][order[240:]]))
    assert (np.sort(np.bincount(module.splits["test"].tensors[1].numpy())) == expected).all()


SGML_HEADER = '<!DOCTYPE lewis SYSTEM "lewis.dtd">\n'
STORY = """<REUTERS TOPICS="{has_topics}" LEWISSPLIT="{split}" CGISPLIT="TRAINING-SET" OLDID="{old}" NEWID="{new}">
<DATE>26-FEB-1987 15:01:01.79</DATE>
<TOPICS>{topics}</TOPICS>
<PLACES><D>usa</D></PLACES>
<PEOPLE></PEOPLE>
<ORGS></ORGS>
<EXCHANGES></EXCHANGES>
<COMPANIES></COMPANIES>
<UNKNOWN>&#5;&#5;&#5;C T
&#22;&#22;&#1;f0708&#31;reute</UNKNOWN>
{text}
</REUTERS>
"""
TEXT = """<TEXT>&#2;
<TITLE>{title}</TITLE>
<DATELINE>    NEW YORK, Feb 26 - </DATELINE><BODY>{body}
 Reuter
&#3;</BODY></TEXT>"""


def _story(
    new: int, split: str, topics: list[str], title: str, body: str, has_topics: str = "YES", text: str | None = None
) -> str:
    tags = "".join(f"<D>{t}</D>" for t in topics)
    return STORY.format(
        has_topics=has_topics,
        split=split,
        old=5000 + new,
        new=new,
        topics=tags,
        text=text or TEXT.format(title=title, body=body),
    )


def _sgml_files(folder: Path) -> None:
    """The 22 reut2-*.sgm files of Reuters-21578: the first two hold ModApte train/test stories plus stories
    ModApte leaves out, the other twenty no stories (a partial set is refused)."""
    folder.mkdir(parents=True, exist_ok=True)
    first = [
        _story(i, "TRAIN", ["earn"], "PROFIT UP", f"Net profit rose {i} pct &lt;ABC&gt; said") for i in range(1, 9)
    ]
    first += [_story(i, "TRAIN", ["grain"], "WHEAT", f"Wheat exports {i} mln tonnes") for i in range(9, 17)]
    first += [_story(17, "TRAIN", ["earn", "acq"], "TWO TOPICS", "multi label story")]  # not single-topic
    first += [_story(18, "NOT-USED", ["earn"], "UNUSED", "not in ModApte")]
    first += [_story(19, "TRAIN", ["earn"], "NO", "topics attribute says no", has_topics="NO")]
    second = [_story(i, "TEST", ["earn"], "PROFIT", f"Net profit fell {i} pct caf\xe9") for i in range(20, 24)]
    second += [_story(i, "TEST", ["grain"], "CORN", f"Corn exports {i}") for i in range(24, 27)]
    second += [_story(27, "TEST", ["cocoa"], "COCOA", "cocoa is not a training topic")]
    second += [_story(28, "TEST", ["grain"], "", "", text='<TEXT TYPE="UNPROC">&#2;\n Sorghum shipments\n&#3;</TEXT>')]
    (folder / "reut2-000.sgm").write_bytes((SGML_HEADER + "".join(first)).encode("latin-1"))
    (folder / "reut2-001.sgm").write_bytes((SGML_HEADER + "".join(second)).encode("latin-1"))
    for number in range(2, 22):
        (folder / f"reut2-{number:03d}.sgm").write_bytes(SGML_HEADER.encode("latin-1"))


def test_reuters_sgml_modapte_single_topic_from_folder_and_tarball(tmp_path):
    _sgml_files(tmp_path / "extracted")
    (tmp_path / "packed").mkdir()
    with tarfile.open(tmp_path / "packed" / "reuters21578.tar.gz", "w:gz") as archive:
        for path in sorted((tmp_path / "extracted").glob("*.sgm")):
            archive.add(path, arcname=path.name)
    modules = []
    for folder in ("extracted", "packed"):
        module = ReutersDataModule(str(tmp_path / folder), format="sgml", vocab_size=50, seq_len=20, val_fraction=0.25)
        module.setup()
        modules.append(module)
    module, packed = modules
    assert unpack_words(module.load_corpus()["label_names"]) == ["earn", "grain"]
    assert {name: len(s) for name, s in module.splits.items()} == {"train": 12, "val": 4, "test": 8}
    assert np.bincount(module.splits["test"].tensors[1].numpy()).tolist() == [4, 4]
    words = unpack_words(module.load_corpus()["words"])
    assert {"abc", "café", "reuter", "profit", "sorghum"} <= set(words) and "lt" not in words  # entities decoded
    for split in ("train", "val", "test"):
        assert all((a == b).all() for a, b in zip(module.splits[split].tensors, packed.splits[split].tensors))


def test_missing_files_offline_name_the_path_and_the_official_url(tmp_path):
    cases = [
        (ImdbDataModule(str(tmp_path / "imdb")), "aclImdb_v1.tar.gz", "https://ai.stanford.edu/~amaas/data/sentiment/"),
        (ImdbDataModule(str(tmp_path / "imdb"), format="keras"), "imdb.npz", "tf-keras-datasets/imdb.npz"),
        (ReutersDataModule(str(tmp_path / "reuters")), "reuters.npz", "tf-keras-datasets/reuters.npz"),
        (ReutersDataModule(str(tmp_path / "reuters"), format="sgml"), "reuters21578.tar.gz", "archive.ics.uci.edu"),
    ]
    for module, file, url in cases:
        with pytest.raises(ConfigError, match=f"(?s){re.escape(str(tmp_path))}.*{re.escape(file)}.*{re.escape(url)}"):
            module.setup()


def test_unknown_format_and_foreign_npz_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="dataset.format='csv'.*raw.*keras"):
        ImdbDataModule(str(tmp_path), format="csv")
    folder = tmp_path / "reuters"
    folder.mkdir()
    np.savez(folder / "reuters.npz", images=np.zeros(3))
    (folder / "reuters_word_index.json").write_text("{}")
    with pytest.raises(ConfigError, match="not a Keras text dataset"):
        ReutersDataModule(str(folder)).setup()


# A tensorflow-datasets builder of real reviews (read from a JSON file), run in its own process so this one
# reads the prepared array_record files the way a user's run does: no builder code, no TensorFlow.
TFDS_BUILDER = """
import json, sys
import tensorflow_datasets as tfds

class TinyReviews(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "text": tfds.features.Text(), "label": tfds.features.ClassLabel(names=["neg", "pos"])}))

    def _split_generators(self, dl_manager):
        reviews = json.load(open(sys.argv[2]))
        return {split: self._generate_examples(reviews[split]) for split in ("train", "test")}

    def _generate_examples(self, reviews):
        for i, (text, label) in enumerate(reviews):
            yield i, {"text": text, "label": label}

TinyReviews(data_dir=sys.argv[1], file_format="array_record").download_and_prepare()
assert "tensorflow" not in sys.modules
"""


def test_imdb_from_a_prepared_tfds_dir(tiny_imdb, tmp_path):
    pytest.importorskip("tensorflow_datasets", reason="tensorflow-datasets not installed: lightsweep[tfds]")
    reviews = {
        split: [(text, label) for s, label, _, text in raw_reviews(tiny_imdb / "aclImdb") if s == split]
        for split in ("train", "test")
    }
    (tmp_path / "reviews.json").write_text(json.dumps(reviews))
    (tmp_path / "build.py").write_text(TFDS_BUILDER)
    subprocess.run(
        [sys.executable, str(tmp_path / "build.py"), str(tmp_path / "tfds"), str(tmp_path / "reviews.json")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    module = ImdbDataModule(
        str(tmp_path / "absent"),
        source="tfds",
        tfds_name="tiny_reviews",
        tfds_dir=str(tmp_path / "tfds"),
        cache_dir=str(tmp_path / "cache"),
        vocab_size=500,
        seq_len=2000,
        val_fraction=0.25,
    )
    module.setup()
    assert {name: len(s) for name, s in module.splits.items()} == {"train": 60, "val": 20, "test": 80}
    corpus = module.load_corpus()  # cached in the cache dir now
    assert (tmp_path / "cache" / "tiny_reviews-text-corpus.npz").is_file()
    words = unpack_words(corpus["words"])
    offsets, tokens = corpus["test_offsets"], corpus["test_tokens"]
    read_back = {
        (tuple(words[t] for t in tokens[offsets[d] : offsets[d + 1]]), int(corpus["test_labels"][d]))
        for d in range(len(offsets) - 1)
    }
    assert read_back == {(tuple(tokenize(text)), label) for text, label in reviews["test"]}  # texts keep labels
