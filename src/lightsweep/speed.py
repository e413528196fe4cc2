"""The `speed:` block of conf/train.yaml: training-speed settings applied to the built model and the process.

`apply_speed(model, speed_cfg, family, on_cuda)` compiles the network, switches activation checkpointing on,
sets torch's threads and float32 matmul precision, and returns what it applied (run.json "speed", completed
by the SpeedReport callback with the time of the first training steps: compilation happens in the first).
Threads and matmul precision are process-wide: `process_settings_restored()` puts them back after a run, so
runs sharing a process (tests, a sweep's in-process jobs) do not inherit them. The valid values are
checked beforehand by validate.py (speed_problems)."""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import lightning as L

from lightsweep.errors import ConfigError

TIMED_STEPS = 11  # the first training step (compilation included) and 10 more to compare it with


def settle_model_threads(config: dict[str, Any]) -> None:
    """speed.threads wins over a model's own thread setting (the LSTM's model.cpu_threads, which it sets in
    its setup and would otherwise undo speed.threads): the config as run shows the one value used."""
    threads = (config.get("speed") or {}).get("threads")
    if threads is not None and "cpu_threads" in config["model"]:
        config["model"]["cpu_threads"] = threads


def apply_speed(model: Any, speed_cfg: Mapping[str, Any] | None, family: str, on_cuda: bool) -> dict[str, Any]:
    """Apply the speed block to a freshly built model (validated values); what was applied, for run.json."""
    import torch

    speed = dict(speed_cfg or {})
    record: dict[str, Any] = {}
    if speed.get("threads") is not None:
        # set_num_interop_threads is process-wide and refused once any parallel work ran: not touched.
        torch.set_num_threads(int(speed["threads"]))
    precision = speed.get("matmul_precision", "highest")
    torch.set_float32_matmul_precision(precision)
    record["matmul_precision"] = precision
    record["matmul_effect"] = _matmul_effect(on_cuda)
    record["checkpointing"] = bool(speed.get("checkpointing"))
    if record["checkpointing"]:
        _switch_checkpointing_on(model, family)
    record["compile"] = False
    if speed.get("compile"):
        record["compile"] = _compile(model, speed.get("compile_mode", "default"), on_cuda)
    return record


def _switch_checkpointing_on(model: Any, family: str) -> None:
    from lightsweep.contracts import Checkpointable

    if not isinstance(model, Checkpointable):
        raise ConfigError(
            f"model={family} has no activation checkpointing ({type(model).__name__} does not implement "
            "set_checkpointing): set speed.checkpointing=false."
        )
    model.set_checkpointing(True)


def _compile(model: Any, mode: str, on_cuda: bool) -> dict[str, Any]:
    """torch.compile of the network in place (nn.Module.compile): TimeHUT's trained encoder (the averaged
    copy only encodes the data once at test time, not worth its compilation), a classifier's forward (its
    training_step and hooks stay eager). Compilation happens lazily, in the first training step."""
    from lightsweep.callbacks import probe

    if not on_cuda:
        _require_cpp_compiler()
    network = probe.weights_network(model)
    network.compile(mode=mode)
    return {"mode": mode, "network": type(network).__name__}


def missing_cpp_compiler() -> str | None:
    """The C++ compiler inductor builds CPU kernels with (its configured one, g++ by default) when it is not
    on PATH; None when it is."""
    from torch._inductor import config

    compiler = config.cpp.cxx[-1] if isinstance(config.cpp.cxx, tuple) else config.cpp.cxx
    return None if shutil.which(str(compiler)) else str(compiler)


def _require_cpp_compiler() -> None:
    if (compiler := missing_cpp_compiler()) is not None:
        raise ConfigError(
            f"speed.compile=true on CPU needs a C++ compiler ({compiler}) and none is on PATH: install one "
            "(e.g. apt-get install g++) or set speed.compile=false."
        )


def _matmul_effect(on_cuda: bool) -> str:
    """What the float32 matmul precision does here, as torch reports it."""
    import torch

    if on_cuda:
        tf32 = torch.backends.cuda.matmul.allow_tf32
        return f"CUDA float32 matmuls {'may use TF32 (Ampere or newer)' if tf32 else 'in full float32'}"
    onednn = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    if onednn is None or not torch.backends.mkldnn.is_available():
        return "none on this CPU build (no oneDNN)"
    return f"CPU: only float32 matmuls that oneDNN runs, as {onednn.fp32_precision}"


@contextmanager
def process_settings_restored() -> Iterator[None]:
    """Threads and float32 matmul precision as they were before the run, whatever happens in it."""
    import torch

    threads, precision = torch.get_num_threads(), torch.get_float32_matmul_precision()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.set_float32_matmul_precision(precision)


class SpeedReport(L.Callback):
    """run.json "speed": the applied settings, the torch threads training ran with (read when it starts: a
    model may set its own in setup), the first training step's wall time (compilation happens in it when
    speed.compile is on) and the median of the next steps', synchronised on CUDA."""

    def __init__(self, applied: dict[str, Any]) -> None:
        self.applied = applied
        self.step_seconds: list[float] = []
        self._started = 0.0
        self.threads: int | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import torch

        self.threads = torch.get_num_threads()

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int):
        if len(self.step_seconds) < TIMED_STEPS:
            self._started = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int):
        if len(self.step_seconds) < TIMED_STEPS:
            if pl_module.device.type == "cuda":
                import torch

                torch.cuda.synchronize()
            self.step_seconds.append(time.perf_counter() - self._started)

    def run_record(self) -> dict[str, Any]:
        first, later = self.step_seconds[:1], self.step_seconds[1:]
        return {
            "speed": {
                **self.applied,
                "threads": self.threads,
                "first_step_s": first[0] if first else None,
                "next_steps_median_s": statistics.median(later) if later else None,
            }
        }
