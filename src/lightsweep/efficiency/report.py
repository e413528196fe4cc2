"""The optimizer's outputs in efficiency/<name>/: results.json (every figure), report.md (tables, verdicts,
recommendation) and plots/ (time and memory ratios, accuracy against time)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from lightsweep.efficiency.optimizer import BASELINE, Outcome
from lightsweep.efficiency.verdict import HEAVIER, SLOWER, mean_sd, paired_ratio
from lightsweep.runinfo import write_json_atomic


def figures(outcome: Outcome) -> dict[str, dict[str, Any]]:
    """label -> the configuration's figures (medians, paired ratios with intervals, accuracy mean and sd)."""
    table = {BASELINE: _figures(outcome.runs.get(BASELINE, []), None)}
    for row in outcome.rows:
        if row["label"] in outcome.runs:
            table[row["label"]] = _figures(outcome.runs[row["label"]], outcome.paired_baseline[row["label"]])
    return table


def _figures(runs: list[dict[str, Any]], bases: list[dict[str, Any]] | None) -> dict[str, Any]:
    ok = [r for r in runs if r.get("status") == "ok"]

    def median(key: str) -> float | None:
        values = [r[key] for r in ok if r.get(key) is not None]
        return statistics.median(values) if values else None

    accuracy, accuracy_sd = mean_sd([r.get("accuracy") for r in ok])
    f1, f1_sd = mean_sd([r.get("f1_macro") for r in ok])
    result = {
        "runs": len(runs),
        "failed": len(runs) - len(ok),
        "train_s": median("train_s"),
        "wall_s": median("wall_s"),
        "peak_mb": median("peak_mb"),
        "flops_per_step": median("flops_per_step"),
        "flops_total": median("flops_total"),
        "latency_ms_per_sample": median("latency_ms_per_sample"),
        "parameters": median("parameters"),
        "accuracy": accuracy,
        "accuracy_sd": accuracy_sd,
        "f1_macro": f1,
        "f1_macro_sd": f1_sd,
    }
    if bases is not None and len(ok) == len(runs):
        for key, name in (("train_s", "time_ratio"), ("peak_mb", "memory_ratio")):
            ratio = paired_ratio([r.get(key) for r in runs], [b.get(key) for b in bases])
            result[name] = ratio and {"median": ratio.median, "low": ratio.low, "high": ratio.high, "n": ratio.n}
    for record in ("channel_pruning", "int8", "distillation"):
        if ok and record in ok[0]:
            result[record] = ok[0][record]  # seed-independent facts (sizes) and the first run's figures
    return result


def write_results(outcome: Outcome, command: str) -> Path:
    plan = outcome.plan
    path = plan.out_dir / "results.json"
    write_json_atomic(
        path,
        {
            "name": plan.name,
            "baseline_overrides": plan.overrides,
            "family": plan.baseline.family,
            "device": plan.baseline.device,
            "seeds": plan.rounds,
            "accuracy_tolerance": outcome.allowed,
            "rows": outcome.rows,
            "figures": figures(outcome),
            "combination": outcome.combination,
            "command": command,
            "runs": outcome.runs,
        },
    )
    return path


def write_report(outcome: Outcome, command: str, plots: list[str]) -> Path:
    plan, table = outcome.plan, figures(outcome)
    base = table[BASELINE]
    lines = [
        f"# Efficiency: {plan.name}",
        "",
        f"Baseline: `python train.py {' '.join(plan.overrides)}` — model family {plan.baseline.family}, "
        f"on {plan.baseline.device.upper()}. Each configuration ran in its own process, {len(plan.rounds)} rounds "
        f"(seeds {', '.join(map(str, plan.rounds))}); round r runs the baseline first, then the techniques in a "
        "shuffled order, all with seed r. Ratios are paired with the baseline of the same round: median, and the "
        "geometric mean's 95% interval. A technique is kept when the interval lies below 1 for training time or "
        f"peak memory and the mean test accuracy is at most {outcome.allowed:.4f} below the baseline's, unless the "
        f"other one is surely worse (time above {SLOWER}x for a memory gain, memory above {HEAVIER}x for a time "
        "gain).",
        "",
        "| configuration | verdict | train s | time ratio | peak MB | memory ratio | GFLOP/step | GFLOP total "
        "| ms/sample (inference) | accuracy | F1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        _table_row(BASELINE, "reference", base),
    ]
    for row in outcome.rows:
        lines.append(_table_row(row["label"], row["verdict"], table.get(row["label"])))
    lines += ["", *_details(table), "", "## Recommendation", ""]
    if outcome.combination:
        combined = "+".join(outcome.combination)
        figures_of = table.get(combined) or table.get(outcome.combination[0]) or {}
        ratio = figures_of.get("time_ratio") or {}
        lines += [
            f"Use {', '.join(outcome.combination)}: training time {_ratio_text(ratio)} of the baseline, accuracy "
            f"{_pm(figures_of.get('accuracy'), figures_of.get('accuracy_sd'))} (baseline "
            f"{_pm(base.get('accuracy'), base.get('accuracy_sd'))}).",
            "",
            f"Command (command.txt): `{command}`",
            "",
            "As an experiment: `cp optimized.yaml <repo>/conf/experiment/<name>.yaml` then "
            "`python train.py experiment=<name>`.",
        ]
    else:
        lines.append(
            "No technique beat the baseline beyond noise without losing accuracy on this hardware, so the "
            f"combined configuration is the baseline itself (time ratio 1.00, accuracy "
            f"{_pm(base.get('accuracy'), base.get('accuracy_sd'))}): keep it. Command (command.txt): `{command}`"
        )
    lines += ["", *[f"![{Path(p).stem}]({p})" for p in plots]]
    path = plan.out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _table_row(label: str, verdict: str, fig: dict[str, Any] | None) -> str:
    if fig is None:
        return f"| {label} | {verdict} |" + " |" * 9
    cells = [
        label,
        verdict,
        _num(fig.get("train_s"), "{:.2f}"),
        _ratio_text(fig.get("time_ratio")),
        _num(fig.get("peak_mb"), "{:.0f}"),
        _ratio_text(fig.get("memory_ratio")),
        _num(fig.get("flops_per_step"), "{:.3g}", 1e-9),
        _num(fig.get("flops_total"), "{:.4g}", 1e-9),
        _num(fig.get("latency_ms_per_sample"), "{:.4f}"),
        _pm(fig.get("accuracy"), fig.get("accuracy_sd")),
        _pm(fig.get("f1_macro"), fig.get("f1_macro_sd")),
    ]
    return "| " + " | ".join(cells) + " |"


def _details(table: dict[str, dict[str, Any]]) -> list[str]:
    """What the pruning, INT8 and distillation runs recorded beyond the common figures."""
    lines = []
    for label, fig in table.items():
        if pruning := fig.get("channel_pruning"):
            lines.append(
                f"- **{label}**: parameters {pruning.get('params_before')} -> {pruning.get('params_after')}, "
                f"FLOPs per step {pruning.get('flops_per_step_before')} -> {pruning.get('flops_per_step_after')}, "
                f"channels {pruning.get('channels_before')} -> {pruning.get('channels_after')} at epoch "
                f"{pruning.get('at_epoch')}; accuracy {_pm(fig.get('accuracy'), fig.get('accuracy_sd'))}."
            )
        if int8 := fig.get("int8"):
            f32, i8 = int8.get("float") or {}, int8.get("int8") or {}
            lines.append(
                f"- **{label}**: inference {_num(f32.get('latency_ms_per_sample'), '{:.4f}')} ms/sample float vs "
                f"{_num(i8.get('latency_ms_per_sample'), '{:.4f}')} INT8; evaluation accuracy "
                f"{_num(f32.get('accuracy'), '{:.4f}')} float vs {_num(i8.get('accuracy'), '{:.4f}')} INT8 "
                f"(size {_num(f32.get('size_mb'), '{:.2f}')} vs {_num(i8.get('size_mb'), '{:.2f}')} MB, first seed)."
            )
        if distillation := fig.get("distillation"):
            lines.append(
                f"- **{label}**: student {distillation.get('student_params')} parameters learning from a teacher of "
                f"{distillation.get('teacher_params')} (the baseline run of the same seed; its training time is not "
                "included)."
            )
    return lines


def _ratio_text(ratio: dict[str, Any] | None) -> str:
    if not ratio:
        return ""
    if ratio.get("low") is None:
        return f"{ratio['median']:.2f}x"
    return f"{ratio['median']:.2f}x [{ratio['low']:.2f}, {ratio['high']:.2f}]"


def _num(value: float | None, form: str, scale: float = 1.0) -> str:
    return "" if value is None else form.format(value * scale)


def _pm(mean: float | None, sd: float | None) -> str:
    return "" if mean is None else f"{mean:.4f} ± {sd or 0:.4f}"
