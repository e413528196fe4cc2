"""The callbacks group on real runs: pruning reaches its sparsity, early stopping stops on a plateau,
the batch-size finder finds a size (and backs off from real out-of-memory failures), the LR finder
applies its suggestion, and callbacks=default behaves for every model family."""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from conftest import quiet_trainer
from lightsweep.callbacks.finders import SafeBatchSizeFinder
from lightsweep.errors import ConfigError

DIGITS = [
    "model=cnn",
    "dataset=digits",
    "model.conv_layers=2",
    "model.filters=8",
    "model.global_pooling=true",
    "model.hidden_layers=1",
    "model.first_hidden_units=16",
]  # two convs, two linears (pinned)


@pytest.mark.parametrize(
    "pruning",
    [
        ["callbacks.model_pruning.sparsity=0.6"],
        [
            "callbacks.model_pruning.sparsity=0.5",
            "callbacks.model_pruning.pruning_fn=ln_structured",
            "callbacks.model_pruning.use_global_unstructured=false",
            "callbacks.model_pruning.pruning_dim=0",
            "callbacks.model_pruning.pruning_norm=2",
        ],
    ],
    ids=["unstructured", "structured"],
)
def test_model_pruning_reaches_the_configured_sparsity(run_cfg, pruning):
    _, record = run_cfg(
        [
            *DIGITS,
            "callbacks=[default,model_pruning]",
            "trainer.max_epochs=3",
            "trainer.limit_train_batches=4",
            *pruning,
        ]
    )
    report, target = record["pruning"], record["config"]["callbacks"]["model_pruning"]["sparsity"]
    # whole channels are pruned per layer in the structured case: rounding to channels moves it a little
    assert report["sparsity"] == pytest.approx(target, abs=0.01 if "structured" not in str(pruning) else 0.05)
    assert report["pruned_layers"] == 4  # two convs, two linears
    assert report["forward_flops_dense"] > 0 and report["flops_removed"] == 0  # masks: dense kernels still run
    assert record["status"] == "ok" and record["metrics"]["test/acc"] > 0


def test_structured_pruning_needs_per_layer_mode():
    from lightsweep.callbacks.pruning import ScheduledPruning

    with pytest.raises(ConfigError, match="use_global_unstructured=false"):
        ScheduledPruning(pruning_fn="ln_structured", pruning_dim=0, pruning_norm=1)


def test_pruning_schedule_ramps_linearly_to_the_target():
    from lightsweep.callbacks.pruning import ScheduledPruning

    pruning = ScheduledPruning(sparsity=0.8, start_epoch=1, end_epoch=4)
    assert [pruning.target(e) for e in range(6)] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 0.8])


def test_early_stopping_stops_before_max_epochs_on_a_plateau(run_cfg):
    # lr 0 and no batch norm (whose running statistics would still move): val/loss is flat from epoch 1
    _, record = run_cfg(
        [
            *DIGITS,
            "trainer.max_epochs=10",
            "trainer.limit_train_batches=2",
            "model.batch_norm=false",
            "model.optimizer.lr=0.0",
            "callbacks.early_stopping.patience=2",
        ]
    )
    assert record["epochs_trained"] == 3  # the first epoch sets the best, two more without improvement


def test_batch_size_finder_finds_a_size_and_the_run_proceeds(run_cfg):
    _, record = run_cfg(
        [
            *DIGITS,
            "callbacks=[default,batch_size_finder]",
            "callbacks.batch_size_finder.max_trials=3",
            "trainer.limit_train_batches=3",
        ]
    )
    found = record["batch_size_finder"]
    assert found["initial"] == 64 and found["batch_size"] == 8 and found["sizes_that_ran"] == [2, 4, 8]
    assert record["status"] == "ok" and record["epochs_trained"] == 2
    assert record["efficiency"]["samples_per_second"] and record["metrics"]["test/acc"] > 0


def _memory_per_sample() -> int:
    """A third of this machine's RAM: two samples' worth is allocatable (and never touched), four are
    more than the machine has, so the CPU allocator refuses them with a real out-of-memory error."""
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 3


class HungryData(L.LightningDataModule):
    def __init__(self, batch_size: int) -> None:
        super().__init__()
        self.batch_size = batch_size

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,))), batch_size=self.batch_size)


class HungryNet(L.LightningModule):
    """Each step reserves memory in proportion to its batch (untouched: no RAM is used)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):
        workspace = torch.empty(len(batch[0]) * _memory_per_sample(), dtype=torch.uint8)
        del workspace
        return F.cross_entropy(self.layer(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit_hungry(finder: SafeBatchSizeFinder, batch_size: int, root: Path) -> HungryData:
    data = HungryData(batch_size)
    trainer = quiet_trainer(
        max_epochs=1,
        callbacks=[finder],
        default_root_dir=root,
    )
    trainer.fit(HungryNet(), datamodule=data)
    return data


def test_batch_size_finder_backs_off_after_a_real_out_of_memory_error(tmp_path):
    finder = SafeBatchSizeFinder(init_val=2, max_trials=4, steps_per_trial=1)
    data = _fit_hungry(finder, 2, tmp_path)  # 2 runs, 4 runs out of memory: back to 2, and training proceeds
    assert finder.report["batch_size"] == data.batch_size == 2 and finder.report["sizes_that_ran"] == [2]


def test_batch_size_finder_stops_clearly_when_no_size_fits(tmp_path):
    finder = SafeBatchSizeFinder(init_val=8, max_trials=1, steps_per_trial=1)
    with pytest.raises(ConfigError, match="no batch size fits in memory"):
        _fit_hungry(finder, 8, tmp_path)  # 8 fails and the search ends on the untried 4: never train on it


def test_lr_finder_applies_its_suggestion(run_cfg, tmp_path):
    _, record = run_cfg(
        [*DIGITS, "callbacks=[default,lr_finder]", "callbacks.lr_finder.num_training_steps=20", "trainer.max_epochs=1"],
        output_dir=tmp_path / "run",
    )
    lr = record["lr_finder"]["suggested_lr"]
    assert record["lr_finder"]["applied"] and 1e-8 < lr < 1.0
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(lr)


def test_default_callbacks_on_timehut_measure_health_without_warnings(run_cfg, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, record = run_cfg(
            ["model=timehut", "dataset=unit_test", "trainer.max_epochs=3", "callbacks=default"],
            output_dir=tmp_path / "run",
        )
    about_callbacks = [
        str(w.message)
        for w in caught
        if any(word in str(w.message) for word in ("monitor", "val/", "checkpoint", "Checkpoint"))
    ]
    assert about_callbacks == []
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["last.ckpt"]
    assert record["epochs_trained"] == 3  # early stopping stood aside: no validation loop
    health = record["health"]
    assert 0.0 <= health["dead_unit_ratio"] <= 1.0 and len(health["dead_units_by_layer"]) == 22  # 11 blocks x 2 GELUs
    assert "neuron_utilization" not in health["unmeasured"]
    assert record["efficiency"]["flops_per_step"] > 0 and record["efficiency"]["inference_samples_per_second"] > 0
    assert "confusion_matrix" in record["plots"]["skipped"] and "dead_units.png" in record["plots"]["files"]
