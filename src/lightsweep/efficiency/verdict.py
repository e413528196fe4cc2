"""From measured runs to a verdict: per configuration the paired time and memory ratios against the baseline
run of the same round (same seed, run next to it), with a 95% confidence interval, and the accuracy over the
seeds; a technique is kept when it beats the baseline on time or memory beyond noise while accuracy stays
within the tolerance. Pure functions over plain dicts (one per run, see measure.py); no torch."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MEMORY_NOISE = 0.02  # a peak-RSS change under 2% is allocator noise, whatever the interval says
SLOWER = 1.05  # a memory gain does not keep a technique whose time ratio is surely above this
HEAVIER = 1.5  # nor a time gain one whose peak memory ratio is surely above this
POINTS = 0.005  # the default tolerance: half a point of accuracy, or one test example if that is more


@dataclass(frozen=True)
class Ratio:
    """A paired ratio (candidate / baseline): the median, and the geometric mean's 95% interval (t on logs;
    None with fewer than two pairs)."""

    median: float
    low: float | None
    high: float | None
    n: int

    def below_one(self) -> bool:
        return self.high is not None and self.high < 1.0

    def text(self) -> str:
        interval = f" [{self.low:.2f}, {self.high:.2f}]" if self.low is not None else ""
        return f"{self.median:.2f}x{interval}"


def paired_ratio(candidate: Sequence[float], baseline: Sequence[float]) -> Ratio | None:
    pairs = [(c, b) for c, b in zip(candidate, baseline, strict=True) if c and b and c > 0 and b > 0]
    if not pairs:
        return None
    logs = [math.log(c / b) for c, b in pairs]
    median = statistics.median(c / b for c, b in pairs)
    if len(logs) < 2:
        return Ratio(median, None, None, 1)
    from scipy.stats import t

    half = t.ppf(0.975, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    mean = statistics.fmean(logs)
    return Ratio(median, math.exp(mean - half), math.exp(mean + half), len(logs))


def mean_sd(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    known = [v for v in values if v is not None]
    if not known:
        return None, None
    return statistics.fmean(known), (statistics.stdev(known) if len(known) > 1 else 0.0)


def tolerance(test_samples: int | None, points: float | None = None) -> float:
    """The accuracy a technique may lose: `points` when given, else one test example or 0.5 points,
    whichever is more."""
    if points is not None:
        return points
    return max(POINTS, 1.0 / test_samples) if test_samples else POINTS


@dataclass(frozen=True)
class Verdict:
    kept: bool
    reason: str


def judge(baseline: list[dict[str, Any]], candidate: list[dict[str, Any]], kind: str, allowed: float) -> Verdict:
    """Verdict on a configuration's runs against the baseline runs of the same rounds (lists in round order).
    kind: training (time and memory of the training run) | inference (INT8 latency against the float network
    in the same runs)."""
    failed = [run for run in candidate if run.get("status") != "ok"]
    if failed:
        return Verdict(False, f"failed: {failed[0].get('error') or failed[0].get('status')}")
    if kind == "inference":
        return _judge_inference(candidate, allowed)
    base_accuracy, _ = mean_sd([run.get("accuracy") for run in baseline])
    accuracy, _ = mean_sd([run.get("accuracy") for run in candidate])
    if base_accuracy is not None and (accuracy is None or accuracy < base_accuracy - allowed):
        shown = "none" if accuracy is None else f"{accuracy:.4f}"
        return Verdict(False, f"rejected: accuracy {shown} vs {base_accuracy:.4f}, more than {allowed:.4f} below")
    time = paired_ratio([r.get("train_s") for r in candidate], [r.get("train_s") for r in baseline])
    memory = paired_ratio([r.get("peak_mb") for r in candidate], [r.get("peak_mb") for r in baseline])
    gains = []
    if time and time.below_one():
        gains.append(f"training time {time.text()}")
    if memory and memory.below_one() and memory.median <= 1 - MEMORY_NOISE:
        gains.append(f"peak memory {memory.text()}")
    measured = f"time {time.text() if time else 'n/a'}, memory {memory.text() if memory else 'n/a'}"
    if not gains:
        slower = time is not None and time.low is not None and time.low > 1.0
        what = "slower beyond noise" if slower else "no gain beyond noise"
        return Verdict(False, f"rejected: {what} ({measured}); accuracy within {allowed:.4f}")
    if time and time.low is not None and time.low > SLOWER:
        return Verdict(False, f"rejected: {gains[0]} but training time {time.text()} (slower beyond noise)")
    if memory and memory.low is not None and memory.low > HEAVIER:
        return Verdict(False, f"rejected: {gains[0]} but peak memory {memory.text()}")
    return Verdict(True, f"kept: {' and '.join(gains)}; accuracy within {allowed:.4f}")


def _judge_inference(candidate: list[dict[str, Any]], allowed: float) -> Verdict:
    records = [run.get("int8") or {} for run in candidate]
    if not all(r.get("int8") and r.get("float") for r in records):
        return Verdict(False, "rejected: the runs recorded no INT8 measurement")
    latency = paired_ratio(
        [r["int8"].get("latency_ms_per_sample") for r in records],
        [r["float"].get("latency_ms_per_sample") for r in records],
    )
    float_accuracy, _ = mean_sd([r["float"].get("accuracy") for r in records])
    int8_accuracy, _ = mean_sd([r["int8"].get("accuracy") for r in records])
    shown_latency = f"INT8 inference latency {latency.text() if latency else 'n/a'} of float"
    if float_accuracy is not None and (int8_accuracy is None or int8_accuracy < float_accuracy - allowed):
        shown = "none" if int8_accuracy is None else f"{int8_accuracy:.4f}"
        below = f"INT8 accuracy {shown} vs float {float_accuracy:.4f}, more than {allowed:.4f} below"
        return Verdict(False, f"rejected: {below}; {shown_latency}")
    if latency is None or not latency.below_one():
        return Verdict(False, f"rejected: {shown_latency}")
    return Verdict(True, f"kept: inference latency {latency.text()} of float; accuracy within {allowed:.4f}")
