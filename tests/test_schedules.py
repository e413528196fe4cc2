"""TimeHUT temperature schedules (aminjalali-research/TSlib, models/timehut/temperature_schedulers.py): values
against its formulas written out here, boundaries, adaptive and noisy behaviour, bad settings, the scheduler
config group and the callback."""

from __future__ import annotations

import math
from math import cos, exp, log, pi, tanh

import pytest
from omegaconf import OmegaConf

from conftest import quiet_trainer
from lightsweep.build import build
from lightsweep.config import compose
from lightsweep.errors import ConfigError
from lightsweep.models.timehut import schedules as s1
from lightsweep.models.timehut import schedules_extra as s2
from lightsweep.paths import CONF_DIR
from lightsweep.validate import check_node

A, B, P = 0.15, 0.75, 10.5  # the defaults: tau_min, tau_max, t_max
D = B - A
EPOCHS = [0, 1, 2, 3, 4, 5, 7, 10, 11, 13, 21, 40, 100]

ORIGINALS = [
    "cosine_annealing",
    "linear_decay",
    "exponential_decay",
    "step_decay",
    "polynomial_decay",
    "sigmoid_decay",
    "warmup_cosine",
    "constant",
    "cyclic",
    "adaptive_cosine_annealing",
    "multi_cycle_cosine",
    "cosine_with_restarts",
]
NOVEL = [
    "momentum_adaptive",
    "triangular",
    "onecycle",
    "hyperbolic_tangent",
    "logarithmic",
    "piecewise_linear_plateau",
    "inverse_time_decay",
    "double_exponential",
    "noisy_cosine",
]
CLASSES = {
    "cosine_annealing": s1.CosineAnnealing,
    "linear_decay": s1.LinearDecay,
    "exponential_decay": s1.ExponentialDecay,
    "step_decay": s1.StepDecay,
    "polynomial_decay": s1.PolynomialDecay,
    "sigmoid_decay": s1.SigmoidDecay,
    "warmup_cosine": s1.WarmupCosine,
    "constant": s1.Constant,
    "cyclic": s1.Cyclic,
    "adaptive_cosine_annealing": s1.AdaptiveCosineAnnealing,
    "multi_cycle_cosine": s1.MultiCycleCosine,
    "cosine_with_restarts": s1.CosineWithRestarts,
    "momentum_adaptive": s2.MomentumAdaptive,
    "triangular": s2.Triangular,
    "onecycle": s2.OneCycle,
    "hyperbolic_tangent": s2.HyperbolicTangent,
    "logarithmic": s2.Logarithmic,
    "piecewise_linear_plateau": s2.PiecewiseLinearPlateau,
    "inverse_time_decay": s2.InverseTimeDecay,
    "double_exponential": s2.DoubleExponential,
    "noisy_cosine": s2.NoisyCosine,
}


def clip(x, low=A, high=B):
    return min(max(x, low), high)


def restarts_expected(e):
    """SGDR with P0 = 5, m = 1.5: cycles start at 0, 5, 12.5, 23.75, 40.625, 65.9375 (lengths 5, 7.5, ...)."""
    starts = [0, 5, 12.5, 23.75, 40.625, 65.9375, 103.90625]
    k = max(i for i, start in enumerate(starts) if start <= e)
    return A + 0.5 * D * (1 + cos(pi * (e - starts[k]) / (5 * 1.5**k)))


def plateau_expected(e):
    """Defaults: ramps of 2.1, 5.25, 8.4 epochs (breakpoints used as durations), each followed by 1.05 flat."""
    if e <= 2.1:
        return B + (0.7 * B - B) * e / 2.1
    if e <= 3.15:
        return 0.7 * B
    if e <= 8.4:
        return 0.7 * B + (0.4 * B - 0.7 * B) * (e - 3.15) / 5.25
    if e <= 9.45:
        return 0.4 * B
    if e <= 17.85:
        return 0.4 * B + (A - 0.4 * B) * (e - 9.45) / 8.4
    return A


def triangle_expected(e):
    q = e % 3.5
    return A + D * 2 * q / 3.5 if q <= 1.75 else B - D * 2 * (q - 1.75) / 3.5


EXPECTED = {  # name -> (schedule, TSlib's formula with the defaults written in)
    "cosine_pi": (s1.CosineAnnealing(), lambda e: A + 0.5 * D * (1 + cos(pi * e / P))),
    "cosine_two_pi": (
        s1.CosineAnnealing(convention="two_pi", phase=0.3, frequency=2.0, bias=0.05),
        lambda e: clip(A + 0.5 * D * (1 + cos(2 * pi * 2 * e / P + 0.3)) + 0.05),
    ),
    "linear_decay": (s1.LinearDecay(), lambda e: B - D * e / P if e < P else A),
    "exponential_decay": (s1.ExponentialDecay(), lambda e: max(A, B * 0.95**e)),
    "step_decay": (s1.StepDecay(), lambda e: max(A, B * 0.5 ** (e // 3))),  # step = int(10.5 / 3) = 3
    "polynomial_decay": (s1.PolynomialDecay(), lambda e: A + D * (1 - e / P) ** 2 if e < P else A),
    "sigmoid_decay": (s1.SigmoidDecay(), lambda e: A + D / (1 + exp(e - P / 2))),
    "warmup_cosine": (
        s1.WarmupCosine(),
        lambda e: A + D * e / 2 if e < 2 else A + 0.5 * D * (1 + cos(pi * (e - 2) / (P - 2))),
    ),
    "constant": (s1.Constant(), lambda e: B),
    "cyclic": (s1.Cyclic(), lambda e: A + D * (e % 3.5) / 3.5),
    "adaptive_cosine_annealing": (s1.AdaptiveCosineAnnealing(), lambda e: A + 0.5 * D * (1 + cos(pi * e / P))),
    "multi_cycle_cosine": (
        s1.MultiCycleCosine(),
        lambda e: clip(A + 0.5 * D * 0.8 ** (e // 3.5) * (1 + cos(pi * (e % 3.5) / 3.5))),
    ),
    "cosine_with_restarts": (s1.CosineWithRestarts(), restarts_expected),
    "momentum_adaptive": (s2.MomentumAdaptive(), lambda e: B - D * e / P if e < P else A),
    "triangular": (s2.Triangular(), triangle_expected),
    "onecycle": (
        s2.OneCycle(),
        lambda e: (
            A + D * e / 3.15
            if e <= 3.15  # peak at 0.3 P, floor 0.1 A
            else max(0.015, B - (B - 0.015) * (e - 3.15) / (P - 3.15))
        ),
    ),
    "hyperbolic_tangent": (s2.HyperbolicTangent(), lambda e: A + 0.5 * D * (1 - tanh(2 * (e / P - 0.5)))),
    "logarithmic": (s2.Logarithmic(), lambda e: A if e >= P else max(A, B - D * log(e + 1) / log(P + 1))),
    "piecewise_linear_plateau": (s2.PiecewiseLinearPlateau(), plateau_expected),
    "inverse_time_decay": (s2.InverseTimeDecay(), lambda e: max(A, B / (1 + 0.1 * e))),
    "double_exponential": (
        s2.DoubleExponential(),
        lambda e: A + D * exp(-0.1 * e) if e <= 3.15 else A + D * exp(-0.1 * 3.15) * exp(-0.01 * (e - 3.15)),
    ),
    "noisy_cosine_no_noise": (s2.NoisyCosine(noise_factor=0.0), lambda e: A + 0.5 * D * (1 + cos(pi * e / P))),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_values_follow_the_spec_formula(name):
    schedule, formula = EXPECTED[name]
    for epoch in EPOCHS:
        tau = schedule(epoch)
        assert isinstance(tau, float)
        assert tau == pytest.approx(formula(epoch), abs=1e-12), f"{name} at epoch {epoch}"


@pytest.mark.parametrize("name", list(CLASSES))
def test_defaults_stay_finite_and_positive_far_out(name):
    schedule = CLASSES[name]()
    for epoch in (1_000, 10_000):  # the reference's sigmoid overflows math.exp here
        tau = schedule(epoch, [1.0, 0.9])
        assert math.isfinite(tau) and tau > 0


def test_cosine_conventions_differ_as_documented():
    pi_cos, two_pi = s1.CosineAnnealing(t_max=10), s1.CosineAnnealing(t_max=10, convention="two_pi")
    assert pi_cos(0) == two_pi(0) == pytest.approx(B)
    assert pi_cos(5) == pytest.approx((A + B) / 2) and two_pi(5) == pytest.approx(A)
    assert pi_cos(10) == pytest.approx(A) and two_pi(10) == pytest.approx(B)
    assert pi_cos(20) == pytest.approx(B) and pi_cos(30) == pytest.approx(A)
    assert s1.CosineAnnealing(convention="two_pi", bias=1.0)(3) == B  # bias then clamp
    assert s1.CosineAnnealing(convention="two_pi", bias=-1.0)(3) == A


def test_decays_end_at_tau_min_after_t_max():
    for cls in (s1.LinearDecay, s1.PolynomialDecay, s2.Logarithmic):
        schedule = cls(t_max=10)
        assert schedule(0) == pytest.approx(B) and schedule(9) > A
        assert schedule(10) == schedule(11) == schedule(500) == A
    assert s1.ExponentialDecay()(500) == A and s1.StepDecay()(500) == A and s2.InverseTimeDecay()(10_000) == A


def test_step_decay_steps_at_multiples_of_step_size():
    schedule = s1.StepDecay(step_size=4, gamma=0.5, tau_min=0.01, tau_max=0.8)
    assert [schedule(e) for e in (0, 3, 4, 7, 8)] == pytest.approx([0.8, 0.8, 0.4, 0.4, 0.2])


def test_warmup_ramps_then_cosine_keeps_oscillating():
    schedule = s1.WarmupCosine(t_max=12, warmup_epochs=4)
    assert schedule(0) == pytest.approx(A) and schedule(2) == pytest.approx((A + B) / 2)
    assert schedule(4) == pytest.approx(B) and schedule(12) == pytest.approx(A)
    assert schedule(20) == pytest.approx(B)  # reference quirk: no plateau after t_max


def test_cosine_with_restarts_jumps_back_to_tau_max_at_each_restart():
    schedule = s1.CosineWithRestarts(restart_period=2, restart_mult=2)  # restarts at 2, 6, 14, 30
    for restart in (0, 2, 6, 14, 30):
        assert schedule(restart) == pytest.approx(B)
    assert schedule(1) == pytest.approx((A + B) / 2) and schedule(4) == pytest.approx((A + B) / 2)
    assert schedule(5) == pytest.approx(A + 0.5 * D * (1 + cos(3 * pi / 4)))
    assert schedule(13) < schedule(14)


def test_multi_cycle_restarts_lower_each_cycle():
    schedule = s1.MultiCycleCosine(t_max=9, num_cycles=3, decay_factor=0.5)  # cycles of 3 epochs
    assert [schedule(e) for e in (0, 3, 6, 9)] == pytest.approx([B, A + D / 2, A + D / 4, A + D / 8])


def test_onecycle_peaks_then_ends_at_its_floor():
    schedule = s2.OneCycle(t_max=10)  # peak at epoch 3, floor 0.1 * tau_min
    assert schedule(0) == pytest.approx(A) and schedule(3) == pytest.approx(B)
    assert schedule(10) == pytest.approx(0.1 * A) and schedule(50) == pytest.approx(0.1 * A)


def test_piecewise_breakpoints_are_ramp_durations():
    schedule = s2.PiecewiseLinearPlateau(tau_min=0.1, tau_max=1.0, breakpoints=[2, 2, 2], plateau_lengths=[1, 1, 1])
    values = [schedule(e) for e in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)]
    assert values == pytest.approx([1.0, 0.85, 0.7, 0.7, 0.55, 0.4, 0.4, 0.25, 0.1, 0.1, 0.1])


def test_inverse_time_staircase_holds_the_step():
    schedule = s2.InverseTimeDecay(t_max=20, staircase=True)  # step 2
    assert [schedule(e) for e in (0, 1, 2, 3)] == pytest.approx([B, B, B / 1.2, B / 1.2])


def test_double_exponential_is_continuous_at_the_transition():
    schedule = s2.DoubleExponential(transition_epoch=4)
    assert schedule(4) == pytest.approx(A + D * exp(-0.4))
    assert schedule(5) == pytest.approx(A + D * exp(-0.4) * exp(-0.01))


def test_adaptive_cosine_reacts_to_the_last_loss_change():
    schedule = s1.AdaptiveCosineAnnealing()
    assert schedule(0, [1.0]) == pytest.approx(B)  # fewer than two losses: plain cosine
    assert schedule(0, [1.0, 0.5]) == pytest.approx(A + D * 1.05)  # loss fell 0.5: range x 1.05
    assert schedule(0, [9.0, 0.5, 1.0]) == pytest.approx(A + D * 0.95)  # only the last two count
    assert schedule(0, [100.0, 0.0]) == pytest.approx(1.2 * B)  # clamped high
    assert schedule(0, [0.0, 100.0]) == pytest.approx(0.5 * A)  # clamped low


def test_momentum_adaptive_folds_the_loss_changes_per_history_not_per_class():
    schedule = s2.MomentumAdaptive()
    base = B - D * 3 / P
    velocity = 0.9 * (0.1 * -0.5) + 0.1 * -0.25
    assert schedule(3, [1.0, 0.5, 0.25]) == pytest.approx(base + 0.1 * velocity)
    assert schedule(3, [1.0, 0.5, 0.25]) == schedule(3, [1.0, 0.5, 0.25])  # no state carried between calls
    assert s2.MomentumAdaptive()(3, [0.5, 0.25]) == pytest.approx(base + 0.1 * 0.1 * -0.25)  # a fresh run
    assert schedule(0, [0.0, 10.0]) == B  # clamped


def test_noisy_cosine_repeats_per_seed_and_stays_in_range():
    first, again, other = s2.NoisyCosine(seed=3), s2.NoisyCosine(seed=3), s2.NoisyCosine(seed=4)
    epochs = range(200)
    assert [first(e) for e in epochs] == [again(e) for e in reversed(epochs)][::-1]
    assert [first(e) for e in epochs] != [other(e) for e in epochs]
    loud = s2.NoisyCosine(noise_factor=0.5, noise_decay=1.0)
    for e in epochs:
        base = A + 0.5 * D * (1 + cos(pi * e / P))
        assert abs(first(e) - base) <= 0.05 * 0.95**e * D + 1e-15
        assert A <= loud(e) <= B
    assert any(loud(e) in (A, B) for e in epochs)  # the clamp is reached


@pytest.mark.parametrize(
    ("cls", "settings", "message"),
    [
        (s1.LinearDecay, {"tau_min": 0.9}, "tau_min=0.9 and tau_max=0.75"),
        (s1.Constant, {"tau_min": 0.0}, "0 < tau_min"),
        (s1.Cyclic, {"t_max": 0}, "t_max=0 must be positive"),
        (s1.CosineAnnealing, {"convention": "three_pi"}, "convention='three_pi'"),
        (s1.CosineAnnealing, {"phase": 1.0}, "only to convention=two_pi"),
        (s1.CosineAnnealing, {"convention": "two_pi", "frequency": 0}, "frequency=0"),
        (s1.ExponentialDecay, {"decay_rate": 1.5}, "decay_rate=1.5"),
        (s1.StepDecay, {"t_max": 2.0}, "resolves to 0 epochs"),
        (s1.StepDecay, {"step_size": 0}, "step_size=0"),
        (s1.StepDecay, {"gamma": 0}, "gamma=0"),
        (s1.PolynomialDecay, {"power": -1.0}, "power=-1.0"),
        (s1.WarmupCosine, {"warmup_epochs": 11}, "warmup_epochs=11"),
        (s1.Cyclic, {"cycle_length": 0}, "cycle_length=0"),
        (s1.MultiCycleCosine, {"num_cycles": 0}, "num_cycles=0"),
        (s1.MultiCycleCosine, {"decay_factor": 0}, "decay_factor=0"),
        (s1.CosineWithRestarts, {"restart_period": 0}, "restart_period=0"),
        (s1.CosineWithRestarts, {"restart_mult": 0.5}, "restart_mult=0.5"),
        (s2.MomentumAdaptive, {"momentum": 1.5}, "momentum=1.5"),
        (s2.Triangular, {"cycle_length": -1.0}, "cycle_length=-1.0"),
        (s2.OneCycle, {"peak_epoch_ratio": 1.0}, "peak_epoch_ratio=1.0"),
        (s2.OneCycle, {"final_tau_ratio": 0.0}, "final_tau_ratio=0.0"),
        (s2.Logarithmic, {"offset": 0.5}, "offset=0.5"),
        (s2.PiecewiseLinearPlateau, {"breakpoints": [1.0, 2.0]}, "breakpoints=\\[1.0, 2.0\\]"),
        (s2.PiecewiseLinearPlateau, {"plateau_lengths": [1.0, -1.0, 1.0]}, "plateau_lengths="),
        (s2.InverseTimeDecay, {"decay_rate": -0.1}, "decay_rate=-0.1"),
        (s2.DoubleExponential, {"transition_epoch": -1.0}, "transition_epoch=-1.0"),
        (s2.DoubleExponential, {"fast_decay": -1.0}, "fast_decay=-1.0"),
        (s2.NoisyCosine, {"noise_decay": 0.0}, "noise_decay=0.0"),
    ],
)
def test_bad_settings_are_config_errors(cls, settings, message):
    with pytest.raises(ConfigError, match=f"^scheduler\\..*{message}"):
        cls(**settings)


def test_the_config_group_holds_exactly_the_reference_schedules():
    # TimeHUT's #10 no_scheduling (tau = 1.0 every epoch) is scheduler=none: the model's fixed temperature,
    # 1.0 by default; one choice, not two that do the same.
    names = {path.stem for path in (CONF_DIR / "scheduler").glob("*.yaml")} - {"none"}
    assert set(ORIGINALS) <= names and "no_scheduling" not in names
    assert names == set(ORIGINALS) | set(NOVEL) == set(CLASSES)


def test_scheduler_none_keeps_timehuts_fixed_temperature_of_one(tmp_path):
    cfg = compose(["model=timehut", "dataset=unit_test", "scheduler=none"], output_dir=tmp_path)
    assert "_target_" not in cfg.scheduler and cfg.model.get("temperature", 1.0) == 1.0


@pytest.mark.parametrize("name", ORIGINALS + NOVEL)
def test_every_schedule_config_builds_its_class_with_the_class_defaults(name, tmp_path):
    cfg = compose([f"scheduler={name}"], output_dir=tmp_path)
    schedule = build(cfg.scheduler)  # the run path: instantiate with the target whitelist
    assert type(schedule) is CLASSES[name]
    assert schedule == CLASSES[name]()  # the YAML lists every setting at its default
    assert isinstance(schedule(0), float)
    check_node(OmegaConf.to_container(cfg.scheduler), "scheduler")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["scheduler=linear_decay", "scheduler.tau_min=abc"], "scheduler.tau_min='abc' has the wrong type"),
        (["scheduler=cosine_annealing", "scheduler.convention=three_pi"], "scheduler.convention='three_pi'"),
        (["scheduler=step_decay", "scheduler.step_size=2.5"], "scheduler.step_size=2.5"),
    ],
)
def test_wrong_types_are_refused_by_the_validator(overrides, message, tmp_path):
    cfg = compose(overrides, output_dir=tmp_path)
    with pytest.raises(ConfigError, match=message):
        check_node(OmegaConf.to_container(cfg.scheduler), "scheduler")


@pytest.mark.filterwarnings(r"ignore:.*isinstance\(treespec, LeafSpec\)")  # Lightning's own deprecated call
def test_callback_sets_logs_and_feeds_past_epoch_losses():
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from lightsweep.callbacks.temperature import TemperatureSchedule

    class Contrastive(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer, self.temperature, self.seen = torch.nn.Linear(2, 1), 1.0, []

        def training_step(self, batch, batch_idx):
            self.seen.append(self.temperature)
            return self.layer(batch[0]).pow(2).mean()

        def on_train_epoch_end(self) -> None:  # a known loss per epoch: 10, 20, 30
            self.log("train/loss", 10.0 * (self.current_epoch + 1))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    calls = []

    def schedule(epoch, history):
        calls.append((epoch, history))
        return 0.5 + epoch

    callback, module = TemperatureSchedule(schedule), Contrastive()
    trainer = quiet_trainer(
        max_epochs=3,
        callbacks=[callback],
        accelerator="cpu",
    )
    trainer.fit(module, DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=2))
    assert calls == [(0, ()), (1, (10.0,)), (2, (10.0, 20.0))]
    assert module.seen == [0.5, 0.5, 1.5, 1.5, 2.5, 2.5]
    assert float(trainer.callback_metrics["train/tau"]) == 2.5
    restored = TemperatureSchedule(schedule)
    restored.load_state_dict(callback.state_dict())
    assert restored.history == [10.0, 20.0]

    with pytest.raises(ConfigError, match="model=timehut"):
        TemperatureSchedule(schedule).setup(trainer, L.LightningModule(), "fit")
