"""The efficiency optimizer's plan: the baseline and each applicable technique measured in interleaved rounds
(round r: the baseline first, then every technique in a shuffled order, all with seed r), verdicts, then the
kept techniques combined greedily, each combination measured again next to a fresh baseline.

Every finished run is cached in <out>/measurements.json under its exact command line, so an interrupted
optimizer resumes where it stopped and a rerun with more techniques measures only what is new."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightsweep.efficiency.measure import measure_run
from lightsweep.efficiency.techniques import Baseline, Technique, conflicts, not_applicable, overrides_for
from lightsweep.efficiency.verdict import Verdict, judge, paired_ratio, tolerance
from lightsweep.runinfo import write_json_atomic

BASELINE = "baseline"
NOT_MEASURED = "not measured (--baseline-only)"


@dataclass
class Plan:
    name: str
    out_dir: Path
    overrides: list[str]  # the baseline's command line (the user's overrides)
    baseline: Baseline
    techniques: list[Technique]
    seeds: list[int]
    repeats: int
    tolerance_points: float | None = None
    remote: bool = False  # an executor other than local runs each measurement
    baseline_only: bool = False

    @property
    def rounds(self) -> list[int]:
        """Seed of each round: every seed at least once, `repeats` rounds at least."""
        return [self.seeds[r % len(self.seeds)] for r in range(max(self.repeats, len(self.seeds)))]


@dataclass
class Outcome:
    """Everything the report needs."""

    plan: Plan
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # label -> runs in round order
    paired_baseline: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # label -> its baseline runs
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per technique, then one per combination
    combination: list[str] = field(default_factory=list)  # the techniques of the recommended configuration
    allowed: float = 0.0


class Measurements:
    """The cache of finished runs, keyed by their exact command line."""

    def __init__(self, path: Path, progress: Any) -> None:
        self.path, self.progress = path, progress
        self.cache: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}

    def run(self, overrides: list[str], run_dir: Path, remote: bool) -> dict[str, Any]:
        key = hashlib.sha256(json.dumps([overrides, remote]).encode()).hexdigest()[:16]
        cached = self.cache.get(key)
        if cached is None or cached.get("status") != "ok":  # failures are retried on resume
            cached = {**measure_run(overrides, run_dir, remote), "overrides": overrides}
            self.cache[key] = cached
            write_json_atomic(self.path, self.cache)
        self.progress.update(1)
        return cached


def optimize(plan: Plan, progress: Any) -> Outcome:
    outcome = Outcome(plan)
    measurements = Measurements(plan.out_dir / "measurements.json", progress)
    applicable = [t for t in plan.techniques if not_applicable(t, plan.baseline) is None]
    if plan.baseline_only:
        applicable = []
    for index, seed in enumerate(plan.rounds):
        order = list(applicable)
        random.Random(index).shuffle(order)
        base = _measure(plan, measurements, [], seed, index, BASELINE)
        outcome.runs.setdefault(BASELINE, []).append(base)
        for technique in order:
            run = _measure(plan, measurements, [technique], seed, index, technique.name, teacher=_teacher(base))
            outcome.runs.setdefault(technique.name, []).append(run)
    outcome.allowed = tolerance(_test_samples(outcome.runs.get(BASELINE, [])), plan.tolerance_points)
    verdicts: dict[str, Verdict] = {}
    for technique in plan.techniques:
        reason = NOT_MEASURED if plan.baseline_only else not_applicable(technique, plan.baseline)
        if reason is None:
            verdicts[technique.name] = judge(
                outcome.runs[BASELINE], outcome.runs[technique.name], technique.kind, outcome.allowed
            )
            outcome.paired_baseline[technique.name] = outcome.runs[BASELINE]
        outcome.rows.append(_row(technique.name, technique, reason, verdicts.get(technique.name)))
    kept = [t for t in applicable if verdicts[t.name].kept and t.combine and t.kind == "training"]
    outcome.combination = _combine(plan, measurements, outcome, kept)
    return outcome


def planned_runs(plan: Plan) -> int:
    """Runs before the combination phase (the progress bar grows when combinations are measured)."""
    applicable = 0 if plan.baseline_only else sum(not_applicable(t, plan.baseline) is None for t in plan.techniques)
    return len(plan.rounds) * (1 + applicable)


def _combine(plan: Plan, measurements: Measurements, outcome: Outcome, kept: list[Technique]) -> list[str]:
    """Greedy: start from the kept technique with the best time ratio and add the next ones while the
    measured combination stays kept and gets faster."""
    if not kept:
        return []
    by_time = sorted(kept, key=lambda t: _time_ratio(outcome, t.name))
    best, best_ratio = [by_time[0]], _time_ratio(outcome, by_time[0].name)
    for technique in by_time[1:]:
        candidate = [*best, technique]
        if conflicts(candidate, plan.baseline):
            continue
        label = "+".join(t.name for t in candidate)
        plan_progress = getattr(measurements.progress, "total", None)
        if plan_progress is not None:
            measurements.progress.total = plan_progress + 2 * len(plan.rounds)
        bases, runs = [], []
        for index, seed in enumerate(plan.rounds):
            bases.append(_measure(plan, measurements, [], seed, index, f"{BASELINE}@{label}"))
            runs.append(_measure(plan, measurements, candidate, seed, index, label))
        outcome.runs[label], outcome.paired_baseline[label] = runs, bases
        verdict = judge(bases, runs, "training", outcome.allowed)
        outcome.rows.append(_row(label, None, None, verdict, combined=[t.name for t in candidate]))
        ratio = _time_ratio(outcome, label)
        if verdict.kept and ratio < best_ratio:
            best, best_ratio = candidate, ratio
    return [t.name for t in best]


def _measure(
    plan: Plan,
    measurements: Measurements,
    techniques: list[Technique],
    seed: int,
    index: int,
    label: str,
    teacher: str | None = None,
) -> dict[str, Any]:
    overrides = [*plan.overrides, *overrides_for(techniques, plan.baseline, teacher), f"seed={seed}"]
    run_dir = plan.out_dir / "runs" / label / f"round{index}-seed{seed}"
    return measurements.run(overrides, run_dir, plan.remote)


def _teacher(baseline_run: dict[str, Any]) -> str | None:
    """The baseline run's final checkpoint: the teacher a distillation run of the same round learns from."""
    last = Path(baseline_run["run_dir"]) / "checkpoints" / "last.ckpt"
    return str(last) if last.is_file() else None


def _time_ratio(outcome: Outcome, label: str) -> float:
    runs, bases = outcome.runs[label], outcome.paired_baseline[label]
    ratio = paired_ratio([r.get("train_s") for r in runs], [r.get("train_s") for r in bases])
    return ratio.median if ratio else float("inf")


def _test_samples(runs: list[dict[str, Any]]) -> int | None:
    return next((r["test_samples"] for r in runs if r.get("test_samples")), None)


def _row(label: str, technique: Technique | None, reason: str | None, verdict: Verdict | None, combined=None) -> dict:
    if reason == NOT_MEASURED:
        status, text = "not measured", reason
    elif reason is not None:
        status, text = "not applicable", f"not applicable: {reason}"
    else:
        status, text = ("kept" if verdict.kept else "rejected"), verdict.reason
    return {
        "label": label,
        "description": technique.description if technique else "combination of " + ", ".join(combined or []),
        "kind": technique.kind if technique else "training",
        "techniques": combined or [label],
        "status": status,
        "verdict": text,
    }
