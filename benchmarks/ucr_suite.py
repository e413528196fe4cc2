"""Run a named configuration over UCR datasets and seeds, and compare two configurations (issue 16).

Each finished run appends one JSON row (name, dataset, seed, test accuracy, training and wall seconds, the
configuration's overrides, date, run dir) to the results file; a row already there for (name, dataset, seed)
is skipped, so rerunning the same command resumes an interrupted suite (Ctrl-C or kill -9 lose at most the run
in progress). Runs go through the one run path, lightsweep.train.run, each in <results stem>_runs/.

    # the development set, 3 seeds, for both configurations, then the comparison (printed and in RESULTS.md)
    python benchmarks/ucr_suite.py --config ts2vec
    python benchmarks/ucr_suite.py --config defaults --compare ts2vec --write
    # a variant under a new name, on two datasets; then compare what the results file holds, running nothing
    python benchmarks/ucr_suite.py --config ts2vec --override model.amc_instance=0.5 --name amc05 --datasets Beef Car
    python benchmarks/ucr_suite.py --name amc05 --compare ts2vec --datasets Beef Car --no-run

Configurations: defaults = what model=auto gives a UCR set (no overrides: the shipped defaults of the
checkout); ts2vec = plain TS2Vec (TimeHUT with angular margins off and a fixed temperature of 1).
Datasets: `dev` = the 16 development sets of <data dir>/UCR/README.md plus the shipped ArrowHead, GunPoint and
ItalyPowerDemand, or archive names (a folder in <data dir>/UCR/ or a set shipped with aeon).
The comparison takes, per dataset, the seeds both names have; a tie is a difference of means within 1e-9.
Rows are keyed by name, not by what the name meant: after the shipped defaults change, run them under a new
--name (--config defaults --name defaults-v2) or --results file. Each row keeps the model and scheduler
settings it ran with (resolved, as in its run.json).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import machine, write_section  # noqa: E402

from lightsweep.errors import ConfigError, exit_on_user_error  # noqa: E402
from lightsweep.paths import CONF_DIR, PROJECT_ROOT  # noqa: E402

# Named configurations: the overrides that define each (dataset, seed and paths are the suite's).
CONFIGS = {
    "defaults": [],  # model=auto: whatever the checkout ships for time series
    "ts2vec": "model=timehut model.amc_instance=0 model.amc_temporal=0 scheduler=none model.temperature=1".split(),
}
# The development set of issue 16 (listed in shared/data/UCR/README.md) and the sets shipped with aeon.
DEV = [
    *"Adiac Beef Car CricketX DiatomSizeReduction DistalPhalanxOutlineCorrect Earthquakes Fish".split(),
    *"GunPointAgeSpan Lightning7 MedicalImages MiddlePhalanxTW ProximalPhalanxOutlineCorrect Strawberry".split(),
    *"SwedishLeaf WordSynonyms ArrowHead GunPoint ItalyPowerDemand".split(),
]
PRESETS = {"dev": DEV}
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
TIE = 1e-9


def shipped_sets() -> set[str]:
    """UCR sets read from the aeon wheel (conf/dataset/*.yaml with source: aeon): no files needed."""
    from omegaconf import OmegaConf

    configs = [OmegaConf.load(path) for path in (CONF_DIR / "dataset").glob("*.yaml")]
    return {c.name for c in configs if c.get("source") == "aeon" and c.get("archive") == "UCR"}


def expand(names: list[str], data_dir: Path, check: bool) -> list[str]:
    """Presets replaced by their sets; with `check`, every set must be on disk or shipped."""
    datasets = list(dict.fromkeys(d for name in names for d in PRESETS.get(name, [name])))
    available = shipped_sets() | {p.name for p in (data_dir / "UCR").glob("*") if p.is_dir()}
    unknown = [d for d in datasets if d not in available]
    if check and unknown:
        raise ConfigError(
            f"unknown dataset {', '.join(unknown)}: not in {data_dir / 'UCR'} nor shipped. Valid: presets "
            f"{', '.join(PRESETS)} or {', '.join(sorted(available))} (--data-dir sets where the files are)."
        )
    return datasets


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # only a hand edit or a crash of the machine can leave one
            print(f"ucr_suite: warning: {path}:{number} is not a JSON row; ignored", file=sys.stderr)
    return rows


def append_row(path: Path, row: dict) -> None:
    """One write of one whole line with O_APPEND (suites of two configurations may share the file), synced
    before the next run starts, so a kill never leaves half a row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(row) + "\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        if os.fstat(descriptor).st_size and not path.read_bytes().endswith(b"\n"):
            line = "\n" + line  # a hand-edited last line: do not glue this row onto it
        os.write(descriptor, line.encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def dataset_overrides(dataset: str, shipped: set[str]) -> list[str]:
    return ["dataset=ucr", f"dataset.name={dataset}", *(["dataset.source=aeon"] if dataset in shipped else [])]


def run_one(name: str, overrides: list[str], dataset: str, seed: int, data_dir: Path, runs: Path) -> dict:
    from lightsweep.config import compose
    from lightsweep.runinfo import read_run
    from lightsweep.train import run

    run_dir = runs / name / dataset / f"seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)  # what an interrupted attempt left
    every = [*QUIET, *overrides, *dataset_overrides(dataset, shipped_sets()), f"paths.data_dir={data_dir}"]
    started = time.perf_counter()
    result = run(compose([*every, f"seed={seed}"], output_dir=run_dir))
    wall_s = time.perf_counter() - started
    record = read_run(run_dir)
    # ~10 MB each and never resumed from (an unfinished run is rerun whole); run.json and plots stay
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return {
        "name": name,
        "dataset": dataset,
        "seed": seed,
        "test_acc": result.metrics["test/acc"],
        "val_acc": result.metrics.get("val/acc"),
        "train_s": result.timings["train_s"],
        "wall_s": wall_s,
        "overrides": overrides,
        "date": record["finished"],
        "run_dir": str(run_dir),
        "model": record["config"]["model"],
        "scheduler": record["config"]["scheduler"],
        "git_sha": record.get("git_sha"),
        "machine": machine(),
    }


def run_suite(args, name: str, overrides: list[str], datasets: list[str], rows: list[dict]) -> None:
    import logging

    import lightning  # noqa: F401  imported now, not inside the first run's wall time

    # one progress line: Lightning's per-run notices would break it (each run's details are in its run.json);
    # set after the import, which sets its own level
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    done = {(r["name"], r["dataset"], r["seed"]) for r in rows}
    todo = [(d, s) for d in datasets for s in args.seeds if (name, d, s) not in done]
    total = len(datasets) * len(args.seeds)
    runs = args.results.resolve().parent / f"{args.results.stem}_runs"
    with _progress(total, total - len(todo), name) as progress:  # closed before an interruption's message
        for dataset, seed in todo:
            progress.set_postfix_str(f"{dataset} seed {seed}")
            row = run_one(name, overrides, dataset, seed, args.data_dir, runs)
            append_row(args.results, row)
            rows.append(row)
            progress.update()


def _progress(total: int, initial: int, name: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=name, unit="run", dynamic_ncols=True)


def compare(rows: list[dict], this: str, other: str, datasets: list[str]) -> dict:
    """Per-dataset means over the seeds both names have, and what issue 16's acceptance reads from them."""
    runs: dict[tuple[str, str], dict[int, dict]] = {}
    for row in rows:
        runs.setdefault((row["name"], row["dataset"]), {})[row["seed"]] = row
    table, missing = [], []
    for dataset in datasets:
        mine, theirs = runs.get((this, dataset), {}), runs.get((other, dataset), {})
        seeds = sorted(mine.keys() & theirs.keys())
        if not seeds:
            missing.append(dataset)
            continue
        acc = [statistics.mean(runs_[s]["test_acc"] for s in seeds) for runs_ in (mine, theirs)]
        train = [statistics.mean(runs_[s]["train_s"] for s in seeds) for runs_ in (mine, theirs)]
        diff = acc[0] - acc[1]
        rank = 1.0 if diff > TIE else 2.0 if diff < -TIE else 1.5  # this one's rank of two; ties share
        table.append(dict(dataset=dataset, seeds=seeds, this=acc[0], other=acc[1], diff=diff, rank=rank,
                          time_ratio=train[0] / train[1]))  # fmt: skip
    if not table:
        raise ConfigError(f"no dataset has rows of both {this!r} and {other!r} for the same seed in the results")
    worst = min(table, key=lambda t: t["diff"])
    return {
        "table": table,
        "missing": missing,
        "mean_this": statistics.mean(t["this"] for t in table),
        "mean_other": statistics.mean(t["other"] for t in table),
        "rank_this": statistics.mean(t["rank"] for t in table),
        "rank_other": statistics.mean(3.0 - t["rank"] for t in table),
        "wins": sum(t["rank"] == 1.0 for t in table),
        "ties": sum(t["rank"] == 1.5 for t in table),
        "losses": sum(t["rank"] == 2.0 for t in table),
        "worst": (worst["dataset"], 100 * worst["diff"]),
        "median_time_ratio": statistics.median(t["time_ratio"] for t in table),
    }


def report(summary: dict, this: str, other: str, command: str, rows: list[dict]) -> str:
    compared = {t["dataset"] for t in summary["table"]}
    used = [r for r in rows if r["name"] in (this, other) and r["dataset"] in compared]
    machines = sorted({r["machine"].rsplit(", ", 1)[0] for r in used if r.get("machine")})  # its date aside
    dates = sorted(r["date"][:10] for r in used)
    worst, points = summary["worst"]
    behind = points < -100 * TIE  # points: 100 x the accuracy difference
    deficit = f"worst deficit {worst} ({points:+.2f} points)" if behind else f"no deficit (least ahead: {worst})"
    lines = [
        f"## UCR suite: {this} vs {other}",
        "",
        f"`{command}`; runs from {dates[0]} to {dates[-1]} on {'; '.join(machines) or 'an unrecorded machine'}.",
        "Per dataset: mean test accuracy over the seeds both have; time ratio = mean training seconds "
        f"{this} / {other}.",
        "",
        f"| dataset | seeds | {this} | {other} | diff (points) | time ratio |",
        "|---|---|---|---|---|---|",
        *(
            f"| {t['dataset']} | {','.join(map(str, t['seeds']))} | {t['this']:.4f} | {t['other']:.4f} "
            f"| {100 * t['diff']:+.2f} | {t['time_ratio']:.2f} |"
            for t in summary["table"]
        ),
        "",
        f"**Mean accuracy {summary['mean_this']:.4f} vs {summary['mean_other']:.4f} "
        f"({100 * (summary['mean_this'] - summary['mean_other']):+.2f} points) over {len(summary['table'])} "
        f"datasets; mean rank {summary['rank_this']:.2f} vs {summary['rank_other']:.2f}; wins/ties/losses "
        f"{summary['wins']}/{summary['ties']}/{summary['losses']}; {deficit}; "
        f"median training-time ratio {summary['median_time_ratio']:.2f}.**",
    ]
    if summary["missing"]:
        lines.append(f"No common seeds yet (left out): {', '.join(summary['missing'])}.")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--config", default="defaults", help=f"named configuration: {', '.join(CONFIGS)}")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override (repeatable); needs a new --name")  # fmt: skip
    parser.add_argument("--name", help="name of the rows (default: --config's name)")
    parser.add_argument("--datasets", nargs="+", default=["dev"], help="presets (dev) or archive names")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="default: %(default)s")
    data_dir = Path(os.environ.get("LIGHTSWEEP_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data"))
    parser.add_argument("--data-dir", type=Path, default=data_dir, help="holds UCR/<Name>/ (default: %(default)s)")
    parser.add_argument("--results", type=Path, default=PROJECT_ROOT / "outputs" / "ucr_suite" / "results.jsonl",
                        help="JSON-lines results file, shared by all names (default: %(default)s)")  # fmt: skip
    parser.add_argument("--compare", metavar="OTHER", help="then summarise against the rows named OTHER")
    parser.add_argument("--write", action="store_true", help="with --compare: also into benchmarks/RESULTS.md")
    parser.add_argument("--no-run", action="store_true", help="only summarise what the results file holds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.config not in CONFIGS:
        raise ConfigError(f"unknown configuration {args.config!r}. Valid: {', '.join(CONFIGS)}.")
    name, overrides = args.name or args.config, [*CONFIGS[args.config], *args.override]
    if name in CONFIGS and overrides != CONFIGS[name]:
        raise ConfigError(f"{name!r} is a named configuration: give the variant (--override) a new --name")
    if args.write and not args.compare:
        raise ConfigError("--write writes the comparison: add --compare OTHER")
    datasets = expand(args.datasets, args.data_dir.resolve(), check=not args.no_run)
    rows = read_rows(args.results)
    if not args.no_run:
        earlier = {tuple(r["overrides"]) for r in rows if r["name"] == name} - {tuple(overrides)}
        if earlier:
            raise ConfigError(f"the results already hold {name!r} run with {list(earlier.pop())}: use a new --name")
        run_suite(args, name, overrides, datasets, rows)
    if args.compare:
        if args.compare not in {r["name"] for r in rows}:
            names = ", ".join(sorted({r["name"] for r in rows})) or "none yet"
            raise ConfigError(f"no rows named {args.compare!r} in {args.results}. Names there: {names}.")
        command = "python benchmarks/ucr_suite.py " + " ".join(sys.argv[1:] if argv is None else argv)
        body = report(compare(rows, name, args.compare, datasets), name, args.compare, command, rows)
        print(body)
        if args.write:
            write_section(f"ucr-suite-{name}-vs-{args.compare}", body)
    else:
        accuracies = [r["test_acc"] for r in rows if r["name"] == name and r["dataset"] in datasets]
        if accuracies:
            print(f"{name}: mean test accuracy {statistics.mean(accuracies):.4f} over {len(accuracies)} runs")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("ucr_suite: interrupted; finished rows are kept, rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        exit_on_user_error(exc)
        raise
