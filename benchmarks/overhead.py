"""Framework overhead: one CNN/digits epoch through lightsweep's run() vs. a plain PyTorch loop.

Both train the same network (CNNClassifier's layers) from the same DataLoaders (the datamodule's
in-memory batches) with the same optimizer, and both validate each epoch computing loss and accuracy,
so the difference is the training loop machinery: Lightning's loops, hooks and logging plus ours.
An epoch's time runs from the start of one epoch to the start of the next (lightsweep: run.json's
timings.epoch_s); the first epoch of each run is dropped as warm-up. Runs alternate in one process;
the figures are the median over all kept epochs of all repeats and, paired, the median over repeats of
each repeat's own ratio to the plain loop.

    python benchmarks/overhead.py [--repeats 5] [--epochs 11]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).parent))
from _results import machine, write_section  # noqa: E402

from lightsweep.callbacks.timing import EpochTimer  # noqa: E402
from lightsweep.config import compose  # noqa: E402
from lightsweep.data.digits import DigitsDataModule  # noqa: E402
from lightsweep.models.classifier import make_optimizer  # noqa: E402
from lightsweep.models.cnn import CNNClassifier  # noqa: E402
from lightsweep.train import run  # noqa: E402

QUIET = [
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.num_sanity_val_steps=0",
    "model=cnn",
    "dataset=digits",
    "seed=0",
]
BATCH_SIZE = [64]  # the digits config's default; --batch-size changes it for every setup
PLAIN = "plain PyTorch loop"
BARE = "Lightning alone (bare LightningModule: same net, no metrics, no logger)"
BAREBONES = "Lightning alone in its barebones mode (Trainer(barebones=True))"
SETUPS = {  # name -> extra overrides
    "lightsweep, same work as the plain loop (csv logger, no checkpoints)": ["callbacks=none"],
    "lightsweep + best/last checkpoint each epoch (callbacks=model_checkpoint)": ["callbacks=model_checkpoint"],
}


def lightsweep_epochs(epochs: int, extra: list[str]) -> list[float]:
    with tempfile.TemporaryDirectory() as out:
        sizes = [f"trainer.max_epochs={epochs}", f"dataset.batch_size={BATCH_SIZE[0]}"]
        cfg = compose(QUIET + extra + sizes, output_dir=out)
        return run(cfg).timings["epoch_s"][1:]


def _same_setup() -> tuple[DigitsDataModule, torch.nn.Module, dict]:
    """The digits datamodule, the default CNN's layers and its optimizer settings."""
    data = DigitsDataModule(batch_size=BATCH_SIZE[0])
    data.setup()
    cfg = OmegaConf.to_container(compose(["model=cnn"], output_dir="unused").model)
    settings = {k: v for k, v in cfg.items() if k != "_target_"}
    return data, CNNClassifier(data.input_shape, data.num_classes, **settings).net, cfg["optimizer"]


def plain_epochs(epochs: int) -> list[float]:
    torch.manual_seed(0)
    data, net, optimizer_spec = _same_setup()
    optimizer = make_optimizer(optimizer_spec, net.parameters())
    train_batches, val_batches = data.train_dataloader(), data.val_dataloader()
    starts = []
    for _ in range(epochs):
        starts.append(time.perf_counter())
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
    starts.append(time.perf_counter())
    return [b - a for a, b in zip(starts[1:], starts[2:])]


class BareModule(L.LightningModule):
    """Lightning's own cost: the same network and optimizer, no metrics, nothing logged."""

    def __init__(self, net: torch.nn.Module, optimizer: dict) -> None:
        super().__init__()
        self.net, self.optimizer_spec = net, optimizer

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self.net(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        F.cross_entropy(self.net(batch[0]), batch[1])

    def configure_optimizers(self):
        return make_optimizer(self.optimizer_spec, self.parameters())


def bare_lightning_epochs(epochs: int, barebones: bool = False) -> list[float]:
    """barebones: Lightning's own minimum-overhead mode (no logging, checkpoints, summaries, bars)."""
    torch.manual_seed(0)
    data, net, optimizer = _same_setup()
    timer = EpochTimer()
    quiet = (
        {"barebones": True}
        if barebones
        else {
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
        }
    )
    trainer = L.Trainer(max_epochs=epochs, callbacks=[timer], num_sanity_val_steps=0, **quiet)
    trainer.fit(BareModule(net, optimizer), datamodule=data)
    return timer.epoch_seconds()[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=11)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE[0])
    args = parser.parse_args()
    BATCH_SIZE[0] = args.batch_size
    names = [PLAIN, BAREBONES, BARE, *SETUPS]
    samples: dict[str, list[float]] = {name: [] for name in names}
    paired: dict[str, list[float]] = {name: [] for name in names}  # per repeat: its median / plain's median
    for _ in range(args.repeats):
        this_repeat = {
            PLAIN: plain_epochs(args.epochs),
            BAREBONES: bare_lightning_epochs(args.epochs, barebones=True),
            BARE: bare_lightning_epochs(args.epochs),
        }
        this_repeat |= {name: lightsweep_epochs(args.epochs, extra) for name, extra in SETUPS.items()}
        plain_now = statistics.median(this_repeat[PLAIN])
        for name, epochs in this_repeat.items():
            samples[name] += epochs
            paired[name].append(statistics.median(epochs) / plain_now)
    plain, bare = statistics.median(samples[PLAIN]), statistics.median(samples[BARE])
    rows = [
        f"| {name} | {statistics.median(v) * 1000:.1f} | {statistics.median(v) / plain:.2f}x | "
        f"{statistics.median(paired[name]):.2f}x | {statistics.median(v) / bare:.2f}x |"
        for name, v in samples.items()
    ]
    body = "\n".join(
        [
            f"## Framework overhead per epoch (CNN on digits, batch size {args.batch_size}, train + validation)",
            "",
            f"`python benchmarks/overhead.py --repeats {args.repeats} --epochs {args.epochs} "
            f"--batch-size {args.batch_size}` on {machine()}.",
            f"Median epoch time over {args.repeats} alternating runs of {args.epochs} epochs each "
            "(first epoch of each run dropped); `paired`: the median over repeats of each repeat's ratio "
            "(less sensitive to the machine slowing down between repeats).",
            "",
            "| setup | ms / epoch | vs plain | vs plain, paired | vs Lightning alone |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    print(body)
    write_section(f"overhead-batch{args.batch_size}", body)


if __name__ == "__main__":
    main()
