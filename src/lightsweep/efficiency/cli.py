"""`lightsweep efficiency [overrides] [--techniques a,b] [--baseline-only] [--full] [--repeats N] [--seeds S ...]
[--tolerance P] [--name NAME] [--out DIR]`: measure, judge, combine, and write efficiency/<name>/."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from lightsweep.errors import ConfigError

USAGE = """lightsweep efficiency [overrides] [options]

Measures the baseline run (`python train.py [overrides]`) against each efficiency technique of
conf/technique/ and their best combination, in fresh processes, interleaved, over seeds; writes
efficiency/<name>/ (report.md, results.json, plots/, optimized.yaml, command.txt)."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lightsweep efficiency", usage=USAGE, add_help=True)
    p.add_argument("overrides", nargs="*", help="Hydra overrides of the baseline run")
    p.add_argument("--techniques", help="comma-separated technique names (default: all but the slow ones)")
    p.add_argument("--full", action="store_true", help="every technique, including pruning, distillation, finder")
    p.add_argument("--baseline-only", action="store_true", help="measure the baseline alone")
    p.add_argument("--repeats", type=int, default=3, help="rounds of timing per configuration (default 3)")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds for accuracy (default: 3 from the config's seed)")
    p.add_argument(
        "--tolerance",
        type=float,
        help="accuracy a technique may lose, as a fraction (default: one test example or 0.005, whichever is more)",
    )
    p.add_argument("--name", help="output folder name under --out (default: the experiment or <dataset>_<family>)")
    p.add_argument("--out", default="efficiency", help="where results go (default: ./efficiency)")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from lightsweep.config import normalize_overrides
    from lightsweep.efficiency.techniques import available, select

    problems = []
    if args.repeats < 1:
        problems.append(f"--repeats {args.repeats} must be at least 1")
    if args.tolerance is not None and not 0 <= args.tolerance < 1:
        problems.append(f"--tolerance {args.tolerance} must be a fraction in [0, 1), e.g. 0.005 for half a point")
    if args.name is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", args.name):
        problems.append(f"--name {args.name!r} may hold letters, digits, '_', '-' and '.' only")
    names = [n.strip() for n in args.techniques.split(",") if n.strip()] if args.techniques else None
    unknown = [n for n in names or [] if n not in available()]
    if unknown:
        problems.append(f"unknown technique(s) {', '.join(unknown)}: valid are {', '.join(available())}")
    if problems:
        raise ConfigError("lightsweep efficiency: " + "; ".join(problems) + ".")
    overrides = normalize_overrides(args.overrides)
    plan = _plan(args, overrides, select(names, args.full))
    return _run(plan)


def _plan(args: argparse.Namespace, overrides: list[str], techniques: list):
    from lightsweep.efficiency.baseline import baseline_of
    from lightsweep.efficiency.optimizer import Plan

    baseline, extra, name, seed = baseline_of(overrides)
    seeds = args.seeds or [seed, seed + 1, seed + 2]
    remote = any(o.startswith("executor=") and o != "executor=local" for o in overrides)
    out_dir = Path(args.out) / (args.name or name)
    out_dir.mkdir(parents=True, exist_ok=True)
    return Plan(
        name=args.name or name,
        out_dir=out_dir,
        overrides=[*overrides, *extra],
        baseline=baseline,
        techniques=techniques,
        seeds=seeds,
        repeats=args.repeats,
        tolerance_points=args.tolerance,
        remote=remote,
        baseline_only=args.baseline_only,
    )


def _run(plan) -> int:
    from tqdm import tqdm

    from lightsweep.efficiency.artifacts import write_artifacts
    from lightsweep.efficiency.optimizer import optimize, planned_runs
    from lightsweep.efficiency.plots import write_plots
    from lightsweep.efficiency.report import figures, write_report, write_results
    from lightsweep.efficiency.techniques import load, overrides_for

    with tqdm(total=planned_runs(plan), desc=f"efficiency {plan.name}", unit="run", file=sys.stderr) as progress:
        outcome = optimize(plan, progress)
    chosen = [load(name) for name in outcome.combination]
    optimized = [*plan.overrides, *overrides_for(chosen, plan.baseline)]
    header = f"# lightsweep efficiency {plan.name}: baseline + {', '.join(outcome.combination) or 'nothing'}\n"
    _, _, command = write_artifacts(plan.out_dir, optimized, header)
    plots = write_plots(figures(outcome), plan.out_dir)
    write_results(outcome, command)
    report = write_report(outcome, command, plots)
    print(report)
    return 0
