"""HealthMonitor on real training: it flags dead ReLUs and exploding gradients, and run.json's health
score follows the configured weights."""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from conftest import quiet_trainer
from lightsweep.callbacks.health import HealthMonitor


class TinyNet(L.LightningModule):
    def __init__(self, first_bias: float = 0.0, loss_scale: float = 1.0) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
        nn.init.constant_(self.net[0].bias, first_bias)
        self.loss_scale = loss_scale

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        loss = F.cross_entropy(self(batch[0]), batch[1]) * self.loss_scale
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-9)  # tiny steps: the diagnosis is of the set-up


def fit(module: L.LightningModule, **trainer_settings) -> dict:
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    monitor = HealthMonitor()
    quiet_trainer(max_epochs=3, callbacks=[monitor], **trainer_settings).fit(module, DataLoader(data, batch_size=16))
    return monitor.report


def test_healthy_network_is_not_flagged():
    report = fit(TinyNet())
    assert report["gradient_status"] == "healthy" and report["dead_unit_ratio"] < 0.5


def test_dead_relus_are_flagged():
    report = fit(TinyNet(first_bias=-100.0))  # every pre-activation is negative: the ReLUs never fire
    assert report["dead_unit_ratio"] == 1.0
    assert report["components"]["neuron_utilization"] == 0.0
    assert report["gradient_layers"]["net.0"] == "dead"  # no gradient reaches the first layer
    assert any("dead" in text.lower() for text in report["recommendations"])


def test_exploding_gradients_are_flagged():
    report = fit(TinyNet(loss_scale=1e6))
    assert report["gradient_status"] == "exploding"
    assert report["components"]["gradient_health"] < 1.0


def test_bad_weights_are_refused():
    from lightsweep.errors import ConfigError

    with pytest.raises(ConfigError):
        HealthMonitor(weights={"neuron_utilization": 1.0})


@pytest.mark.slow
def test_run_json_health_follows_the_configured_weights(run_cfg, tmp_path):
    weights = {
        "neuron_utilization": 0.5,
        "parameter_efficiency": 0.1,
        "training_stability": 0.1,
        "gradient_health": 0.1,
        "convergence_quality": 0.1,
        "accuracy_consistency": 0.1,
    }
    overrides = [
        "callbacks=health",
        "trainer.max_epochs=3",
        *(f"callbacks.health.weights.{k}={v}" for k, v in weights.items()),
    ]
    _, record = run_cfg(overrides)
    health = record["health"]
    assert set(health["components"]) == set(weights) and health["weights"] == weights
    measured = {name: score for name, score in health["components"].items() if score is not None}
    assert set(measured) | set(health["unmeasured"]) == set(weights)  # 3 epochs: accuracy_consistency needs 5
    expected = sum(weights[name] * score for name, score in measured.items()) / sum(weights[n] for n in measured)
    assert health["overall"] == pytest.approx(min(1.0, max(0.0, expected)))
    assert isinstance(health["recommendations"], list) and health["gradient_status"] in {
        "healthy",
        "vanishing",
        "exploding",
        "dead",
        "mixed",
    }


def test_efficiency_profiler_counts_flops_like_a_hand_count():
    from lightsweep.callbacks.efficiency import EfficiencyProfiler

    torch.manual_seed(0)
    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    profiler = EfficiencyProfiler()
    trainer = quiet_trainer(
        max_epochs=2,
        callbacks=[profiler],
    )
    trainer.fit(TinyNet(), DataLoader(data, batch_size=16))
    # Linear(4,16) then Linear(16,2), batch 16: forward 2*16*(4*16 + 16*2) = 3072; backward: both weight
    # grads (2048 + 1024) and the second layer's input grad (1024); the input needs no gradient.
    assert profiler.report["flops_per_step"] == 3072 + 2048 + 1024 + 1024
    assert profiler.report["parameters"] == 4 * 16 + 16 + 16 * 2 + 2
    assert len(profiler.report["epoch_seconds"]) == 2 and min(profiler.report["samples_per_second"]) > 0
    assert profiler.report["peak_cpu_rss_mb"] > 10


def test_run_json_efficiency_section(run_cfg):
    _, record = run_cfg(["callbacks=efficiency", "trainer.max_epochs=2", "model=cnn", "dataset=digits"])
    efficiency = record["efficiency"]
    assert efficiency["flops_per_step"] > 0 and efficiency["parameters"] > 0 and efficiency["model_size_mb"] > 0
    assert len(efficiency["epoch_seconds"]) == 2 and efficiency["peak_cuda_memory_mb"] is None


def test_lstm_units_are_probed_through_hooks():
    from lightsweep.models.lstm import LSTMClassifier

    torch.manual_seed(0)
    tokens = torch.randint(1, 50, (64, 12))
    tokens[:, 9:] = 0  # padding after each text
    data = TensorDataset(tokens, torch.randint(0, 2, (64,)))
    model = LSTMClassifier(
        input_shape=(12,), num_classes=2, vocab_size=50, embedding_dim=8, lstm_units=6, hidden_units=(4,)
    )
    monitor = HealthMonitor()
    trainer = quiet_trainer(
        max_epochs=1,
        callbacks=[monitor],
    )
    trainer.fit(model, DataLoader(data, batch_size=16))
    report = monitor.report
    lstms = [name for name, module in model.named_modules() if isinstance(module, nn.LSTM)]
    relus = [name for name, module in model.named_modules() if isinstance(module, nn.ReLU)]
    assert lstms and set(report["dead_units_by_layer"]) == {*lstms, *relus}
    assert all(report["dead_units_by_layer"][name] == 0.0 for name in lstms)  # every LSTM unit varies
    assert "neuron_utilization" not in report["unmeasured"] and "training_stability" in report["unmeasured"]


def _fit_profiled_after_a_big_allocation() -> tuple[dict, float]:
    """(efficiency report, MiB of a 400 MiB buffer touched and freed before the fit)."""
    import numpy as np

    from lightsweep.callbacks.efficiency import EfficiencyProfiler

    buffer = np.ones(400 * 2**20 // 8)  # the process's peak RSS now covers it; freed before training
    del buffer
    profiler = EfficiencyProfiler(count_flops=False)
    trainer = quiet_trainer(
        max_epochs=1,
        callbacks=[profiler],
    )
    trainer.fit(TinyNet(), DataLoader(TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,))), batch_size=16))
    return profiler.report, 400.0


def test_peak_memory_is_the_fits_when_the_os_resets_it():
    import os

    if not os.access("/proc/self/clear_refs", os.W_OK):
        pytest.skip("this OS cannot reset the peak RSS (Linux /proc/self/clear_refs)")
    report, freed_mb = _fit_profiled_after_a_big_allocation()
    assert report["peak_cpu_rss_source"] == "fit (reset)"
    assert report["peak_cpu_rss_mb"] < _current_rss_mb() + freed_mb / 2  # the freed buffer is not in it


@pytest.mark.parametrize("clear_refs", ["missing", "ignored"])
def test_peak_memory_says_when_it_covers_the_whole_process(monkeypatch, tmp_path, clear_refs):
    from lightsweep.callbacks import efficiency

    # missing: the OS has no way to reset the peak; ignored: the write is accepted but the peak stays
    target = tmp_path / "absent" / "clear_refs" if clear_refs == "missing" else tmp_path / "clear_refs"
    monkeypatch.setattr(efficiency, "_CLEAR_REFS", target)
    report, freed_mb = _fit_profiled_after_a_big_allocation()
    assert report["peak_cpu_rss_source"] == "process lifetime"
    assert report["peak_cpu_rss_mb"] >= freed_mb


def _current_rss_mb() -> float:
    from pathlib import Path

    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_gradients_are_read_when_steps_accumulate_batches():
    # the epoch's first optimiser step comes after its second batch: gradients are read there (they
    # were never read, and the unmeasured gradient score could not be logged)
    report = fit(TinyNet(), accumulate_grad_batches=2)
    assert set(report["gradient_layers"]) == {"net.0", "net.2"}
    assert report["components"]["gradient_health"] == 1.0
