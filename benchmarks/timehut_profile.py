"""Where TimeHUT's Chinatown recipe spends its time: the whole command (cProfile) and one training step (timers).

    python benchmarks/timehut_profile.py [--command] [--step] [--steps 300] [--data-dir ../shared/data]

--command runs `python -m cProfile train.py experiment=timehut_chinatown ... seed=0` in a child process (of
this checkout, or of --repo DIR: e.g. an unpacked older commit, to profile it the same way) and
sums its profile into the parts of the command (start-up, composition, data, fit and its pieces, test,
plots, run.json). cProfile slows Python-heavy code more than torch kernels, so read the shares, not the
seconds. --step times the parts of a training step (crops, encoder forward, loss forward, backward,
optimiser step, weight average) outside Lightning with the recipe's values (perf_counter per part, medians
over --steps steps after a warm-up), then prints torch.profiler's top operators over 50 steps.
Shares on a shared machine are meaningful under load; seconds are not.
"""

from __future__ import annotations

import argparse
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# (part, pstats key fragment: file:line(function) substrings), measured as that function's cumulative time.
COMMAND_PARTS = [
    ("whole process (under cProfile)", "train.py:1(<module>)"),
    ("  Hydra: compose + run the job", "hydra/_internal/utils.py:479(_run_hydra)"),
    ("    lightsweep run()", "lightsweep/train.py:*(run)"),
    ("      resolve config (first torch/Lightning import)", "lightsweep/session.py:*(resolved_config)"),
    ("      measure: build, fit, test", "lightsweep/session.py:*(measure)"),
    ("        Trainer.fit", "trainer/trainer.py:522(fit)"),
    ("          training_step (forward + loss)", "timehut/module.py:*(training_step)"),
    ("          backward", "torch/_tensor.py:566(backward)"),
    ("          weight average (on_train_batch_end)", "timehut/module.py:*(on_train_batch_end)"),
    ("          callbacks' hooks (all)", "trainer/call.py:203(_call_callback_hooks)"),
    ("          FLOP counting (one step)", "flop_counter.py:*(__torch_dispatch__)"),
    ("          checkpoint save", "model_checkpoint.py:*(_save_checkpoint)"),
    ("        Trainer.test", "trainer/trainer.py:*(test)"),
    ("          encode (test_step)", "timehut/module.py:*(test_step)"),
    ("          SVM + cross-validation (on_test_epoch_end)", "timehut/module.py:*(on_test_epoch_end)"),
    ("          plots (on_test_end)", "callbacks/plots.py:*(on_test_end)"),
]


def _cumulative(stats: pstats.Stats, pattern: str) -> float:
    """Summed cumulative seconds of the functions whose 'file:line(name)' matches pattern (* = any line)."""
    import fnmatch

    total = 0.0
    for (filename, line, name), (_, _, _, cumulative, _) in stats.stats.items():
        key = f"{filename}:{line}({name})"
        if fnmatch.fnmatch(key, "*" + pattern):
            total += cumulative
    return total


def profile_command(data_dir: Path, repo: Path = REPO) -> str:
    with tempfile.TemporaryDirectory(prefix="timehut-profile-") as scratch:
        out = Path(scratch) / "command.prof"
        command = [sys.executable, "-m", "cProfile", "-o", str(out), "train.py", "experiment=timehut_chinatown"]
        command += [f"paths.data_dir={data_dir}", "seed=0", f"hydra.run.dir={scratch}/run"]
        started = time.perf_counter()
        env = {**os.environ, "PYTHONPATH": str(repo / "src")}  # that checkout's package, not the installed one
        subprocess.run(command, cwd=repo, check=True, capture_output=True, env=env)
        wall = time.perf_counter() - started
        stats = pstats.Stats(str(out))
    total = _cumulative(stats, COMMAND_PARTS[0][1])
    lines = [f"process wall time under cProfile: {wall:.2f} s", "", "| part | s (cProfile) | share |", "|---|---|---|"]
    for part, pattern in COMMAND_PARTS:
        seconds = _cumulative(stats, pattern)
        lines.append(f"| {part.strip()} | {seconds:.2f} | {seconds / total:.0%} |")
    before_job = total - _cumulative(stats, COMMAND_PARTS[1][1])
    share = before_job / total
    lines.append(f"| before Hydra runs the job (interpreter start-up, imports) | {before_job:.2f} | {share:.0%} |")
    return "\n".join(lines)


def profile_step(data_dir: Path, steps: int) -> str:
    import numpy as np
    import torch

    from lightsweep.data.timeseries import TimeSeriesDataModule
    from lightsweep.models.timehut.module import TimeHUT

    data = TimeSeriesDataModule(name="Chinatown", data_dir=str(data_dir), archive="UCR", batch_size=8)
    data.setup("fit")
    torch.manual_seed(0)
    np.random.seed(0)
    model = TimeHUT(data.input_shape, data.num_classes, amc_instance=10.0, amc_temporal=7.53, amc_margin=0.3)
    model.temperature = 0.5
    optimizer = model.configure_optimizers()
    batches = [data.fit_x[torch.randperm(len(data.fit_x))[:8]] for _ in range(steps + 60)]
    names = ("crops", "encoder forward", "loss forward", "backward", "optimiser step", "weight average")
    times: dict[str, list[float]] = {name: [] for name in (*names, "step")}

    def step(x: torch.Tensor) -> None:
        marks = [time.perf_counter()]
        crops = model.crop_views(x)  # (the module's own step: training_step without Lightning)
        marks.append(time.perf_counter())
        z1, z2 = model.encode_views(*crops)
        marks.append(time.perf_counter())
        loss = model.contrastive_loss(z1, z2)
        marks.append(time.perf_counter())
        optimizer.zero_grad()
        loss.backward()
        marks.append(time.perf_counter())
        optimizer.step()
        marks.append(time.perf_counter())
        model.update_average()
        marks.append(time.perf_counter())
        for name, begin, end in zip(names, marks, marks[1:]):
            times[name].append(end - begin)
        times["step"].append(marks[-1] - marks[0])

    model.train()
    for x in batches[:30]:
        step(x)
    for values in times.values():
        values.clear()
    for x in batches[30 : 30 + steps]:
        step(x)
    lines = ["| part | median ms | share |", "|---|---|---|"]
    total = statistics.median(times["step"])
    for name in names:
        median = statistics.median(times[name])
        lines.append(f"| {name} | {median * 1000:.2f} | {median / total:.0%} |")
    lines.append(f"| **step** | **{total * 1000:.2f}** | |")
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for x in batches[-50:]:
            step(x)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    return "\n".join(lines) + "\n\ntorch.profiler, 50 steps, top operators by self CPU time:\n" + table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", action="store_true")
    parser.add_argument("--step", action="store_true")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--repo", type=Path, default=REPO, help="--command: profile this checkout's train.py")
    args = parser.parse_args()
    if not (args.command or args.step):
        args.command = args.step = True
    if args.step:
        import torch

        torch.set_num_threads(args.threads)
        print(profile_step(args.data_dir.resolve(), args.steps), flush=True)
    if args.command:
        print(profile_command(args.data_dir.resolve(), args.repo.resolve()), flush=True)


if __name__ == "__main__":
    main()
