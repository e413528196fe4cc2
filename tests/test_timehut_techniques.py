"""TimeHUT's efficiency techniques for real (lightsweep.contracts): activation checkpointing with unchanged maths,
structured pruning that removes channels (fewer parameters and FLOPs, training goes on, checkpoints reload),
static INT8 inference of the averaged encoder, and distillation towards a frozen, wider teacher."""

from __future__ import annotations

import copy

import lightning as L
import numpy as np
import pytest
import torch
import torch.ao.nn.quantized as nnq
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from conftest import quiet_trainer, shared_data
from lightsweep.contracts import Checkpointable, Distillable, PrunesChannels, QuantizesForInference
from lightsweep.data.timeseries import TimeSeriesDataModule
from lightsweep.errors import ConfigError
from lightsweep.models.timehut.encoder import encode_crops, encode_pair
from lightsweep.models.timehut.module import TimeHUT
from lightsweep.models.timehut.views import overlapping_crops, overlapping_views

UNREACHABLE = "http://127.0.0.1:9/"  # the files are in shared/data: nothing is downloaded


@pytest.fixture(scope="module")
def chinatown() -> TimeSeriesDataModule:
    module = TimeSeriesDataModule("Chinatown", str(shared_data("UCR").parent), download_url=UNREACHABLE)
    module.setup()
    return module


@pytest.fixture(scope="module")
def trained(chinatown) -> TimeHUT:
    """A short real training on Chinatown (20 steps); tests that change a model copy it."""
    L.seed_everything(0)
    model = TimeHUT(chinatown.input_shape, chinatown.num_classes)
    quiet_trainer(max_epochs=10, accelerator="cpu").fit(model, datamodule=chinatown)
    return model


def seeded_loss(model: TimeHUT, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    np.random.seed(seed)
    torch.manual_seed(seed)
    return model.step_loss(x)


def test_timehut_offers_every_technique():
    model = TimeHUT((24, 1), 2)
    for contract in (Checkpointable, PrunesChannels, QuantizesForInference, Distillable):
        assert isinstance(model, contract)


# ---- mixed precision ----


def test_the_loss_is_float32_and_finite_under_bf16_autocast(chinatown):
    """amp_bf16 measured NaN from the first step: the angular margins' cosines rounded to 1 in bf16."""
    model = TimeHUT(chinatown.input_shape, chinatown.num_classes, amc_instance=10.0, amc_temporal=7.53, amc_margin=0.3)
    z1, z2 = (torch.randn(8, 20, 320) for _ in range(2))
    exact = model.contrastive_loss(z1, z2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model.contrastive_loss(z1.bfloat16(), z2.bfloat16())
        x = chinatown.train_x[:8]
        loss = seeded_loss(model, x)
    assert mixed.dtype == torch.float32 and torch.isfinite(mixed)
    torch.testing.assert_close(mixed, model.contrastive_loss(z1.bfloat16().float(), z2.bfloat16().float()))
    assert abs(mixed.item() - exact.item()) < 0.05 * abs(exact.item())  # only the inputs' rounding differs
    loss.backward()
    assert torch.isfinite(loss) and all(
        torch.isfinite(p.grad).all() for p in model.encoder.parameters() if p.grad is not None
    )


# ---- activation checkpointing ----


@pytest.mark.parametrize("hooked", [False, True])
def test_checkpointing_keeps_loss_and_gradients(hooked):
    """Blocks on both paths (conv blocks 0-4, time-major centre-tap blocks 5-10 of a 24-step series), and all
    as modules while forward hooks watch them."""
    torch.manual_seed(0)
    model = TimeHUT((24, 1), 2).train()
    if hooked:
        for block in model.encoder.blocks:
            block.register_forward_hook(lambda *_: None)
    x = torch.randn(8, 24, 1)
    results = []
    for enabled in (False, True):
        model.set_checkpointing(enabled)
        loss = seeded_loss(model, x)
        results.append((loss, torch.autograd.grad(loss, list(model.encoder.parameters()))))
    (plain, plain_grads), (checkpointed, checkpointed_grads) = results
    torch.testing.assert_close(checkpointed, plain)
    torch.testing.assert_close(checkpointed_grads, plain_grads)


def test_checkpointing_keeps_fewer_activations_and_recomputes_them():
    torch.manual_seed(0)
    model = TimeHUT((24, 1), 2).train()
    x = torch.randn(8, 24, 1)

    def saved_elements() -> int:
        sizes = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
            seeded_loss(model, x)
        return sum(sizes)

    plain = saved_elements()
    model.set_checkpointing(True)
    assert saved_elements() < 0.5 * plain
    calls = []
    # (a pre-hook: the recomputation stops once it has what backward needs, before forward hooks would fire)
    model.encoder.blocks[0].register_forward_pre_hook(lambda *_: calls.append(1))
    loss = seeded_loss(model, x)
    assert len(calls) == 1
    loss.backward()
    assert len(calls) == 2  # the block ran again in backward
    model.set_checkpointing(False)
    seeded_loss(model, x).backward()
    assert len(calls) == 3


# ---- structured pruning ----


def forward_flops(model: TimeHUT, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.averaged_encoder.module.eval()(x)
    return counter.get_total_flops()


def test_pruning_removes_the_weakest_inner_channels_of_both_encoders():
    torch.manual_seed(0)
    model = TimeHUT((24, 1), 2, hidden_dims=16, output_dims=24, depth=3)
    for _ in range(3):  # make the average differ from the trained weights
        with torch.no_grad():
            for p in model.encoder.parameters():
                p.add_(torch.randn_like(p))
        model.update_average()
    before = copy.deepcopy(model)
    record = model.prune_channels(0.25)
    widths = [16, 16, 16, 24]  # three hidden blocks, the last one's inner width is output_dims
    assert record["layers"] == {f"encoder.blocks.{i}.conv1.conv": [w, w - w // 4] for i, w in enumerate(widths)}
    assert (record["channels_before"], record["channels_after"]) == (3 * 16 + 24, 3 * 12 + 18)
    averaged_blocks = before.averaged_encoder.module.blocks, model.averaged_encoder.module.blocks
    for old, new, old_avg, new_avg in zip(before.encoder.blocks, model.encoder.blocks, *averaged_blocks):
        norms = old.conv1.conv.weight.abs().sum(dim=(1, 2))
        keep = norms.argsort(descending=True)[: new.conv1.conv.out_channels].sort().values
        assert torch.equal(new.conv1.conv.weight, old.conv1.conv.weight[keep])
        assert torch.equal(new.conv1.conv.bias, old.conv1.conv.bias[keep])
        assert torch.equal(new.conv2.conv.weight, old.conv2.conv.weight[:, keep])
        assert torch.equal(new_avg.conv1.conv.weight, old_avg.conv1.conv.weight[keep])  # the same channels
        assert torch.equal(new_avg.conv2.conv.weight, old_avg.conv2.conv.weight[:, keep])
        assert torch.equal(new.conv2.conv.bias, old.conv2.conv.bias)  # the block's output width stays
    assert not model.averaged_encoder.module.blocks[0].conv1.conv.weight.requires_grad
    # the weight average goes on with the new parameters
    # the weight average goes on with the new parameters (the 5th average: a 1/5 step towards the weights)
    averaged = model.averaged_encoder.module.blocks[0].conv1.conv.weight
    average, trained = averaged.clone(), model.encoder.blocks[0].conv1.conv.weight.clone()
    model.update_average()
    torch.testing.assert_close(averaged, average + (trained - average) / 5)


def test_pruning_cuts_parameters_and_flops_in_proportion_and_keeps_shapes():
    torch.manual_seed(0)
    model = TimeHUT((24, 1), 2)  # 64 hidden, 320 output, depth 10
    x = torch.randn(8, 24, 1)
    parameters, flops = sum(p.numel() for p in model.encoder.parameters()), forward_flops(model, x)
    record = model.prune_channels(0.5)
    assert record["channels_after"] == record["channels_before"] // 2
    assert sum(p.numel() for p in model.encoder.parameters()) < 0.6 * parameters
    assert model.averaged_encoder.module(x).shape == model.encoder.eval()(x).shape == (8, 24, 320)
    # The input projection and the last block's projector keep their widths; every block conv halves.
    unpruned = 2 * 8 * 24 * (1 * 64 + 64 * 320)
    assert forward_flops(model, x) - unpruned == 0.5 * (flops - unpruned)


def test_pruning_nothing_changes_nothing():
    torch.manual_seed(0)
    model = TimeHUT((24, 1), 2, hidden_dims=16, output_dims=24, depth=3).eval()
    x = torch.randn(4, 24, 1)
    parameters = list(model.parameters())
    out = model.encode(x)
    record = model.prune_channels(0.0)
    assert record["channels_before"] == record["channels_after"] == 3 * 16 + 24
    assert all(p is q for p, q in zip(parameters, model.parameters()))
    assert torch.equal(model.encode(x), out)


@pytest.mark.parametrize("amount", [-0.1, 1.0, 1.5])
def test_pruning_amount_outside_zero_to_one_is_refused(amount):
    with pytest.raises(ConfigError, match=r"amount=.*\[0, 1\)"):
        TimeHUT((24, 1), 2).prune_channels(amount)


def test_training_goes_on_after_pruning_and_a_checkpoint_reloads(chinatown, tmp_path):
    L.seed_everything(0)
    model = TimeHUT(chinatown.input_shape, chinatown.num_classes, hidden_dims=16, output_dims=32, depth=4)
    quiet_trainer(max_epochs=1, accelerator="cpu").fit(model, datamodule=chinatown)
    model.prune_channels(0.5)
    pruned = {name: p.detach().clone() for name, p in model.named_parameters()}
    trainer = quiet_trainer(max_epochs=2, accelerator="cpu")  # a new fit: configure_optimizers on the new parameters
    trainer.fit(model, datamodule=chinatown)
    for name, p in model.named_parameters():
        assert p.shape == pruned[name].shape and torch.isfinite(p).all()
        if name.startswith("encoder."):
            assert not torch.equal(p, pruned[name]), name  # trained
    assert int(model.averaged_encoder.n_averaged) == 1 + 2 + 4  # the average went on (2 steps an epoch)
    trainer.save_checkpoint(tmp_path / "pruned.ckpt")
    reloaded = TimeHUT.load_from_checkpoint(tmp_path / "pruned.ckpt")
    x = chinatown.test_x[:8]
    assert torch.equal(reloaded.eval().encode(x), model.eval().encode(x))


# ---- INT8 inference ----


@pytest.fixture(scope="module")
def int8(trained, chinatown) -> torch.nn.Module:
    return trained.quantized_network([x for x, _ in chinatown.test_dataloader()[0]])


@pytest.fixture(scope="module")
def float_metrics(trained, chinatown) -> dict[str, float]:
    return trained.evaluate_network(trained.averaged_encoder.module, chinatown)


def test_evaluating_the_float_encoder_gives_the_test_metrics(trained, chinatown, float_metrics):
    trainer = quiet_trainer(accelerator="cpu")
    trainer.test(trained, datamodule=chinatown, verbose=False)
    metrics = float_metrics
    assert metrics["accuracy"] == pytest.approx(trainer.callback_metrics["test/acc"].item(), abs=1e-7)
    assert metrics["f1_macro"] == pytest.approx(trainer.callback_metrics["test/f1_macro"].item(), abs=1e-7)


def test_int8_network_is_quantized_and_leaves_the_model_as_it_was(trained, int8):
    assert sum(isinstance(m, nnq.Conv1d) for m in int8.modules()) == 2 * 11 + 1  # every block conv + projector
    assert any(isinstance(m, torch.nn.Conv1d) for m in trained.averaged_encoder.modules())


def test_int8_embeddings_and_accuracy_are_close_to_float(trained, int8, chinatown, float_metrics):
    x = chinatown.test_x
    with torch.no_grad():
        exact = trained.averaged_encoder.module.eval()(x).amax(dim=1)
        quantized = int8(x).amax(dim=1)
    assert F.cosine_similarity(quantized, exact).min() > 0.95
    int8_metrics = trained.evaluate_network(int8, chinatown)
    assert float_metrics["accuracy"] > 0.85
    assert abs(int8_metrics["accuracy"] - float_metrics["accuracy"]) <= 0.03


def test_int8_network_refuses_series_longer_than_it_is_exact_for(int8):
    # calibrated on 24 steps: blocks with dilation >= 32 are 1x1 convs, exact up to 32 steps
    assert int8(torch.randn(2, 32, 1)).shape == (2, 32, 320)
    with pytest.raises(ValueError, match="at most 32 steps"):
        int8(torch.randn(2, 33, 1))


# ---- distillation ----


def test_distillation_adds_weight_times_the_embedding_mse():
    torch.manual_seed(0)
    student = TimeHUT((24, 1), 2, hidden_dims=8, output_dims=16, depth=3, amc_instance=1.0).train()
    teacher = TimeHUT((24, 1), 2, hidden_dims=32, output_dims=16, depth=3)
    x = torch.randn(8, 24, 1)
    student.set_teacher(teacher, weight=0.0, temperature=4.0)
    plain = seeded_loss(student, x, seed=5)
    student.set_teacher(teacher, weight=0.7, temperature=4.0)
    distilled = seeded_loss(student, x, seed=5)
    # independently: the student's embeddings of the same crops, the teacher's of the two views encoded apart
    np.random.seed(5)
    torch.manual_seed(5)
    crops = overlapping_crops(x)
    z1, z2 = encode_crops(student.encoder, crops.batch, crops.lengths, crops.overlap, crops.length1)
    np.random.seed(5)
    view1, view2, overlap = overlapping_views(x)
    with torch.no_grad():
        t1, t2 = encode_pair(teacher.averaged_encoder.module.eval(), view1, view2)
    mse = ((z1 - t1[:, -overlap:]).square().sum() + (z2 - t2[:, :overlap]).square().sum()) / (2 * z1.numel())
    assert torch.equal(plain, student.contrastive_loss(z1, z2))
    assert distilled.item() == pytest.approx((plain + 0.7 * mse).item(), rel=1e-5)
    assert mse.item() > 0.01  # the term is not negligible


def test_teacher_is_frozen_unsaved_and_unchanged_by_training(trained, chinatown):
    L.seed_everything(1)
    student = TimeHUT(chinatown.input_shape, chinatown.num_classes, hidden_dims=16)
    own_parameters = sum(p.numel() for p in student.parameters())
    teacher = copy.deepcopy(trained)  # wider: 64 hidden channels
    teacher_state = {name: value.clone() for name, value in teacher.state_dict().items()}
    student.set_teacher(teacher, weight=1.0, temperature=2.0)
    quiet_trainer(max_epochs=1, accelerator="cpu").fit(student, datamodule=chinatown)
    assert all(torch.equal(value, teacher_state[name]) for name, value in teacher.state_dict().items())
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training
    assert set(student.state_dict()) == set(TimeHUT(chinatown.input_shape, 2, hidden_dims=16).state_dict())
    assert sum(p.numel() for p in student.parameters()) == own_parameters


def test_teacher_with_other_output_dims_is_refused():
    student = TimeHUT((24, 1), 2, hidden_dims=8, output_dims=16, depth=2)
    with pytest.raises(ConfigError, match="output_dims=32.*output_dims=16"):
        student.set_teacher(TimeHUT((24, 1), 2, hidden_dims=32, output_dims=32, depth=2), 1.0, 1.0)
