"""The efficiency optimizer's judgement on synthetic measurements (lightsweep.efficiency.verdict): paired
ratios and their intervals, the accuracy tolerance, and which technique is kept."""

from __future__ import annotations

import math

import pytest

from lightsweep.efficiency.verdict import judge, paired_ratio, tolerance

BASE = [
    {"status": "ok", "train_s": 10.0, "peak_mb": 500.0, "accuracy": 0.950},
    {"status": "ok", "train_s": 10.4, "peak_mb": 502.0, "accuracy": 0.952},
    {"status": "ok", "train_s": 9.8, "peak_mb": 501.0, "accuracy": 0.948},
]


def runs(time_factor: float, accuracy_shift: float = 0.0, memory_factor: float = 1.0) -> list[dict]:
    return [
        {
            **r,
            "train_s": r["train_s"] * time_factor * (1 + 0.01 * i),
            "peak_mb": r["peak_mb"] * memory_factor,
            "accuracy": r["accuracy"] + accuracy_shift,
        }
        for i, r in enumerate(BASE)
    ]


def test_a_faster_equally_accurate_technique_is_kept():
    verdict = judge(BASE, runs(0.7), "training", allowed=0.005)
    assert verdict.kept and verdict.reason.startswith("kept: training time 0.71x")


def test_a_faster_but_less_accurate_technique_is_rejected():
    verdict = judge(BASE, runs(0.5, accuracy_shift=-0.02), "training", allowed=0.005)
    assert not verdict.kept and "accuracy 0.9300 vs 0.9500" in verdict.reason


def test_a_loss_within_the_tolerance_is_allowed_and_one_beyond_it_is_not():
    assert judge(BASE, runs(0.7, accuracy_shift=-0.004), "training", allowed=0.005).kept
    assert not judge(BASE, runs(0.7, accuracy_shift=-0.006), "training", allowed=0.005).kept


def test_no_gain_beyond_noise_is_rejected():
    noisy = [dict(r, train_s=t) for r, t in zip(BASE, (7.0, 13.0, 9.9), strict=True)]  # faster median, wide interval
    verdict = judge(BASE, noisy, "training", allowed=0.005)
    assert not verdict.kept and verdict.reason.startswith("rejected: no gain beyond noise")
    slower = judge(BASE, runs(1.3), "training", allowed=0.005)
    assert not slower.kept and slower.reason.startswith("rejected: slower beyond noise (time 1.31x")


def test_a_memory_gain_alone_keeps_a_technique_but_not_allocator_noise():
    assert judge(BASE, runs(1.05, memory_factor=0.6), "training", allowed=0.005).reason.startswith(
        "kept: peak memory 0.60x"
    )
    assert not judge(BASE, runs(1.0, memory_factor=0.99), "training", allowed=0.005).kept  # under 2%


def test_a_gain_on_one_side_does_not_pay_for_a_sure_loss_on_the_other():
    slower = judge(BASE, runs(5.5, memory_factor=0.96), "training", allowed=0.005)  # amp_fp16 on a CPU
    assert not slower.kept and slower.reason.startswith("rejected: peak memory 0.96x") and "slower" in slower.reason
    heavier = judge(BASE, runs(0.7, memory_factor=2.0), "training", allowed=0.005)
    assert not heavier.kept and heavier.reason.endswith("but peak memory 2.00x [2.00, 2.00]")
    assert judge(BASE, runs(0.7, memory_factor=1.2), "training", allowed=0.005).kept  # compile's extra memory


def test_a_failed_run_rejects_with_its_error():
    failed = [*runs(0.5)[:2], {"status": "failed", "error": "ConfigError: speed.compile needs g++"}]
    verdict = judge(BASE, failed, "training", allowed=0.005)
    assert not verdict.kept and verdict.reason == "failed: ConfigError: speed.compile needs g++"


def test_int8_is_judged_on_its_latency_and_its_own_accuracy_against_float():
    def int8_runs(latency: float, accuracy: float) -> list[dict]:
        return [
            {
                "status": "ok",
                "int8": {
                    "float": {"latency_ms_per_sample": 1.0 + 0.01 * i, "accuracy": 0.9},
                    "int8": {"latency_ms_per_sample": latency + 0.01 * i, "accuracy": accuracy},
                },
            }
            for i in range(3)
        ]

    assert judge(BASE, int8_runs(0.5, 0.9), "inference", allowed=0.005).kept
    assert not judge(BASE, int8_runs(0.5, 0.8), "inference", allowed=0.005).kept
    assert not judge(BASE, int8_runs(1.2, 0.9), "inference", allowed=0.005).kept
    assert not judge(BASE, [{"status": "ok"}] * 3, "inference", allowed=0.005).kept


def test_paired_ratio_interval_is_the_geometric_means_t_interval():
    ratio = paired_ratio([1.0, 2.0, 4.0], [1.0, 1.0, 1.0])
    assert ratio.median == 2.0 and ratio.n == 3
    assert math.sqrt(ratio.low * ratio.high) == pytest.approx(2.0)  # symmetric on the log scale
    assert ratio.low < 1 < ratio.high
    exact = paired_ratio([2.0, 2.0], [1.0, 1.0])
    assert (exact.low, exact.high) == pytest.approx((2.0, 2.0))
    assert paired_ratio([1.0], [2.0]).low is None and paired_ratio([None], [1.0]) is None


def test_tolerance_is_one_test_example_or_half_a_point_unless_given():
    assert tolerance(100) == pytest.approx(0.01)  # one example of 100 is more than half a point
    assert tolerance(343) == 0.005  # Chinatown's test set: one example is 0.29 points
    assert tolerance(10000) == 0.005 and tolerance(None) == 0.005 and tolerance(343, 0.01) == 0.01
