"""What run() reads of the callbacks after fit and test (their run.json records, config changes, the epoch
times and the epochs trained), as rank 0 has them, also when fit and test ran in other processes.

With a spawning strategy (strategy=ddp_spawn, or DDP with start_method fork/forkserver) Lightning pickles the
trainer with its callbacks into each worker and hands back to the main process only rank 0's weights, trainer
state and callback_metrics (strategies/launchers/multiprocessing.py): whatever callbacks measured in the
workers is lost, and run.json had no health or efficiency record. So rank 0 of such a worker writes these
values to a JSON file at teardown (after every callback's on_fit_end/on_test_end), and the main process reads
them back. A file rather than a custom launcher: only public hooks, and any start method works. JSON because
every value ends up in run.json anyway (and a JSON file from a temp dir is safe to read, a pickle is not).

Each spawn starts the workers from copies of the main process's callbacks, which never ran a hook: test's
workers send back fit's records as they were before fit (empty). A value rank 0 sends that equals the main
process's own was not measured there and keeps the last value carried back (fit's health through test)."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

import lightning as L

from lightsweep.callbacks.timing import EpochTimer
from lightsweep.contracts import ChangesConfig, RecordsToRunJson
from lightsweep.runinfo import write_atomically


class RankZeroState(L.Callback):
    def __init__(self) -> None:
        self._main_pid = os.getpid()  # the process that built the trainer (and reads the state back)
        self._path = Path(tempfile.gettempdir()) / f"lightsweep-rank0-{self._main_pid}-{secrets.token_hex(8)}.json"
        self._carried: dict[str, dict[str, Any]] = {}

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if os.getpid() != self._main_pid and trainer.is_global_zero:
            text = json.dumps(_state(trainer)).encode("utf-8")
            write_atomically(self._path, lambda handle: handle.write(text))

    def collect(self, trainer: L.Trainer) -> dict[str, dict[str, Any]]:
        """{"records": run.json records, "config_changes": {dotted key: value}, "fit": {"epoch_s",
        "epochs_trained"}}: this process's callbacks, overlaid with what rank 0 of spawned workers measured."""
        own = _state(trainer)
        if self._path.is_file():
            theirs = json.loads(self._path.read_text())
            self._path.unlink()
            same_form = json.loads(json.dumps(own))  # compared as JSON gives them back (tuples as lists...)
            for section, values in theirs.items():
                measured = {k: v for k, v in values.items() if v != same_form[section].get(k)}
                self._carried.setdefault(section, {}).update(measured)
        return {section: {**values, **self._carried.get(section, {})} for section, values in own.items()}


def _state(trainer: L.Trainer) -> dict[str, dict[str, Any]]:
    records: dict[str, Any] = {}
    changes: dict[str, Any] = {}
    epoch_s: list[float] = []
    for callback in trainer.callbacks:
        if isinstance(callback, RecordsToRunJson):
            records.update(callback.run_record())
        if isinstance(callback, ChangesConfig):
            changes.update(callback.config_changes())
        if isinstance(callback, EpochTimer):
            epoch_s = callback.epoch_seconds()
    return {
        "records": records,
        "config_changes": changes,
        "fit": {"epoch_s": epoch_s, "epochs_trained": trainer.current_epoch},
    }
