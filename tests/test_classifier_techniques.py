"""The classifiers' efficiency techniques (lightsweep.contracts): activation checkpointing keeps the maths,
channel pruning removes channels for real, INT8 copies stay accurate, distillation trains on Hinton's loss."""

from __future__ import annotations

import copy

import lightning as L
import pytest
import torch
import torch.ao.nn.quantized as nnq
import torch.ao.nn.quantized.dynamic as nnqd
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from conftest import quiet_trainer
from lightsweep.contracts import Checkpointable, Distillable, PrunesChannels, QuantizesForInference
from lightsweep.data.digits import DigitsDataModule
from lightsweep.data.imdb import ImdbDataModule
from lightsweep.errors import ConfigError
from lightsweep.models.cnn import CNNClassifier
from lightsweep.models.cnn_pruning import kept_filters
from lightsweep.models.lstm import LSTMClassifier

DIGITS = (1, 8, 8)
TINY_CNN = {"conv_layers": 2, "filters": 8, "first_hidden_units": 32}


def digits_batch(size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    data = DigitsDataModule()
    data.setup()
    inputs, targets = data.splits["train"].tensors
    return inputs[:size], targets[:size]


def forward_count(module: nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def loss_and_gradients(model: L.LightningModule, inputs: torch.Tensor, targets: torch.Tensor):
    torch.manual_seed(1)  # the same dropout masks in both runs
    loss = F.cross_entropy(model(inputs), targets)
    loss.backward()
    return loss.detach(), {name: p.grad for name, p in model.named_parameters()}


def test_families_offer_the_techniques_that_apply_to_them():
    cnn, lstm = CNNClassifier(DIGITS, 10), LSTMClassifier((20,), 2, vocab_size=30)
    assert all(isinstance(cnn, c) for c in (Checkpointable, PrunesChannels, QuantizesForInference, Distillable))
    assert all(isinstance(lstm, c) for c in (Checkpointable, QuantizesForInference, Distillable))
    assert not isinstance(lstm, PrunesChannels)  # its cost is in the LSTM, not in dense channels


def test_cnn_checkpointing_keeps_loss_gradients_and_batch_norm_statistics():
    torch.manual_seed(0)
    inputs, targets = digits_batch()
    plain = CNNClassifier(DIGITS, 10, **TINY_CNN).train()
    checkpointed = copy.deepcopy(plain)
    checkpointed.set_checkpointing(True)
    conv_calls = forward_count(checkpointed.net[0])

    loss, gradients = loss_and_gradients(plain, inputs, targets)
    loss_checkpointed, gradients_checkpointed = loss_and_gradients(checkpointed, inputs, targets)

    assert conv_calls[0] == 2, "each block must run again in backward (recomputed, not stored)"
    assert torch.equal(loss, loss_checkpointed)
    assert all(torch.allclose(gradients[name], g, atol=1e-6) for name, g in gradients_checkpointed.items())
    for name, value in checkpointed.state_dict().items():  # running mean, var and num_batches_tracked
        assert torch.allclose(plain.state_dict()[name], value, atol=1e-7), name
    assert checkpointed.net[1].num_batches_tracked.item() == 1  # the recomputation did not count the batch
    with torch.no_grad():  # evaluation never recomputes
        checkpointed(inputs)
    assert conv_calls[0] == 3


def test_lstm_checkpointing_recomputes_each_layer_with_the_same_gradients():
    torch.manual_seed(0)
    plain = LSTMClassifier((20,), 3, vocab_size=50, embedding_dim=8, lstm_units=6, lstm_layers=2).train()
    checkpointed = copy.deepcopy(plain)
    checkpointed.set_checkpointing(True)
    lstm_calls = forward_count(checkpointed.net.layers[1][1])
    tokens = torch.randint(1, 50, (8, 20))
    tokens[:3, 12:] = 0  # padded texts
    targets = torch.randint(0, 3, (8,))

    loss, gradients = loss_and_gradients(plain, tokens, targets)
    loss_checkpointed, gradients_checkpointed = loss_and_gradients(checkpointed, tokens, targets)

    assert lstm_calls[0] == 2
    assert torch.allclose(loss, loss_checkpointed, atol=1e-7)
    assert all(torch.allclose(gradients[name], g, atol=1e-6) for name, g in gradients_checkpointed.items())


def flops(model: nn.Module, inputs: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(inputs)
    return counter.get_total_flops()


@pytest.mark.parametrize("global_pooling", [False, True])
def test_pruning_removes_the_weakest_channels_and_keeps_what_the_rest_compute(global_pooling):
    """Channels whose batch norm outputs zero contribute nothing: pruning exactly those (the smallest L1
    filters) must leave the outputs unchanged, which only holds if every reader was sliced right."""
    torch.manual_seed(0)
    inputs, _ = digits_batch(32)
    model = CNNClassifier(DIGITS, 10, global_pooling=global_pooling, **TINY_CNN).eval()
    for start, _ in model.blocks:
        gone = torch.ones(model.net[start].out_channels, dtype=torch.bool)
        gone[kept_filters(model.net[start], 0.25)] = False
        with torch.no_grad():
            model.net[start + 1].weight[gone] = 0.0
            model.net[start + 1].bias[gone] = 0.0
    with torch.no_grad():
        before = model(inputs)
    parameters, cost = sum(p.numel() for p in model.parameters()), flops(model, inputs)

    report = model.prune_channels(0.25)

    assert report == {"layers": {"net.0": [8, 6], "net.4": [16, 12]}, "channels_before": 24, "channels_after": 18}
    with torch.no_grad():
        after = model(inputs)
    assert after.shape == before.shape and torch.allclose(after, before, atol=1e-5)
    assert sum(p.numel() for p in model.parameters()) < parameters
    assert flops(model, inputs) < 0.8 * cost
    reloaded = CNNClassifier(**model.hparams)  # checkpoints of the pruned model load into its hparams
    reloaded.load_state_dict(model.state_dict())


def test_pruning_nothing_changes_nothing_and_bad_amounts_are_refused():
    torch.manual_seed(0)
    inputs, _ = digits_batch(16)
    model = CNNClassifier(DIGITS, 10, **TINY_CNN).eval()
    with torch.no_grad():
        before = model(inputs)
    assert model.prune_channels(0.0)["channels_after"] == 24
    with torch.no_grad():
        assert torch.equal(model(inputs), before)
    with pytest.raises(ConfigError, match="amount is the share of channels to remove"):
        model.prune_channels(1.0)


class PruneAtSecondEpoch(L.Callback):
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: CNNClassifier) -> None:
        if trainer.current_epoch == 1:
            pl_module.prune_channels(0.5)
            trainer.strategy.setup_optimizers(trainer)  # the optimizer held the removed parameters
            self.pruned = copy.deepcopy(pl_module.state_dict())


def test_training_goes_on_after_pruning_with_a_rebuilt_optimizer():
    torch.manual_seed(0)
    data = DigitsDataModule(batch_size=32)
    model = CNNClassifier(DIGITS, 10, **TINY_CNN)
    pruning = PruneAtSecondEpoch()
    trainer = quiet_trainer(max_epochs=2, limit_train_batches=8, limit_val_batches=2, callbacks=[pruning])
    trainer.fit(model, datamodule=data)
    assert model.net[0].out_channels == 4 and model.net[4].in_channels == 4
    assert not torch.equal(model.net[0].weight, pruning.pruned["net.0.weight"])  # the pruned conv trained on
    assert torch.isfinite(trainer.callback_metrics["train/loss"])


def test_cnn_int8_is_static_fused_and_as_accurate():
    torch.manual_seed(0)
    data = DigitsDataModule(batch_size=64)
    model = CNNClassifier(DIGITS, 10, **TINY_CNN)
    trainer = quiet_trainer(max_epochs=4, limit_val_batches=0)
    trainer.fit(model, datamodule=data)
    logged = trainer.test(model, datamodule=data, verbose=False)[0]
    weights = copy.deepcopy(model.state_dict())
    calibration = [batch[0] for _, batch in zip(range(4), data.train_dataloader(), strict=False)]

    quantized = model.quantized_network(calibration)

    kinds = {type(m) for m in quantized.modules()}
    assert any(issubclass(k, nnq.Conv2d) for k in kinds) and any(issubclass(k, nnq.Linear) for k in kinds)
    assert not any(issubclass(k, nn.BatchNorm2d) for k in kinds)  # folded into the fused conv
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())  # the module is untouched
    inputs = data.splits["test"].tensors[0][:128]
    with torch.no_grad():
        float_logits, int8_logits = model.eval()(inputs), quantized(inputs)
    assert (float_logits - int8_logits).abs().mean() < 0.1 * float_logits.abs().mean()
    as_float, as_int8 = model.evaluate_network(model, data), model.evaluate_network(quantized, data)
    assert as_float == pytest.approx({"accuracy": logged["test/acc"], "f1_macro": logged["test/f1_macro"]}, abs=1e-6)
    assert as_float["accuracy"] > 0.8
    assert abs(as_int8["accuracy"] - as_float["accuracy"]) < 0.03


def test_lstm_int8_is_dynamic_and_reads_the_same_token_batches(tiny_imdb):
    torch.manual_seed(0)
    data = ImdbDataModule(str(tiny_imdb), vocab_size=300, seq_len=64, batch_size=16)
    model = LSTMClassifier((64,), 2, embedding_dim=16, lstm_units=8, hidden_units=[8])
    trainer = quiet_trainer(max_epochs=2, limit_val_batches=0)
    trainer.fit(model, datamodule=data)
    logged = trainer.test(model, datamodule=data, verbose=False)[0]

    quantized = model.quantized_network([])

    assert sum(isinstance(m, nnqd.LSTM) for m in quantized.modules()) == 2  # both directions
    assert any(isinstance(m, nnqd.Linear) for m in quantized.modules())
    assert isinstance(model.net.layers[0][0], nn.LSTM) and not isinstance(model.net.layers[0][0], nnqd.LSTM)
    tokens = data.splits["test"].tensors[0][:32]  # padded texts: lengths come from the padding
    with torch.no_grad():
        float_logits, int8_logits = model.eval()(tokens), quantized(tokens)
    assert torch.allclose(float_logits, int8_logits, atol=0.05)
    as_float, as_int8 = model.evaluate_network(model, data), model.evaluate_network(quantized, data)
    assert as_float == pytest.approx({"accuracy": logged["test/acc"], "f1_macro": logged["test/f1_macro"]}, abs=1e-6)
    assert abs(as_int8["accuracy"] - as_float["accuracy"]) <= 0.05


def hinton_loss(logits, teacher_logits, targets, weight, temperature):
    """Written out from the paper, independently of distillation_loss."""
    teacher_p = torch.softmax(teacher_logits / temperature, dim=1)
    student_log_p = torch.log_softmax(logits / temperature, dim=1)
    kl = (teacher_p * (teacher_p.log() - student_log_p)).sum(dim=1).mean()
    return (1 - weight) * F.cross_entropy(logits, targets) + weight * temperature**2 * kl


@pytest.mark.parametrize("family", ["cnn", "lstm"])
def test_distillation_loss_is_hintons(family):
    torch.manual_seed(0)
    if family == "cnn":
        inputs, targets = digits_batch(32)
        student = CNNClassifier(DIGITS, 10, dropout=0.0, **TINY_CNN)
        teacher = CNNClassifier(DIGITS, 10, conv_layers=2, filters=16)
    else:
        inputs, targets = torch.randint(1, 40, (8, 12)), torch.randint(0, 3, (8,))
        student = LSTMClassifier((12,), 3, vocab_size=40, embedding_dim=8, lstm_units=4, dropout=0.0)
        teacher = LSTMClassifier((12,), 3, vocab_size=40, embedding_dim=8, lstm_units=16)
    student.train()
    student.set_teacher(teacher, weight=0.7, temperature=3.0)
    with torch.no_grad():
        expected = hinton_loss(student(inputs), teacher.eval()(inputs), targets, 0.7, 3.0)
    loss = student.training_step((inputs, targets), 0)
    assert torch.allclose(loss, expected, atol=1e-6)
    assert not torch.allclose(loss, F.cross_entropy(student(inputs), targets), atol=1e-3)


def test_teacher_is_frozen_and_not_part_of_the_student():
    torch.manual_seed(0)
    data = DigitsDataModule(batch_size=64)
    teacher = CNNClassifier(DIGITS, 10, conv_layers=2, filters=16).train()
    teacher_weights = copy.deepcopy(teacher.state_dict())
    student = CNNClassifier(DIGITS, 10, **TINY_CNN)
    student_parameters = {id(p) for p in student.parameters()}
    student.set_teacher(teacher, weight=0.5, temperature=2.0)

    assert student.state_dict().keys() == CNNClassifier(DIGITS, 10, **TINY_CNN).state_dict().keys()
    assert {id(p) for p in student.parameters()} == student_parameters
    quiet_trainer(max_epochs=1, limit_train_batches=5, limit_val_batches=0).fit(student, datamodule=data)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(teacher_weights[k], v) for k, v in teacher.state_dict().items())  # BN stats too
    with pytest.raises(ConfigError, match="weight=1.5 must be in"):
        student.set_teacher(teacher, weight=1.5, temperature=2.0)
