"""The LSTM family: exact handling of padding, vocabulary sizing, and whole runs on real IMDB reviews."""

from __future__ import annotations

import pytest
import torch

from lightsweep.errors import ConfigError
from lightsweep.models.lstm import LSTMClassifier, TextLSTM, reverse_within

TINY_DATA = [
    "dataset=imdb",
    "dataset.vocab_size=300",
    "dataset.seq_len=64",
    "dataset.batch_size=16",
    "dataset.val_fraction=0.2",
]
TINY_MODEL = ["model=lstm", "model.embedding_dim=16", "model.lstm_units=8", "model.hidden_units=[8]"]


def test_reverse_within_reverses_only_the_real_steps():
    x = torch.arange(1, 6).float().repeat(2, 1)[..., None]  # two sequences 1..5
    flipped = reverse_within(x, torch.tensor([5, 3]))[..., 0]
    assert flipped.tolist() == [[5, 4, 3, 2, 1], [3, 2, 1, 4, 5]]


@pytest.mark.parametrize("bidirectional,layers,pooling", [(True, 2, "max"), (True, 1, "last"), (False, 1, "mean")])
def test_padding_never_changes_a_texts_logits(bidirectional, layers, pooling):
    """A text padded inside a batch of longer texts gets exactly the logits it gets alone."""
    torch.manual_seed(0)
    net = TextLSTM(50, 3, 8, 6, bidirectional, layers, [5], dropout=0.0, pooling=pooling).eval()
    texts = [torch.randint(2, 50, (n,)) for n in (9, 4, 1, 7, 0)]  # 0: an empty text, all padding
    batch = torch.zeros(len(texts), 12, dtype=torch.long)
    for row, text in enumerate(texts):
        batch[row, : len(text)] = text
    with torch.no_grad():
        together = net(batch)
        alone = torch.cat([net(text[None] if len(text) else torch.zeros(1, 3, dtype=torch.long)) for text in texts])
    assert torch.allclose(together, alone, atol=1e-6)


def test_lstm_on_images_is_a_config_error():
    with pytest.raises(ConfigError, match="model=lstm needs token sequences"):
        LSTMClassifier((1, 28, 28), 10)


def test_auto_model_picks_lstm_for_text(run_cfg, tiny_imdb):
    result, record = run_cfg(
        [f"paths.data_dir={tiny_imdb.parent}", "model=auto", "trainer.max_epochs=1", "callbacks=none", *TINY_DATA]
    )
    assert result.status == "ok" and record["model_family"] == result.model_family == "lstm"
    assert record["config"]["model"]["_target_"] == "lightsweep.models.lstm.LSTMClassifier"
    assert 0.0 <= record["metrics"]["test/acc"] <= 1.0


def test_lstm_run_with_health_checkpoints_and_default_budget(run_cfg, tiny_imdb):
    threads = torch.get_num_threads()
    result, record = run_cfg(
        [f"paths.data_dir={tiny_imdb.parent}", "callbacks=default", "trainer.max_epochs=null", *TINY_DATA, *TINY_MODEL]
    )
    assert result.status == "ok" and record["model_family"] == "lstm"
    assert record["config"]["trainer"]["max_epochs"] == 3 and record["epochs_trained"] == 3  # the LSTM's budget
    assert {"train/loss", "val/acc", "test/acc", "test/f1_macro"} <= set(record["metrics"])
    assert record["health"]["dead_unit_ratio"] is not None  # forward hooks saw the LSTM and ReLU outputs
    assert torch.get_num_threads() == threads  # cpu_threads is restored after the run
    checkpoint = next((result.run_dir / "checkpoints").glob("*.ckpt"))
    reloaded = LSTMClassifier.load_from_checkpoint(checkpoint)  # vocab_size was saved with it
    assert reloaded.net.embedding.num_embeddings == 300


def test_model_vocabulary_smaller_than_the_datasets_is_refused(run_cfg, tiny_imdb):
    with pytest.raises(ConfigError, match="model.vocab_size=100 is smaller than the dataset's vocabulary .300 ids"):
        run_cfg(
            [f"paths.data_dir={tiny_imdb.parent}", "model.vocab_size=100", "callbacks=none", *TINY_DATA, *TINY_MODEL]
        )
