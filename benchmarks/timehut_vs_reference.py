"""TimeHUT's Chinatown recipe, lightsweep against the reference implementation, side by side on this machine.

    python benchmarks/timehut_vs_reference.py --reference-dir DIR [--seeds 0 1 2] [--threads 2]
        [--data-dir ../shared/data] [--wait-idle 600] [--no-write]

The reference is the public TimeHUT repository (github.com/aminjalali-research/TimeHUT) at commit
5bdf1335ddd3080e173695d3526c757f80fa9f3d, checked out by the user, e.g.

    git clone https://github.com/aminjalali-research/TimeHUT DIR && git -C DIR checkout 5bdf1335

Nothing of it is copied into this repository. The script copies DIR into a scratch folder and applies there
the one change the reference needs to run on a CPU: its two `amc3d_vectorized('cuda', z, ...)` calls in
models/losses.py take `z.device` instead of the hard-coded 'cuda' (a one-line `sed`:
`sed -i "s/amc3d_vectorized('cuda',/amc3d_vectorized(z.device,/" models/losses.py`). The checkout itself is
left as it is. It needs numpy, torch, pandas, scipy and scikit-learn (all in lightsweep's venv) and, only
through an import of its anomaly-detection task, `bottleneck`: when that is not installed a stand-in module
is registered (the classification path never calls it), and the result says so.

The reference's own scripts all search hyper-parameters (PyHopper / grids), so its side is a small driver,
written into the scratch folder, that does what one run of those scripts does with the recipe's values:
`utils.init_dl_program('cpu', seed, max_threads)` (the scripts' `--seed` and `--max-threads`),
`datautils.load_UCR('Chinatown', root)`, `TS2Vec(input_dims=1, device='cpu', batch_size=8, lr=0.001,
output_dims=320, max_train_length=3000, temp_dictionary={min_tau 0.05, max_tau 0.76, t_max 25},
amc_setting={amc_instance 10.0, amc_temporal 7.53, amc_margin 0.3}).fit(train, n_epochs=200)` (its own
training loop: 200 epochs = 400 steps of batch 8), then `tasks.eval_classification(..., 'svm')`.

lightsweep's side is the command a user types: `python train.py experiment=timehut_chinatown
paths.data_dir=... seed=S` (default callbacks of the recipe: checkpoint, health, efficiency, plots).

What is measured, the same way for both, one fresh process per run:
* training: the wall time of the training call alone: the reference's `TS2Vec.fit` (timed by the driver),
  lightsweep's `Trainer.fit` (run.json timings.train_s); both are the 400 steps with their per-step work
  (weight averaging, temperature per epoch) and the framework's set-up and tear-down of the loop;
* whole command: the wall time of the process, from launch to exit (start-up, imports, data, training,
  evaluation, files written); CPU seconds of the process (user + system) beside it;
* accuracy: the test accuracy each prints/records (SVM on the weight-averaged encoder's embeddings).
Runs alternate reference/lightsweep (the first of each pair alternates with the seed) so that a drift of
the machine's speed falls on both. Both run with --threads torch threads (the reference's --max-threads,
lightsweep's OMP_NUM_THREADS/torch default on this many cores). On a machine shared with other work: with
--wait-idle the script waits before each run (up to that many seconds) until no other process uses more
than a quarter of a core; during each run it measures the cores the rest of the machine used (/proc/stat
minus the run's own CPU time), and a seed's pair whose either run saw more than --max-others cores of other
work is run again (at most --attempts times). The table records, per run, the load average at its start
and the others' cores during it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REFERENCE_COMMIT = "5bdf1335ddd3080e173695d3526c757f80fa9f3d"
# in models/losses.py: its two calls (and one commented-out copy of a call)
DEVICE_PATCH = ("amc3d_vectorized('cuda',", "amc3d_vectorized(z.device,")
RECIPE = {
    "temp_dictionary": {"min_tau": 0.05, "max_tau": 0.76, "t_max": 25.0},
    "amc_setting": {"amc_instance": 10.0, "amc_temporal": 7.53, "amc_margin": 0.3},
    "batch_size": 8,
    "lr": 0.001,
    "output_dims": 320,
    "max_train_length": 3000,
    "epochs": 200,
}

# The reference's side: one run of its scripts with the recipe's values (our driver; it imports the
# reference's modules from the scratch copy it runs in).
DRIVER = """
import argparse, importlib.util, json, sys, time, types
parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, required=True)
parser.add_argument("--max-threads", type=int, required=True)
parser.add_argument("--dataroot", required=True)
parser.add_argument("--recipe", required=True)
args = parser.parse_args()
recipe = json.loads(args.recipe)
import datautils  # (pandas first: it probes for bottleneck itself and must not see the stand-in)
stand_in = importlib.util.find_spec("bottleneck") is None
if stand_in:  # imported by tasks/anomaly_detection.py only; classification never calls it
    sys.modules["bottleneck"] = types.ModuleType("bottleneck")
import tasks
from ts2vec import TS2Vec
from utils import init_dl_program
device = init_dl_program("cpu", seed=args.seed, max_threads=args.max_threads)
train_data, train_labels, test_data, test_labels = datautils.load_UCR("Chinatown", root=args.dataroot)
model = TS2Vec(input_dims=train_data.shape[-1], device=device, batch_size=recipe["batch_size"], lr=recipe["lr"],
               output_dims=recipe["output_dims"], max_train_length=recipe["max_train_length"],
               temp_dictionary=recipe["temp_dictionary"], amc_setting=recipe["amc_setting"])
started = time.perf_counter()
model.fit(train_data, n_epochs=recipe["epochs"], verbose=False)
train_s = time.perf_counter() - started
_, result = tasks.eval_classification(model, train_data, train_labels, test_data, test_labels, eval_protocol="svm")
print("RESULT " + json.dumps({"train_s": train_s, "acc": float(result["acc"]), "auprc": float(result["auprc"]),
                              "steps": model.n_iters, "bottleneck_stand_in": stand_in}))
"""


def prepare_reference(reference_dir: Path, scratch: Path) -> Path:
    """A patched copy of the user's checkout in `scratch`, with the driver beside its modules."""
    if not (reference_dir / "ts2vec.py").is_file() or not (reference_dir / "models" / "losses.py").is_file():
        sys.exit(f"--reference-dir {reference_dir}: not a TimeHUT checkout (no ts2vec.py, models/losses.py)")
    copy = scratch / "timehut-reference"
    shutil.copytree(reference_dir, copy, ignore=shutil.ignore_patterns(".git", "results", "__pycache__"))
    losses = copy / "models" / "losses.py"
    text = losses.read_text()
    calls = [line for line in text.splitlines() if DEVICE_PATCH[0] in line and not line.strip().startswith("#")]
    if len(calls) != 2:
        sys.exit(f"{losses}: expected two {DEVICE_PATCH[0]!r} calls (commit {REFERENCE_COMMIT[:8]}); is it?")
    losses.write_text(text.replace(*DEVICE_PATCH))
    (copy / "lightsweep_driver.py").write_text(DRIVER)
    return copy


def thread_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONDONTWRITEBYTECODE="1")
    return env


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (every process, every core) since boot (Linux)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, float, str]:
    """(wall s, CPU s of the child, cores the rest of the machine used meanwhile, its stdout); it must succeed."""
    before, busy_before = os.times(), busy_cpu_seconds()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after, busy = os.times(), busy_cpu_seconds() - busy_before
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, cpu, max(0.0, busy - cpu) / wall, done.stdout


def run_reference(copy: Path, seed: int, args: argparse.Namespace) -> dict:
    command = [sys.executable, "lightsweep_driver.py", "--seed", str(seed), "--max-threads", str(args.threads)]
    command += ["--dataroot", str(args.data_dir), "--recipe", json.dumps(RECIPE)]
    wall, cpu, others, out = timed(command, copy, thread_env(args.threads))
    result = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
    return {"wall_s": wall, "cpu_s": cpu, "others": others, **result}


def run_ours(scratch: Path, seed: int, args: argparse.Namespace) -> dict:
    run_dir = scratch / f"lightsweep-seed{seed}-{time.time_ns()}"
    command = [sys.executable, "train.py", "experiment=timehut_chinatown", f"paths.data_dir={args.data_dir}"]
    command += [f"seed={seed}", f"hydra.run.dir={run_dir}"]
    wall, cpu, others, _ = timed(command, REPO, thread_env(args.threads))
    record = json.loads((run_dir / "run.json").read_text())
    if record["status"] != "ok":
        sys.exit(f"lightsweep run {run_dir}: status {record['status']}")
    timings, metrics = record["timings"], record["metrics"]
    return {"wall_s": wall, "cpu_s": cpu, "others": others, "train_s": timings["train_s"], "acc": metrics["test/acc"]}


def cpu_hogs(threshold: float = 0.25, window: float = 2.0) -> list[str]:
    """Other processes that used more than `threshold` of a core over `window` seconds."""

    def ticks() -> dict[int, tuple[int, str]]:
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                name = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:100]
                found[int(entry.name)] = (int(fields[11]) + int(fields[12]), name)
            except (OSError, IndexError, ValueError):
                continue
        return found

    first = ticks()
    time.sleep(window)
    second = ticks()
    hertz = os.sysconf("SC_CLK_TCK")
    return [
        f"{pid} {name}"
        for pid, (total, name) in second.items()
        if pid in first and (total - first[pid][0]) / hertz / window > threshold
    ]


def wait_until_idle(limit: float) -> str:
    """Wait (at most `limit` s) until no other process is busy; what was still busy, if anything."""
    deadline = time.monotonic() + limit
    while True:
        hogs = cpu_hogs()
        if not hogs or time.monotonic() > deadline:
            return "; ".join(hogs)
        print(f"  waiting for an idle machine: {hogs[0]}{' ...' if len(hogs) > 1 else ''}", flush=True)
        time.sleep(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-dir", type=Path, required=True, help="a TimeHUT checkout at 5bdf1335")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2, help="torch threads of both (the reference's --max-threads)")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--wait-idle", type=float, default=0.0, help="wait up to this many s for an idle machine")
    parser.add_argument(
        "--max-others", type=float, default=0.15, help="rerun a pair when the rest of the machine used more cores"
    )
    parser.add_argument("--attempts", type=int, default=4, help="most runs of one seed's pair")
    parser.add_argument("--no-write", action="store_true", help="print the table only, leave RESULTS.md alone")
    args = parser.parse_args()
    args.data_dir = args.data_dir.resolve()
    runs: dict[str, list[dict]] = {"reference": [], "lightsweep": []}
    with tempfile.TemporaryDirectory(prefix="timehut-vs-ref-") as scratch:
        copy = prepare_reference(args.reference_dir.resolve(), Path(scratch))
        for index, seed in enumerate(args.seeds):
            order = ["reference", "lightsweep"] if index % 2 == 0 else ["lightsweep", "reference"]
            for attempt in range(args.attempts):  # a pair is kept only when nothing else ran beside it
                pair = {}
                for side in order:
                    busy = wait_until_idle(args.wait_idle) if args.wait_idle else ""
                    load = os.getloadavg()[0]
                    run = run_reference if side == "reference" else run_ours
                    result = run(copy if side == "reference" else Path(scratch), seed, args)
                    result.update(seed=seed, load=load, busy=busy, attempt=attempt)
                    pair[side] = result
                    print(f"{side:10s} seed {seed}: {json.dumps(result)}", flush=True)
                if max(r["others"] for r in pair.values()) <= args.max_others or attempt == args.attempts - 1:
                    break
                print(f"  seed {seed}: other processes used the cores meanwhile; running the pair again", flush=True)
            for side, result in pair.items():
                runs[side].append(result)
    body = report(runs, args)
    print(body)
    if not args.no_write:
        write_section("timehut-vs-reference", body)


def report(runs: dict[str, list[dict]], args: argparse.Namespace) -> str:
    import platform
    from datetime import date

    ref, ours = runs["reference"], runs["lightsweep"]

    def median(side: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in side)

    rows = []
    for r, o in zip(ref, ours):
        rows.append(
            f"| {r['seed']} | {r['train_s']:.2f} | {o['train_s']:.2f} | {r['train_s'] / o['train_s']:.2f}x "
            f"| {r['wall_s']:.2f} | {o['wall_s']:.2f} | {r['wall_s'] / o['wall_s']:.2f}x "
            f"| {r['cpu_s']:.1f} / {o['cpu_s']:.1f} | {r['acc']:.4f} | {o['acc']:.4f} "
            f"| {r['load']:.2f} / {o['load']:.2f} | {r['others']:.2f} / {o['others']:.2f} |"
        )
    train_ratio = median(ref, "train_s") / median(ours, "train_s")
    whole_ratio = median(ref, "wall_s") / median(ours, "wall_s")
    outside_ref = [r["wall_s"] - r["train_s"] for r in ref]
    outside_ours = [o["wall_s"] - o["train_s"] for o in ours]
    busy = sorted({run["busy"] for run in ref + ours if run["busy"]})
    stand_in = any(r.get("bottleneck_stand_in") for r in ref)
    seeds = " ".join(map(str, args.seeds))
    lines = [
        "## TimeHUT Chinatown recipe: lightsweep vs the reference, side by side (issue 18)",
        "",
        f"`python benchmarks/timehut_vs_reference.py --reference-dir <TimeHUT checkout @ {REFERENCE_COMMIT[:8]}> "
        f"--seeds {seeds} --threads {args.threads}` on {platform.machine()}, {os.cpu_count()} cores, "
        f"{args.threads} threads each, {date.today().isoformat()}.",
        "Reference: its TS2Vec.fit loop (200 epochs = 400 steps) through a driver in a scratch copy, patched only "
        "to run its AMC on the input's device; lightsweep: `python train.py experiment=timehut_chinatown "
        "paths.data_dir=... seed=S`. Training = the wall time of the training call (TS2Vec.fit / Trainer.fit); "
        "whole = wall time of the process; CPU = its user + system seconds. Runs interleaved, one process each; "
        f"a seed's pair is run again (up to {args.attempts} times) when the rest of the machine used more than "
        f"{args.max_others} cores during either run (last column: what it used during the kept runs).",
        "",
        "| seed | ref train s | ours train s | train ref/ours | ref whole s | ours whole s | whole ref/ours "
        "| CPU s ref / ours | ref acc | ours acc | load avg at start ref / ours | others' cores during ref / ours |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"**Training: median {median(ref, 'train_s'):.2f} s (reference) vs {median(ours, 'train_s'):.2f} s "
        f"(lightsweep) = {train_ratio:.2f}x; whole command: {median(ref, 'wall_s'):.2f} s vs "
        f"{median(ours, 'wall_s'):.2f} s = {whole_ratio:.2f}x.** Per step: "
        f"{median(ref, 'train_s') / 400 * 1000:.1f} ms vs {median(ours, 'train_s') / 400 * 1000:.1f} ms. "
        f"Outside training (start-up, data, evaluation, files): {statistics.median(outside_ref):.2f} s vs "
        f"{statistics.median(outside_ours):.2f} s. Mean test accuracy {statistics.mean(r['acc'] for r in ref):.4f} "
        f"(reference) vs {statistics.mean(o['acc'] for o in ours):.4f} (lightsweep), same seeds.",
    ]
    if busy:
        lines += ["", f"Busy at the start of some runs (waited {args.wait_idle:.0f} s at most): {'; '.join(busy)}"]
    if stand_in:
        lines += [
            "",
            "`bottleneck` was not installed: the reference ran with a stand-in module for it (imported "
            "by its anomaly-detection task only).",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
