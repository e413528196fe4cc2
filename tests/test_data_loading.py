"""DataLoader workers and pinned memory (dataset.num_workers / dataset.pin_memory): workers change where
batches are gathered, never which batches, their order, or any later random draw of a seeded run."""

from __future__ import annotations

import pickle
import warnings
from functools import partial

import lightning as L
import pytest
import torch

from conftest import shared_data
from lightsweep.build import build
from lightsweep.config import compose
from lightsweep.data.digits import DigitsDataModule
from lightsweep.data.imdb import ImdbDataModule
from lightsweep.data.loading import resolve_loader_settings
from lightsweep.data.timeseries import TimeSeriesDataModule
from lightsweep.errors import ConfigError

UNREACHABLE = "http://127.0.0.1:9/"  # the shared files are there: nothing is fetched


def digits(**loading):
    return DigitsDataModule(batch_size=128, **loading)


def chinatown(**loading):
    return TimeSeriesDataModule("Chinatown", str(shared_data("UCR").parent), download_url=UNREACHABLE, **loading)


def seeded_draws(make, workers: int, epochs: int = 2) -> list[torch.Tensor]:
    """Every tensor of every batch of every loader over `epochs` epochs (train, then the evaluation
    loaders, as Lightning interleaves them), then a draw of the global RNG, under one seed."""
    L.seed_everything(3, workers=True, verbose=False)
    module = make(num_workers=workers)
    module.setup()
    train = module.train_dataloader()
    evaluation = module.test_dataloader() if isinstance(module, TimeSeriesDataModule) else [module.val_dataloader()]
    assert module.loader_settings == {"num_workers": workers, "pin_memory": False, "reason": None}
    assert all(loader.num_workers == workers for loader in (train, *evaluation))
    drawn = []
    for _ in range(epochs):
        for loader in (train, *evaluation):
            drawn += [t.clone() for batch in loader for t in batch]
    return [*drawn, torch.rand(4)]


@pytest.mark.parametrize("make", ["digits", "chinatown", "imdb"])
def test_workers_serve_the_same_batches_in_the_same_order(make, request):
    if make == "imdb":  # real reviews, batched by the length-bucketing batch sampler
        folder = request.getfixturevalue("tiny_imdb")
        make_module = partial(ImdbDataModule, str(folder), batch_size=8)
    else:
        make_module = {"digits": digits, "chinatown": chinatown}[make]
    in_process, by_workers = seeded_draws(make_module, 0), seeded_draws(make_module, 2)
    assert len(in_process) == len(by_workers) > 4
    assert all(torch.equal(a, b) for a, b in zip(in_process, by_workers, strict=True))


def test_what_workers_receive_survives_pickling():
    """Linux forks its workers; where they are spawned the dataset and collate_fn travel pickled."""
    module = digits(num_workers=2)
    module.setup()
    loader = module.train_dataloader()
    dataset, collate = pickle.loads(pickle.dumps((loader.dataset, loader.collate_fn)))
    indices = [5, 0, 7]
    assert all(
        torch.equal(a, b) for a, b in zip(collate(dataset.__getitems__(indices)), loader.dataset.__getitems__(indices))
    )


def test_a_training_run_with_workers_equals_the_run_without(run_cfg, tmp_path):
    args = ["model=cnn", "dataset=digits", "seed=5", "callbacks=none"]
    plain, _ = run_cfg(args, tmp_path / "plain")
    with_workers, record = run_cfg([*args, "+dataset.num_workers=2"], tmp_path / "workers")
    assert with_workers.status == "ok" and record["config"]["dataset"]["num_workers"] == 2
    assert with_workers.metrics == plain.metrics  # 2 epochs: persistent workers reused in the second


@pytest.mark.skipif(torch.cuda.is_available(), reason="pinning is used where CUDA is")
def test_pin_memory_without_cuda_is_off_and_says_why_once():
    module = digits(pin_memory=True)
    module.setup()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch would warn at every epoch that pinning does nothing
        loader = module.train_dataloader()
        assert sum(len(batch[1]) for batch in loader) == len(module.splits["train"])
    assert loader.pin_memory is False
    assert module.loader_settings["reason"] == "pin_memory speeds up copies to a CUDA GPU only; training runs on cpu"


def test_data_kept_on_the_gpu_needs_no_workers_or_pinning():
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert resolve_loader_settings(2, True, cuda, cuda) == {
        "num_workers": 0,
        "pin_memory": False,
        "reason": "the data lives on cuda:0 (moved there once): no workers or pinning needed",
    }
    assert resolve_loader_settings(2, True, cpu, cuda) == {"num_workers": 2, "pin_memory": True, "reason": None}
    assert resolve_loader_settings(0, False, cuda, cuda)["reason"] is None  # nothing asked, nothing refused


@pytest.mark.parametrize(
    "override,message",
    [
        ("+dataset.num_workers=-1", "dataset.num_workers=-1 is not valid: use a whole number >= 0"),
        ("+dataset.num_workers=1.5", "dataset.num_workers=1.5 is not valid"),
        ("+dataset.num_workers=two", "dataset.num_workers='two' is not valid"),
        ("+dataset.num_workers=true", "dataset.num_workers=True is not valid"),
        ("+dataset.pin_memory=maybe", "dataset.pin_memory='maybe' is not valid: use true or false."),
    ],
)
def test_bad_loader_settings_give_one_line_errors(tmp_path, override, message):
    cfg = compose(["dataset=digits", override], output_dir=tmp_path)
    with pytest.raises(ConfigError) as refused:
        build(cfg.dataset, where="dataset")
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)
