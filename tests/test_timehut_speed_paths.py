"""Every fast path of TimeHUT's training step equals the slow path it replaces (outputs, loss and gradients
within float tolerance, on fixed seeds): the one-pass hierarchical loss vs the loss level by level, the
encoder's time-major centre-tap tail vs the full convolutions, the fused AdamW vs the foreach loop, the
direct weight average vs AveragedModel.update_parameters, and whole training steps of the module vs the
slow composition of the same pieces."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_swa_multi_avg_fn

from lightsweep.models.timehut.encoder import TSEncoder, encode_overlap, encode_pair, timestamp_mask
from lightsweep.models.timehut.losses import LossSettings, hierarchical_loss, hierarchical_loss_by_level
from lightsweep.models.timehut.module import TimeHUT
from lightsweep.models.timehut.views import overlapping_crops, overlapping_views

RECIPE = LossSettings(amc_instance=10.0, amc_temporal=7.53, amc_margin=0.3)
SETTINGS = [
    LossSettings(),
    RECIPE,
    LossSettings(
        alpha=0.3, temporal_unit=1, amc_instance=2.0, temporal_tau="before_softmax", last_level_amc="instance"
    ),
    LossSettings(alpha=1.0, amc_instance=1.0, amc_temporal=4.0),
    LossSettings(alpha=0.0, amc_instance=1.0, amc_temporal=1.0),
    LossSettings(amc_temporal=3.0, temporal_unit=2),
]


# ---- slow paths: the computations as they were before the fast paths ----


def slow_encode(encoder: TSEncoder, x: torch.Tensor, mask=None, lengths=None) -> torch.Tensor:
    """TSEncoder.forward with every block's full zero-padded convolutions on (B, C, T), the `inside` mask
    before each of them, and dropout on the (B, C, T) output."""
    valid = ~x.isnan().any(dim=-1)
    x = encoder.input_fc(x.masked_fill(~valid.unsqueeze(-1), 0.0))
    mode = mask or (encoder.mask_mode if encoder.training else "all_true")
    keep = timestamp_mask(mode, x.shape[:2], x.device) & valid
    inside = None
    if lengths is not None:
        inside = torch.arange(x.size(1)) < lengths[:, None]
        keep &= inside
        inside = inside.unsqueeze(1).to(x.dtype)
    x = x.masked_fill(~keep.unsqueeze(-1), 0.0).transpose(1, 2)

    def full(conv, h):
        out = conv.conv(h)
        return out[:, :, : out.size(-1) - conv.trim] if conv.trim else out

    for block in encoder.blocks:
        residual = x if block.projector is None else block.projector(x)
        h = F.gelu(x) if inside is None else F.gelu(x) * inside
        h = full(block.conv1, h)
        h = F.gelu(h) if inside is None else F.gelu(h) * inside
        x = full(block.conv2, h) + residual
    return encoder.repr_dropout(x).transpose(1, 2)


def slow_encode_pair(encoder: TSEncoder, view1: torch.Tensor, view2: torch.Tensor):
    length1, length2 = view1.size(1), view2.size(1)
    longest = max(length1, length2)
    batch = torch.cat([F.pad(view1, (0, 0, 0, longest - length1)), F.pad(view2, (0, 0, 0, longest - length2))])
    lengths = torch.tensor([length1] * len(view1) + [length2] * len(view2))
    out = slow_encode(encoder, batch, lengths=lengths)
    return out[: len(view1), :length1], out[len(view1) :, :length2]


def slow_optimizer(parameters) -> torch.optim.Optimizer:
    return torch.optim.AdamW(parameters, lr=0.001, foreach=True)


def slow_average(averaged: AveragedModel, encoder: TSEncoder) -> None:
    averaged.update_parameters(encoder)


def parameter_gradients(encoder: TSEncoder, outputs) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad(sum(o.square().sum() for o in outputs), list(encoder.parameters()))


# ---- the loss ----


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("batch, length", [(8, 24), (8, 2), (8, 3), (8, 13), (1, 5), (2, 1), (3, 17)])
def test_one_pass_loss_equals_the_loss_level_by_level(settings, batch, length):
    generator = torch.Generator().manual_seed(batch * 100 + length)
    z1 = torch.randn(batch, length, 32, dtype=torch.float64, generator=generator, requires_grad=True)
    z2 = torch.randn(batch, length, 32, dtype=torch.float64, generator=generator, requires_grad=True)
    for tau in (0.37, 1.0):
        slow, fast = hierarchical_loss_by_level(z1, z2, tau, settings), hierarchical_loss(z1, z2, tau, settings)
        assert fast.item() == pytest.approx(slow.item(), rel=1e-12, abs=1e-12)
        if slow.requires_grad:
            slow_grads = torch.autograd.grad(slow, (z1, z2))
            fast_grads = torch.autograd.grad(fast, (z1, z2), allow_unused=True, materialize_grads=True)
            for s, f in zip(slow_grads, fast_grads):
                assert torch.allclose(f, s, rtol=1e-10, atol=1e-12)


def test_one_pass_loss_in_float32_on_encoder_sized_features():
    torch.manual_seed(0)
    for length in (2, 7, 24):
        z1 = torch.randn(8, length, 320, requires_grad=True)
        z2 = (z1.detach() + 0.3 * torch.randn(8, length, 320)).requires_grad_()  # views close, as trained ones
        slow, fast = hierarchical_loss_by_level(z1, z2, 0.5, RECIPE), hierarchical_loss(z1, z2, 0.5, RECIPE)
        assert fast.item() == pytest.approx(slow.item(), rel=1e-5)
        for s, f in zip(torch.autograd.grad(slow, (z1, z2)), torch.autograd.grad(fast, (z1, z2))):
            assert torch.allclose(f, s, rtol=1e-4, atol=1e-5 * s.abs().max().item())


def test_one_pass_loss_has_finite_gradients_for_a_zero_vector():
    z1, z2 = torch.randn(4, 6, 16, dtype=torch.float64), torch.randn(4, 6, 16, dtype=torch.float64)
    z1[1, 2] = 0.0  # F.normalize leaves it 0: cosine 0 to everything, as the reference
    z1.requires_grad_()
    slow, fast = hierarchical_loss_by_level(z1, z2, 0.5, RECIPE), hierarchical_loss(z1, z2, 0.5, RECIPE)
    assert fast.item() == pytest.approx(slow.item(), rel=1e-12)
    (gradient,) = torch.autograd.grad(fast, z1)
    assert torch.isfinite(gradient).all()


# ---- the encoder ----


@pytest.mark.parametrize("length1, length2", [(24, 9), (5, 24), (13, 13), (2, 3), (17, 20)])
def test_pair_encoding_in_training_equals_the_full_convolutions(length1, length2):
    """Training mode: the same binomial masks and dropout (same seed), time-major centre-tap tail."""
    torch.manual_seed(3)
    encoder = TSEncoder(input_dims=1).train()
    view1, view2 = torch.randn(8, length1, 1), torch.randn(8, length2, 1)
    view1[2, 0] = float("nan")
    torch.manual_seed(11)
    slow = slow_encode_pair(encoder, view1, view2)
    torch.manual_seed(11)
    fast = encode_pair(encoder, view1, view2)
    for s, f in zip(slow, fast):
        assert f.shape == s.shape
        assert torch.allclose(f, s, rtol=1e-5, atol=1e-5)
    gradients = [parameter_gradients(encoder, out) for out in (slow, fast)]
    for s, f in zip(*gradients):
        assert torch.allclose(f, s, rtol=1e-4, atol=1e-4 * max(1.0, s.abs().max().item()))


@pytest.mark.parametrize("length1, length2, overlap", [(24, 9, 9), (5, 24, 3), (13, 13, 13), (2, 3, 2), (20, 17, 11)])
@pytest.mark.parametrize("depth", [10, 3])
def test_overlap_encoding_equals_slicing_the_full_outputs(length1, length2, overlap, depth):
    """Only the shared steps through the per-timestep blocks, dropout's mask still drawn for the whole
    output: the same values and gradients as slicing the full convolutions' outputs (training mode)."""
    torch.manual_seed(5)
    encoder = TSEncoder(input_dims=1, depth=depth).train()
    view1, view2 = torch.randn(8, length1, 1), torch.randn(8, length2, 1)
    torch.manual_seed(12)
    out1, out2 = slow_encode_pair(encoder, view1, view2)
    slow = out1[:, -overlap:], out2[:, :overlap]
    torch.manual_seed(12)
    fast = encode_overlap(encoder, view1, view2, overlap)
    after = torch.rand(3)  # both consumed the same random numbers
    torch.manual_seed(12)
    slow_encode_pair(encoder, view1, view2)
    assert torch.equal(after, torch.rand(3))
    for s, f in zip(slow, fast):
        assert f.shape == s.shape == (8, overlap, 320)
        assert torch.allclose(f, s, rtol=1e-5, atol=1e-5)
    gradients = [parameter_gradients(encoder, out) for out in (slow, fast)]
    for s, f in zip(*gradients):
        assert torch.allclose(f, s, rtol=1e-4, atol=1e-4 * max(1.0, s.abs().max().item()))


@pytest.mark.parametrize("length", [1, 8, 24, 100])
def test_eval_encoding_equals_the_full_convolutions(length):
    torch.manual_seed(4)
    encoder = TSEncoder(input_dims=2, depth=7).eval()
    x = torch.randn(5, length, 2)
    assert torch.allclose(encoder(x), slow_encode(encoder, x), rtol=1e-5, atol=1e-5)


def test_blocks_watched_by_forward_hooks_run_as_modules():
    """The health monitor's dead-unit probe hooks each block and its first conv: while hooks are on, every
    block runs as a module (hooks fire), with the same outputs."""
    torch.manual_seed(6)
    encoder = TSEncoder(input_dims=1).eval()
    x = torch.randn(4, 24, 1)
    plain = encoder(x)
    fired = []
    hooks = [block.conv1.register_forward_hook(lambda *_: fired.append(1)) for block in encoder.blocks]
    try:
        watched = encoder(x)
    finally:
        for hook in hooks:
            hook.remove()
    assert len(fired) == len(encoder.blocks)
    assert torch.allclose(watched, plain, atol=1e-5) and torch.allclose(watched, slow_encode(encoder, x), atol=1e-5)


# ---- the crops ----


def test_crops_in_one_padded_batch_equal_the_two_views():
    """overlapping_crops draws what overlapping_views draws and holds both views in one batch; steps past a
    row's length are the encoder's padding (masked), so encoding it equals encoding the zero-padded pair."""
    x = torch.randn(8, 24, 2)
    x[3, 5, 1] = float("nan")
    encoder = TSEncoder(input_dims=2, output_dims=16, hidden_dims=8).eval()
    for seed in range(40):
        np.random.seed(seed)
        view1, view2, overlap = overlapping_views(x)
        after_views = np.random.rand()
        np.random.seed(seed)
        crops = overlapping_crops(x)
        assert np.random.rand() == after_views
        assert crops.overlap == overlap and crops.length1 == view1.size(1)
        assert crops.lengths.tolist() == [view1.size(1)] * 8 + [view2.size(1)] * 8
        assert torch.equal(crops.batch[:8, : view1.size(1)].nan_to_num(7.0), view1.nan_to_num(7.0))
        assert torch.equal(crops.batch[8:, : view2.size(1)].nan_to_num(7.0), view2.nan_to_num(7.0))
        fast = encoder(crops.batch, lengths=crops.lengths)
        padded, lengths = _padded(view1, view2)
        slow = encoder(padded, lengths=lengths)
        assert torch.allclose(fast[:8, : view1.size(1)], slow[:8, : view1.size(1)], atol=1e-6)
        assert torch.allclose(fast[8:, : view2.size(1)], slow[8:, : view2.size(1)], atol=1e-6)


def _padded(view1: torch.Tensor, view2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(view1.size(1), view2.size(1))
    batch = torch.cat([F.pad(view, (0, 0, 0, longest - view.size(1))) for view in (view1, view2)])
    return batch, torch.tensor([view1.size(1)] * len(view1) + [view2.size(1)] * len(view2))


# ---- optimiser and weight average ----


def test_fused_adamw_equals_the_foreach_update():
    torch.manual_seed(0)
    model = TimeHUT((24, 1), 2)
    encoder = copy.deepcopy(model.encoder)
    fast, slow = model.configure_optimizers(), slow_optimizer(encoder.parameters())
    assert fast.defaults["fused"]
    generator = torch.Generator().manual_seed(1)
    for _ in range(30):
        for p, q in zip(model.encoder.parameters(), encoder.parameters()):
            p.grad = torch.randn(p.shape, generator=generator)
            q.grad = p.grad.clone()
        fast.step()
        slow.step()
    for p, q in zip(model.encoder.parameters(), encoder.parameters()):
        assert torch.allclose(p, q, rtol=0, atol=1e-6)


def test_weight_average_equals_averaged_model_update():
    torch.manual_seed(0)
    model = TimeHUT((24, 1), 2)
    reference = AveragedModel(model.encoder, multi_avg_fn=get_swa_multi_avg_fn())
    reference.update_parameters(model.encoder)  # the initial weights, as the module's own copy
    for _ in range(25):
        with torch.no_grad():
            for p in model.encoder.parameters():
                p.add_(torch.randn_like(p))
        model.update_average()
        slow_average(reference, model.encoder)
    assert int(model.averaged_encoder.n_averaged) == int(reference.n_averaged) == 26
    for p, q in zip(model.averaged_encoder.module.parameters(), reference.module.parameters()):
        assert torch.allclose(p, q, rtol=1e-6, atol=1e-6)


# ---- whole steps ----


def test_training_steps_equal_the_slow_composition():
    """20 steps of the module's own step (crops, pair encoding, one-pass loss, fused AdamW, direct weight
    average) against the slow pieces from the same seeds and initial weights."""
    torch.manual_seed(0)
    model = TimeHUT((24, 1), 2, amc_instance=10.0, amc_temporal=7.53, amc_margin=0.3, temperature=0.4)
    encoder = copy.deepcopy(model.encoder)
    averaged = AveragedModel(encoder, multi_avg_fn=get_swa_multi_avg_fn())
    averaged.update_parameters(encoder)
    fast_optimizer, reference_optimizer = model.configure_optimizers(), slow_optimizer(encoder.parameters())
    series = torch.randn(20, 24, 1)
    model.train()
    for step in range(20):
        x = series[torch.randperm(20, generator=torch.Generator().manual_seed(step))[:8]]
        np.random.seed(step)
        torch.manual_seed(100 + step)
        loss = model.contrastive_loss(*model.encode_views(*model.crop_views(x)))
        fast_optimizer.zero_grad()
        loss.backward()
        fast_optimizer.step()
        model.update_average()

        np.random.seed(step)
        torch.manual_seed(100 + step)
        view1, view2, overlap = overlapping_views(x)
        out1, out2 = slow_encode_pair(encoder, view1, view2)  # whole crops, sliced to the overlap below
        slow_loss = hierarchical_loss_by_level(out1[:, -overlap:], out2[:, :overlap], 0.4, model.loss_settings)
        reference_optimizer.zero_grad()
        slow_loss.backward()
        reference_optimizer.step()
        slow_average(averaged, encoder)
        assert loss.item() == pytest.approx(slow_loss.item(), rel=1e-4)
    for p, q in zip(model.encoder.parameters(), encoder.parameters()):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-5)
    for p, q in zip(model.averaged_encoder.module.parameters(), averaged.module.parameters()):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-5)
