"""Sweep throughput with many drivers on one study, per storage (issue 17, acceptance 6).

1. End to end: W drivers (`python train.py -m ...`, the same command, started together against one fresh
   study; lightsweep.sweep.drivers) run a study of --trials tiny trials: the CNN on digits, 1 epoch of 8
   batches, +sweep=simple without pruner, no report. Wall time runs from the first start to the last exit;
   trials/min = trials / wall * 60 (median over --repeats). Each study must end with exactly --trials
   COMPLETE trials and every driver must exit 0, else the script says so and exits 1.
2. Storage cost per trial, in this one process: the storage operations a trial of such a sweep makes, with
   the sweeper's own functions, timed one by one over --cost-trials trials of one study (median, ms):
   check (the driver's look for lost trials and open slots before it asks), ask (study.ask and the CNN
   space's suggestions), claim (drivers.claim: the surplus check, worker and first heartbeat), heartbeat
   (one heartbeat write), attach (the job reopens the storage and its trial: study.load_trial), 4 reports
   (per epoch: report + should_prune, as the pruning callback does) and tell (the sweeper's tell of the
   result). The study grows from 0 to --cost-trials trials meanwhile; check and claim read all its trials.

Storages: sqlite (a file), postgres (a fresh database per measurement on --postgres-url, by default the local
server of tools/postgres/start-postgres.sh; skipped with a note when it cannot start) and journal (a file).

    python benchmarks/sweep_scale.py [--storages sqlite,postgres,journal] [--workers 1,2,4] [--trials 16]
        [--repeats 1] [--cost-trials 50] [--postgres-url URL] [--note TEXT] [--write] [OVERRIDE ...]

OVERRIDEs go to every driver (e.g. speed.threads=1 to give each driver one core). The table is printed;
--write also puts it into benchmarks/RESULTS.md (section sweep-scale).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _postgres import Postgres, shown, start_postgres, stop_postgres  # noqa: E402
from _results import machine, write_section  # noqa: E402
from _storage_cost import OPS, storage_cost  # noqa: E402

from lightsweep.paths import PROJECT_ROOT  # noqa: E402

STORAGES = {"sqlite": "SQLite file", "postgres": "PostgreSQL server", "journal": "journal file"}
# A tiny trial (tests/test_sweep.py's TINY_CNN: the architecture's keys fixed leave the search), so that
# the storage and the drivers' coordination, not training, decide the throughput. Batch size fixed too: the
# trials of different runs then do the same work whatever the sampler draws.
TRIAL = [
    "dataset=digits",
    "model=cnn",
    "model.filters=16",
    "model.conv_layers=1",
    "model.hidden_layers=1",
    "model.first_hidden_units=64",
    "dataset.batch_size=64",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=8",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.num_sanity_val_steps=0",
    "callbacks=[model_checkpoint]",
    "+sweep=simple",
    "hydra/sweeper/pruner=none",
    "hydra.sweeper.report=false",  # the report (plots) is written once per driver at its end, not per trial
]


@contextmanager
def fresh_storage(kind: str, folder: Path, postgres: Postgres | None):
    """The URL of an empty storage of `kind` (its files in `folder`)."""
    if kind == "postgres":
        with postgres.database() as url:
            yield url
    else:
        yield f"sqlite:///{folder}/study.db" if kind == "sqlite" else f"journal://{folder}/study.log"


def run_drivers(url: str, workers: int, trials: int, folder: Path, overrides: list[str]) -> tuple[float, str]:
    """Start `workers` drivers of one sweep together; (wall s from the first start to the last exit, error
    or '')."""
    import optuna

    from lightsweep.sweep.study import close_storage, open_storage, read_study_json

    sweep_dir, launch = folder / "sweep", folder / "launch"
    launch.mkdir(parents=True)
    command = [sys.executable, str(PROJECT_ROOT / "train.py"), "-m", f"hydra.sweep.dir={sweep_dir}", *TRIAL]
    command += [f"hydra.sweeper.n_trials={trials}", f"hydra.sweeper.storage={url}", *overrides]
    logs = [folder / f"driver{i}.log" for i in range(workers)]
    start = time.perf_counter()
    drivers = [subprocess.Popen(command, cwd=launch, stdout=log.open("w"), stderr=subprocess.STDOUT) for log in logs]
    deadline = start + 300 + 60 * trials  # a hung driver must not hang the benchmark
    codes = []
    for driver in drivers:
        try:
            codes.append(driver.wait(timeout=max(1.0, deadline - time.perf_counter())))
        except subprocess.TimeoutExpired:
            driver.kill()
            codes.append(f"killed after {deadline - start:.0f} s")
    wall = time.perf_counter() - start
    failed = [(i, code) for i, code in enumerate(codes) if code != 0]
    if failed:
        i, code = failed[0]
        return wall, f"driver {i} ended with {code}:\n{logs[i].read_text()[-2000:]}"
    storage = open_storage(url)
    try:
        study = optuna.load_study(study_name=read_study_json(sweep_dir)["study_name"], storage=storage)
        states = [t.state.name for t in study.get_trials(deepcopy=False)]
    finally:
        close_storage(storage)
    if states.count("COMPLETE") != trials:
        shown = ", ".join(f"{s} {states.count(s)}" for s in sorted(set(states)))
        return wall, f"the study ended with {shown}, not {trials} COMPLETE trials"
    return wall, ""


def end_to_end(args: argparse.Namespace, postgres: Postgres | None, root: Path) -> tuple[dict, list[str]]:
    """{(storage, workers): [wall s of each repeat]} and the errors; repeats interleave the setups, so that
    the machine's drift spreads over all of them."""
    walls, errors = {}, []
    for repeat in range(args.repeats):
        for workers in args.workers:
            for kind in args.storages:
                folder = root / f"{kind}-w{workers}-r{repeat}"
                folder.mkdir()
                with fresh_storage(kind, folder, postgres) as url:
                    wall, error = run_drivers(url, workers, args.trials, folder, args.overrides)
                label = f"{kind}, {workers} worker(s), repeat {repeat + 1}"
                print(f"{label}: {args.trials} trials in {wall:.1f} s ({args.trials / wall * 60:.1f}/min)", flush=True)
                if error:
                    errors.append(f"{label}: {error}")
                    print(f"ERROR {errors[-1]}", file=sys.stderr, flush=True)
                walls.setdefault((kind, workers), []).append(wall)
    return walls, errors


def throughput_table(args: argparse.Namespace, walls: dict) -> list[str]:
    header = "| storage | " + " | ".join(f"{w} worker{'s' * (w > 1)}" for w in args.workers) + " |"
    rows = [header, "|---" * (len(args.workers) + 1) + "|"]
    for kind in args.storages:
        if (kind, args.workers[0]) not in walls:
            continue
        rate = {w: args.trials / statistics.median(walls[kind, w]) * 60 for w in args.workers}
        cells = [
            f"{rate[w]:.1f} ({statistics.median(walls[kind, w]):.0f} s, {rate[w] / rate[args.workers[0]]:.2f}x)"
            for w in args.workers
        ]
        rows.append(f"| {STORAGES[kind]} | " + " | ".join(cells) + " |")
    return rows


def cost_table(costs: dict) -> list[str]:
    rows = ["| storage | ms per trial | " + " | ".join(OPS) + " |", "|---" * (len(OPS) + 2) + "|"]
    for kind, (total, ops) in costs.items():
        rows.append(f"| {STORAGES[kind]} | {total:.1f} | " + " | ".join(f"{ops[op]:.1f}" for op in OPS) + " |")
    return rows


def command_line(args: argparse.Namespace) -> str:
    parts = ["python benchmarks/sweep_scale.py", f"--storages {','.join(args.storages)}"]
    parts += [f"--workers {','.join(map(str, args.workers))}", f"--trials {args.trials}"]
    parts += [f"--repeats {args.repeats}", f"--cost-trials {args.cost_trials}"]
    parts += [f"--postgres-url {shown(args.postgres_url)}"] if args.postgres_url else []
    return " ".join(parts + (["--write"] if args.write else []) + args.overrides)


def section(args: argparse.Namespace, walls: dict, costs: dict, skipped: str, load: float, errors: list) -> str:
    checked = (
        f"{len(errors)} run(s) FAILED: their figures do not count."
        if errors
        else "Every study ended with exactly its trials COMPLETE."
    )
    conditions = f"load average {load:.1f} at the start" + (f"; {args.note}" if args.note else "")
    lines = [
        "## Sweep throughput with many drivers on one study, per storage",
        "",
        f"`{command_line(args)}` on {machine()} ({conditions}).",
        f"Trials per minute (median wall time of {args.repeats} run(s), speed-up vs {args.workers[0]} worker(s)): "
        f"W drivers of one +sweep=simple study of {args.trials} tiny trials (CNN on digits, 1 epoch of 8 "
        "batches, no pruner, no report), started together; wall time from the first start to the last exit, "
        f"process start-up included. {checked}",
        "",
        *throughput_table(args, walls),
        "",
        f"Storage cost per trial (one process, median over {args.cost_trials} trials of one study, ms): what "
        "one trial asks of the storage; see the script's docstring for each operation.",
        "",
        *cost_table(costs),
    ]
    if skipped:
        lines += ["", f"PostgreSQL {skipped}."]
    return "\n".join(lines)


def storage_list(text: str) -> list[str]:
    unknown = [kind for kind in text.split(",") if kind not in STORAGES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown storage {unknown[0]!r}; valid: {','.join(STORAGES)}")
    return text.split(",")


def worker_list(text: str) -> list[int]:
    if not all(part.isdigit() and int(part) > 0 for part in text.split(",")):
        raise argparse.ArgumentTypeError(f"{text!r}: expected worker counts of 1 or more, e.g. 1,2,4")
    return [int(part) for part in text.split(",")]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storages", type=storage_list, default=list(STORAGES), help="sqlite,postgres,journal")
    parser.add_argument("--workers", type=worker_list, default=[1, 2, 4], help="drivers per study (default 1,2,4)")
    parser.add_argument("--trials", type=int, default=16, help="trials per study (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each setup; the median counts (default 1)")
    parser.add_argument("--cost-trials", type=int, default=50, help="trials of the storage-cost part (default 50)")
    parser.add_argument(
        "--postgres-url", help="an existing server's URL (its user may create databases); default: the local one"
    )
    parser.add_argument("--note", help="conditions of the measurement for RESULTS.md, e.g. 'a quiet machine'")
    parser.add_argument("--write", action="store_true", help="write the section sweep-scale of benchmarks/RESULTS.md")
    parser.add_argument("--workdir", type=Path, help="keep the studies and driver logs here (default: a temp dir)")
    parser.add_argument("overrides", nargs="*", help="overrides given to every driver")
    args = parser.parse_args()
    if min(args.trials, args.repeats, args.cost_trials) < 1:
        parser.error("--trials, --repeats and --cost-trials must be 1 or more")
    return args


def main() -> None:
    args = parse_args()
    load = os.getloadavg()[0]
    postgres, skipped, started_here = (
        start_postgres(args.postgres_url) if "postgres" in args.storages else (None, "", False)
    )
    if skipped:
        print(f"PostgreSQL {skipped}", file=sys.stderr)
        args.storages = [k for k in args.storages if k != "postgres"]
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix="sweep_scale_") as temp:
            # a fresh folder per run, also in a kept --workdir: every measurement starts from empty storages
            root = Path(tempfile.mkdtemp(prefix="sweep_scale_", dir=args.workdir) if args.workdir else temp)
            walls, errors = end_to_end(args, postgres, root.resolve())
            costs = {}
            for kind in args.storages:
                folder = root.resolve() / f"{kind}-cost"
                folder.mkdir()
                with fresh_storage(kind, folder, postgres) as url:
                    costs[kind] = storage_cost(url, args.cost_trials, folder)
    finally:
        if started_here:  # leave the machine as it was
            stop_postgres()
    body = section(args, walls, costs, skipped, load, errors)
    print(body)
    if errors:
        sys.exit(f"{len(errors)} run(s) failed, RESULTS.md not written; first: {errors[0]}")
    if args.write:
        write_section("sweep-scale", body)


if __name__ == "__main__":
    main()
