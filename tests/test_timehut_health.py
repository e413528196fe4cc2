"""TimeHUT's health and efficiency numbers: the parameters of the network that is trained (not its
weight-averaged copy), components that cannot be measured, structurally unused taps on short series,
and the weight average that starts from the initial weights (TS2Vec's ts2vec.py)."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from conftest import quiet_trainer
from lightsweep.models.timehut.encoder import TSEncoder

# UnitTest: 20 training series of length 24 (Chinatown's), one channel
SHORT = ["model=timehut", "dataset=unit_test", "callbacks=[efficiency,health]", "test_ckpt=last"]


def encoder_parameters(hidden: int, output: int, depth: int, channels: int = 1, kernel: int = 3) -> int:
    """By hand: input projection, `depth` hidden blocks of two convs, the last block's two convs and projector."""
    projection = channels * hidden + hidden
    hidden_block = 2 * (hidden * hidden * kernel + hidden)
    last_block = (hidden * output * kernel + output) + (output * output * kernel + output) + (hidden * output + output)
    return projection + depth * hidden_block + last_block


def unused_side_taps(hidden: int, output: int, depth: int, length: int) -> int:
    """By hand: a kernel-3 block with dilation 2**i >= length reads only padding with its two side taps."""
    far = [i for i in range(depth + 1) if 2**i >= length]
    widths = [(hidden, hidden)] * depth + [(hidden, output)]
    return sum(2 * (w_in * w_out + w_out * w_out) for i, (w_in, w_out) in enumerate(widths) if i in far)


def test_parameters_are_the_trained_encoders_not_its_averaged_copy(run_cfg):
    _, record = run_cfg([*SHORT, "trainer.max_epochs=1"])
    efficiency, expected = record["efficiency"], encoder_parameters(64, 320, 10)
    assert expected == 637_248
    assert efficiency["parameters"] == efficiency["trainable_parameters"] == expected
    assert efficiency["model_size_mb"] == pytest.approx(expected * 4 / 2**20)


def test_parameter_efficiency_without_accuracy_is_unmeasured_and_the_overall_reweighted(run_cfg):
    _, record = run_cfg([*SHORT, "trainer.max_epochs=3"])
    health = record["health"]
    components, weights = health["components"], health["weights"]
    assert components["parameter_efficiency"] is None and "parameter_efficiency" in health["unmeasured"]
    measured = {name: score for name, score in components.items() if score is not None}
    total = sum(weights[name] for name in measured)
    assert health["overall_weights"] == pytest.approx({name: weights[name] / total for name in measured})
    assert health["overall"] == pytest.approx(sum(weights[n] * s for n, s in measured.items()) / total)
    assert not any("parameter_efficiency" in line for line in health["recommendations"])


def test_taps_past_a_short_series_are_reported_as_structurally_unused_not_dead(run_cfg):
    _, record = run_cfg([*SHORT, "trainer.max_epochs=3"])
    health = record["health"]
    assert "dead" not in health["gradient_layers"].values()
    unused = health["structurally_unused"]
    expected = unused_side_taps(64, 320, 10, 24)
    assert unused["parameters"] == expected == 327_680
    assert unused["parameter_share"] == pytest.approx(expected / 637_248)
    assert set(unused["weights"]) == {f"encoder.blocks.{i}.conv{j}.conv.weight" for i in range(5, 11) for j in (1, 2)}
    assert all(share == pytest.approx(2 / 3) for share in unused["weights"].values())  # two of three taps
    advice = " ".join(health["recommendations"])
    assert "model.depth=4" in advice and "normalization or clipping" not in advice


def test_taps_no_training_crop_reaches_are_not_called_dead(run_cfg):
    # Training windows of 13 of the 24 steps (too few to cut series into sections): block 4 (dilation 16)
    # is within the series, but no training crop reaches its side taps, so they get zero gradient every step.
    _, record = run_cfg([*SHORT, "trainer.max_epochs=3", "dataset.max_train_length=13"])
    assert "dead" not in record["health"]["gradient_layers"].values()
    assert "encoder.blocks.4.conv1.conv.weight" not in record["health"]["structurally_unused"]["weights"]


@pytest.mark.parametrize("length", [24, 10, 3])
def test_unreachable_weights_are_exactly_those_without_gradient(length):
    torch.manual_seed(0)
    encoder = TSEncoder(input_dims=2, output_dims=8, hidden_dims=4, depth=5)
    encoder(torch.randn(3, length, 2), mask="all_true").square().sum().backward()
    unreachable = encoder.unreachable_weights(length)
    for name, parameter in encoder.named_parameters():
        no_gradient = parameter.grad == 0
        mask = unreachable.get(name, torch.zeros_like(no_gradient))
        assert torch.equal(mask, mask & no_gradient), name  # what is called unreachable gets no gradient
        if name.endswith("conv.weight"):
            dilation = 2 ** int(name.split(".")[1])
            assert bool(mask[:, :, 0].all()) == (dilation >= length), name  # decided by dilation vs length


class WeightRecorder(L.Callback):
    """The encoder's weights before training and after every optimiser step."""

    def __init__(self) -> None:
        self.states: list[dict[str, torch.Tensor]] = []

    def on_train_start(self, trainer, pl_module) -> None:
        self.states.append({k: v.detach().clone() for k, v in pl_module.encoder.state_dict().items()})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.states.append({k: v.detach().clone() for k, v in pl_module.encoder.state_dict().items()})


def test_weight_average_includes_the_initial_weights():
    from torch.utils.data import DataLoader, TensorDataset

    from lightsweep.models.timehut.module import TimeHUT

    torch.manual_seed(0)
    model = TimeHUT(input_shape=(12, 1), num_classes=2, hidden_dims=4, output_dims=8, depth=2, lr=0.05)
    recorder = WeightRecorder()
    trainer = quiet_trainer(
        max_steps=3,
        callbacks=[recorder],
    )
    trainer.fit(model, DataLoader(TensorDataset(torch.randn(8, 12, 1)), batch_size=4))
    assert len(recorder.states) == 4  # initial + 3 steps
    averaged = model.averaged_encoder.module.state_dict()
    for name, value in averaged.items():
        expected = torch.stack([state[name] for state in recorder.states]).mean(dim=0)
        assert torch.allclose(value, expected, atol=1e-6), name
    assert int(model.averaged_encoder.n_averaged) == 4
