"""Health maths checked against values worked out by hand for chosen series."""

from __future__ import annotations

import math

import pytest
import torch

from lightsweep.errors import ConfigError
from lightsweep.health.diagnostics import (
    classify_gradient,
    dead_ratio,
    dead_units,
    overall_gradient_status,
    overfitting,
    weight_statistics,
)
from lightsweep.health.scores import (
    COMPONENTS,
    DEFAULT_WEIGHTS,
    accuracy_consistency,
    convergence_quality,
    gradient_health,
    neuron_utilization,
    overall_health,
    overall_weights,
    parameter_efficiency,
    recommendations,
    training_stability,
    validate_weights,
)


def test_training_stability_monotone_loss():
    # trend 0.8/1.0; constant steps so MAD 0 -> smooth 1; recent clamp(0.5 + 0.8) = 1
    assert training_stability([1.0, 0.8, 0.6, 0.4, 0.2]) == pytest.approx(0.5 * 0.8 + 0.2 * 1.0 + 0.3 * 1.0)


def test_training_stability_noisy_loss():
    # steps -1, .5, -1, .5, -.2: median -.2, |dev| .8 .7 .8 .7 0 -> MAD .7; trend 1.2/2; recent .5 - (.8 - 1.0)
    expected = 0.5 * 0.6 + 0.2 / (1 + 3 * 0.7) + 0.3 * 0.7
    assert training_stability([2.0, 1.0, 1.5, 0.5, 1.0, 0.8]) == pytest.approx(expected)


def test_training_stability_three_epochs_uses_neutral_recent():
    # steps -.5, -.25: MAD .125; fewer than 5 epochs -> recent 0.5
    expected = 0.5 * 0.75 + 0.2 / (1 + 3 * 0.125) + 0.3 * 0.5
    assert training_stability([1.0, 0.5, 0.25]) == pytest.approx(expected)


def test_short_histories_are_unmeasured():
    assert training_stability([1.0, 0.5]) is None
    assert convergence_quality([0.1, 0.9]) is None
    assert accuracy_consistency([0.5, 0.6, 0.7, 0.8]) is None


def test_diverged_loss_scores_zero_trend_not_neutral():
    assert training_stability([1.0, 2.0, math.nan]) < 0.5


def test_convergence_quality_rising_and_flat():
    # rising: improve clamp(5*0.4) = 1, var(.5..0.9) = 0.02 -> final_stab 1/1.4
    assert convergence_quality([0.5, 0.6, 0.7, 0.8, 0.9]) == pytest.approx(0.6 * 0.9 + 0.3 * 1.0 + 0.1 / 1.4)
    # flat: no improvement, zero variance
    assert convergence_quality([0.8] * 5) == pytest.approx(0.6 * 0.8 + 0.0 + 0.1 * 1.0)


def test_accuracy_consistency():
    assert accuracy_consistency([0.8] * 6) == pytest.approx(1.0)
    # mean .6, deviations +-.1 four times -> population std sqrt(.04/5)
    expected = 1 / (1 + 10 * math.sqrt(0.04 / 5) / 0.6)
    assert accuracy_consistency([0.5, 0.7, 0.5, 0.7, 0.6]) == pytest.approx(expected)
    assert accuracy_consistency([0.0] * 5) == 0.0


def test_parameter_efficiency_scales_with_size():
    assert parameter_efficiency(0.9, 50_000) == pytest.approx(0.9)
    assert parameter_efficiency(0.9, 1_000_000) == pytest.approx(0.45)
    assert parameter_efficiency(0.9, 10_000_000) == pytest.approx(0.3)


def test_neuron_utilization_and_gradient_health():
    assert neuron_utilization(0.25) == pytest.approx(0.75)
    assert neuron_utilization(1.5) == 0.0
    assert gradient_health({"conv1": "healthy", "conv2": "dead", "fc": "healthy"}) == pytest.approx(2 / 3)
    assert gradient_health({}) is None


SCORES = {
    "neuron_utilization": 0.9,
    "parameter_efficiency": 0.4,
    "training_stability": 0.7,
    "gradient_health": 1.0,
    "convergence_quality": 0.6,
    "accuracy_consistency": 0.3,
}


def test_overall_health_is_the_weighted_sum_of_the_users_weights():
    expected = sum(DEFAULT_WEIGHTS[c] * SCORES[c] for c in COMPONENTS)
    assert overall_health(SCORES, DEFAULT_WEIGHTS) == pytest.approx(expected)

    moved = dict(DEFAULT_WEIGHTS, neuron_utilization=0.10, accuracy_consistency=0.25)
    delta = overall_health(SCORES, moved) - overall_health(SCORES, DEFAULT_WEIGHTS)
    expected_delta = (0.10 - 0.25) * SCORES["neuron_utilization"] + (0.25 - 0.10) * SCORES["accuracy_consistency"]
    assert delta == pytest.approx(expected_delta)
    assert delta != pytest.approx(0.0)


@pytest.mark.parametrize(
    "weights, fragment",
    [
        (dict(DEFAULT_WEIGHTS, neuron_utilization=0.5), "sum to 1.25"),
        ({k: v for k, v in DEFAULT_WEIGHTS.items() if k != "gradient_health"}, "missing: ['gradient_health']"),
        (dict(DEFAULT_WEIGHTS, vibes=0.0), "unknown: ['vibes']"),
        (dict(DEFAULT_WEIGHTS, neuron_utilization=-0.05, gradient_health=0.45), "negative: neuron_utilization"),
    ],
)
def test_validate_weights_refuses_bad_weights(weights, fragment):
    with pytest.raises(ConfigError, match="health weights") as caught:
        validate_weights(weights)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_overall_health_rescales_the_weights_over_the_measured_components():
    partial = dict(SCORES, parameter_efficiency=None, accuracy_consistency=None)
    measured = 1.0 - DEFAULT_WEIGHTS["parameter_efficiency"] - DEFAULT_WEIGHTS["accuracy_consistency"]  # 0.75
    by_hand = (0.25 * 0.9 + 0.20 * 0.7 + 0.15 * 1.0 + 0.15 * 0.6) / measured
    assert overall_health(partial, DEFAULT_WEIGHTS) == pytest.approx(by_hand)
    used = overall_weights(partial, DEFAULT_WEIGHTS)
    assert set(used) == set(COMPONENTS) - {"parameter_efficiency", "accuracy_consistency"}
    assert used["neuron_utilization"] == pytest.approx(0.25 / 0.75) and sum(used.values()) == pytest.approx(1.0)
    assert overall_weights(SCORES, DEFAULT_WEIGHTS) == pytest.approx(DEFAULT_WEIGHTS)
    assert overall_health(dict.fromkeys(COMPONENTS), DEFAULT_WEIGHTS) is None


def test_recommendations_thresholds():
    assert recommendations(dict.fromkeys(COMPONENTS, 1.0), 1.0) == []
    advice = recommendations(dict(dict.fromkeys(COMPONENTS, 1.0), neuron_utilization=0.3), 0.4)
    assert advice[0].startswith("CRITICAL: neuron_utilization")
    assert advice[-1].startswith("URGENT")
    mild = recommendations(dict(dict.fromkeys(COMPONENTS, 1.0), neuron_utilization=0.6), 0.6)
    assert not mild[0].startswith("CRITICAL") and "below optimal" in mild[-1]


def test_unmeasured_components_earn_no_advice_and_the_verdict_says_what_it_covers():
    unmeasured = dict(dict.fromkeys(COMPONENTS, 1.0), training_stability=None, accuracy_consistency=None)
    assert recommendations(unmeasured, 1.0) == []
    low = dict(unmeasured, gradient_health=0.2)
    advice = recommendations(low, 0.45)
    assert [a.split()[0] for a in advice] == ["gradient_health", "URGENT:"]
    assert "(4 of 6 components measured)" in advice[-1]
    assert recommendations(dict.fromkeys(COMPONENTS), None) == []


def test_dead_units_of_signed_outputs_are_read_as_magnitudes():
    from lightsweep.callbacks import probe

    masks = {}
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh())
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.copy_(torch.tensor([-2.0, 0.0, 1.0]))  # unit 1 always outputs exactly 0
        net[0].weight[0, 0] = 1.0  # unit 0 varies but stays negative: alive
    with probe.unit_outputs(net, lambda name, out, dim: masks.update({name: dead_units(out, dim)})):
        probe.run(net, torch.randn(16, 2))
    assert masks["1"].tolist() == [False, True, True]  # unit 2: a constant tanh(1) carries nothing


@pytest.mark.parametrize(
    "value, status",
    [
        (0.0, "dead"),
        (1e-9, "dead"),  # below the 1e-8 dead threshold, and dead is checked first
        (1e-7, "vanishing"),
        (10.0, "exploding"),
        (0.01, "healthy"),
    ],
)
def test_classify_gradient(value, status):
    got, stats = classify_gradient(torch.full((100,), value))
    assert got == status
    assert stats["mean"] == pytest.approx(value)


def test_classify_gradient_half_dead_is_not_dead():
    status, stats = classify_gradient(torch.cat([torch.zeros(50), torch.full((50,), 0.01)]))
    assert (status, stats["dead_share"], stats["max"]) == ("healthy", 0.5, pytest.approx(0.01))


def test_overall_gradient_status_priority():
    assert overall_gradient_status(["healthy", "healthy"]) == "healthy"
    assert overall_gradient_status(["dead", "vanishing", "healthy"]) == "vanishing"
    assert overall_gradient_status(["dead", "exploding", "vanishing"]) == "exploding"
    assert overall_gradient_status(["healthy", "dead"]) == "dead"


def test_dead_units_on_relu_layers():
    torch.manual_seed(0)
    linear = torch.nn.Linear(4, 3)
    conv = torch.nn.Conv2d(3, 4, kernel_size=3)
    with torch.no_grad():
        linear.bias[0] = -100.0  # never crosses zero -> ReLU outputs 0
        conv.bias[2] = -100.0
        conv.weight[3].zero_()  # constant output ReLU(bias) -> never varies
        conv.bias[3] = 1.0
    relu = torch.nn.ReLU()
    linear_dead = dead_units(relu(linear(torch.randn(64, 4))), unit_dim=1)
    conv_dead = dead_units(relu(conv(torch.randn(8, 3, 6, 6))), unit_dim=1)
    assert linear_dead.tolist() == [True, False, False]
    assert conv_dead.tolist() == [False, False, True, True]
    assert dead_ratio({"fc": linear_dead, "conv": conv_dead}) == pytest.approx(3 / 7)


def test_weight_statistics():
    stats = weight_statistics(torch.tensor([0.0, 0.5, -4.0, 1e-7]))
    assert stats["mean"] == pytest.approx((0.5 - 4.0 + 1e-7) / 4)
    assert (stats["min"], stats["max"]) == (-4.0, 0.5)
    assert (stats["dead_share"], stats["saturated_share"]) == (0.5, 0.25)


TRAIN_LOSS = [1.0, 0.8, 0.6, 0.4, 0.3, 0.2]
SAME_ACC = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9]


def test_overfitting_val_loss_rising_above_falling_train_loss():
    # val bottoms out at epoch 2 then rises twice while train keeps falling
    severe = overfitting(TRAIN_LOSS, [1.1, 0.9, 0.7, 0.75, 0.8, 0.9], SAME_ACC, SAME_ACC)
    assert severe == ("severe", 2)
    mild = overfitting(TRAIN_LOSS, [1.1, 0.9, 0.35, 0.34, 0.37, 0.4], SAME_ACC, SAME_ACC)
    assert mild == ("mild", 3)


def test_overfitting_accuracy_gap():
    val_acc = SAME_ACC[:-1] + [0.78]
    assert overfitting(TRAIN_LOSS, TRAIN_LOSS, SAME_ACC, val_acc) == ("severe", None)


def test_overfitting_mirrored_is_none():
    # val below train (e.g. dropout active in training): the seed's inverted sign flagged this as severe
    val_loss = [loss - 0.5 for loss in TRAIN_LOSS]
    assert overfitting(TRAIN_LOSS, val_loss, SAME_ACC, SAME_ACC) == ("none", None)
