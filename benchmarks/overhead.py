"""Framework overhead: one CNN/digits epoch through lightsweep's run() vs. a plain PyTorch loop.

Both train the same network (CNNClassifier's layers) from the same DataLoaders (the datamodule's
in-memory batches) with the same optimizer, and both validate each epoch computing loss and accuracy,
so the difference is the training loop machinery: Lightning's loops, hooks and logging plus ours. Steady-state seconds per epoch
are (T(E epochs) - T(1 epoch)) / (E - 1), so set-up costs cancel; lightsweep's T is run.json's
timings.train_s (Trainer.fit). Runs alternate, in one process; medians over --repeats.

    python benchmarks/overhead.py [--repeats 5] [--epochs 6]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _results import machine, write_section  # noqa: E402

from lightsweep.config import compose  # noqa: E402
from lightsweep.data.digits import DigitsDataModule  # noqa: E402
from lightsweep.models.classifier import make_optimizer  # noqa: E402
from lightsweep.models.cnn import CNNClassifier  # noqa: E402
from lightsweep.train import run  # noqa: E402

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
         "trainer.num_sanity_val_steps=0", "model=cnn", "dataset=digits", "seed=0"]
SETUPS = {  # name -> extra overrides
    "lightsweep, same work as the plain loop (csv logger, no checkpoints)": ["callbacks=none"],
    "lightsweep, default callbacks (+ best/last checkpoint each epoch)": [],
}


def lightsweep_fit_seconds(epochs: int, extra: list[str]) -> float:
    with tempfile.TemporaryDirectory() as out:
        cfg = compose(QUIET + extra + [f"trainer.max_epochs={epochs}"], output_dir=out)
        return run(cfg).timings["train_s"]


def plain_fit_seconds(epochs: int) -> float:
    torch.manual_seed(0)
    data = DigitsDataModule()
    data.setup()
    cfg = compose(["model=cnn"], output_dir="unused").model
    net = CNNClassifier(data.input_shape, data.num_classes, **{k: v for k, v in cfg.items() if k != "_target_"}).net
    optimizer = make_optimizer(dict(cfg.optimizer), net.parameters())
    train_batches, val_batches = data.train_dataloader(), data.val_dataloader()
    started = time.perf_counter()
    for _ in range(epochs):
        net.train()
        correct = total_loss = 0.0
        for inputs, targets in train_batches:
            logits = net(inputs)
            loss = F.cross_entropy(logits, targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(targets)
            correct += (logits.argmax(1) == targets).sum().item()
        net.eval()
        with torch.no_grad():
            val_correct = val_loss = 0.0
            for inputs, targets in val_batches:
                logits = net(inputs)
                val_loss += F.cross_entropy(logits, targets, reduction="sum").item()
                val_correct += (logits.argmax(1) == targets).sum().item()
    return time.perf_counter() - started


def per_epoch(fit_seconds, epochs: int) -> float:
    return (fit_seconds(epochs) - fit_seconds(1)) / (epochs - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {"plain PyTorch loop": [], **{name: [] for name in SETUPS}}
    plain_fit_seconds(2)  # warm-up: first-call allocations and kernel selection
    for _ in range(args.repeats):
        samples["plain PyTorch loop"].append(per_epoch(plain_fit_seconds, args.epochs))
        for name, extra in SETUPS.items():
            samples[name].append(per_epoch(lambda e, extra=extra: lightsweep_fit_seconds(e, extra), args.epochs))
    plain = statistics.median(samples["plain PyTorch loop"])
    rows = [f"| {name} | {statistics.median(v) * 1000:.1f} | {statistics.median(v) / plain:.2f}x |"
            for name, v in samples.items()]
    body = "\n".join([
        "## Framework overhead per epoch (CNN on digits, train + validation)",
        "",
        f"`python benchmarks/overhead.py --repeats {args.repeats} --epochs {args.epochs}` on {machine()}.",
        f"Median of {args.repeats} steady-state epoch times, (T({args.epochs}) - T(1)) / {args.epochs - 1}, "
        "runs alternating in one process.",
        "",
        "| setup | ms / epoch | vs plain |",
        "|---|---|---|",
        *rows,
    ])
    print(body)
    write_section("overhead", body)


if __name__ == "__main__":
    main()
