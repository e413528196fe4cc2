"""EfficiencyProfiler: what training cost, measured in-process -> run.json "efficiency".

Per epoch wall time and samples/s; peak CPU RSS of this process during fit and peak CUDA memory. The CPU
peak is reset when training starts where the OS allows it (Linux), so runs sharing a process in a sweep
are measured separately; elsewhere it is the process's lifetime peak, and peak_cpu_rss_source says which;
FLOPs of one real training step (forward + backward of the first batch) counted once by torch's
FlopCounterMode; inference speed (no-grad forward of the first batch's first probe.KEPT_INPUTS samples,
median of 5); parameter count and model size of the network that is trained and evaluated
(probe.weights_network: TimeHUT's encoder, without the weight-averaged copy that duplicates it)."""

from __future__ import annotations

import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.flop_counter import FlopCounterMode

from lightsweep.callbacks import probe

INFERENCE_REPEATS = 5
FIT_PEAK, LIFETIME_PEAK = "fit (reset)", "process lifetime"  # what peak_cpu_rss_mb covers
RESET_SLACK_KB = 4096  # right after a reset the peak equals the current RSS, give or take a few pages


class EfficiencyProfiler(L.Callback):
    def __init__(self, count_flops: bool = True) -> None:
        self.count_flops = count_flops
        self.epoch_seconds: list[float] = []
        self.samples_per_second: list[float] = []
        self.flops_per_step: int | None = None
        self.report: dict[str, Any] = {}
        self._counter: FlopCounterMode | None = None
        self._epoch_start = 0.0
        self._samples = 0
        self._inputs: torch.Tensor | None = None
        self._rss_source = LIFETIME_PEAK

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._rss_source = _reset_peak_rss()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start, self._samples = time.perf_counter(), 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self._inputs is None:
            self._inputs = probe.inputs_of(batch)
        if self.count_flops and self.flops_per_step is None and self._counter is None:
            self._counter = FlopCounterMode(display=False)
            self._counter.__enter__()  # spans this step's forward and backward, closed at batch end

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._samples += len(batch[0])
        if self._counter is not None:
            self._counter.__exit__(None, None, None)
            self.flops_per_step, self._counter = self._counter.get_total_flops(), None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = time.perf_counter() - self._epoch_start
        self.epoch_seconds.append(seconds)
        self.samples_per_second.append(self._samples / seconds if seconds > 0 else 0.0)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        net = probe.weights_network(pl_module)  # TimeHUT: its encoder, not the weight-averaged duplicate
        parameters = list(net.parameters())
        self.report = {
            "epoch_seconds": self.epoch_seconds,
            "samples_per_second": self.samples_per_second,
            "peak_cpu_rss_mb": _peak_rss_mb(),
            "peak_cpu_rss_source": self._rss_source,
            "peak_cuda_memory_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
            "flops_per_step": self.flops_per_step,
            "optimizer_steps": trainer.global_step,  # x flops_per_step: the training's FLOPs in total
            "inference_samples_per_second": self._inference_speed(pl_module),
            "parameters": sum(p.numel() for p in parameters),
            "trainable_parameters": sum(p.numel() for p in parameters if p.requires_grad),
            "model_size_mb": sum(t.numel() * t.element_size() for t in (*parameters, *net.buffers())) / 2**20,
        }

    def run_record(self) -> dict[str, Any]:
        """What run() adds to run.json."""
        return {"efficiency": self.report}

    def _inference_speed(self, pl_module: L.LightningModule) -> float | None:
        """Samples/s of a no-grad eval-mode forward pass of the kept inputs (median of 5)."""
        net = probe.network(pl_module)
        if net is None or self._inputs is None:
            return None
        inputs = self._inputs.to(pl_module.device)
        probe.run(net, inputs)  # warm-up: first-call allocations and kernel selection
        seconds = []
        for _ in range(INFERENCE_REPEATS):
            started = time.perf_counter()
            probe.run(net, inputs)
            if inputs.is_cuda:
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - started)
        return len(inputs) / statistics.median(seconds)


_CLEAR_REFS, _STATUS = Path("/proc/self/clear_refs"), Path("/proc/self/status")


def _reset_peak_rss() -> str:
    """Linux (>= 4.0): writing 5 to clear_refs resets the process's peak RSS (VmHWM) to its current RSS.
    What the peak read at fit end covers: FIT_PEAK only when the reset is seen to take (a sandbox may
    refuse the write, or accept it and keep the peak), else LIFETIME_PEAK."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return LIFETIME_PEAK
    status = _status_kb()
    reset = status is not None and status["VmHWM"] <= status["VmRSS"] + RESET_SLACK_KB
    return FIT_PEAK if reset else LIFETIME_PEAK


def _peak_rss_mb() -> float:
    status = _status_kb()
    if status is not None:
        return status["VmHWM"] / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # the lifetime peak: bytes on macOS, KiB elsewhere
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _status_kb() -> dict[str, int] | None:
    """VmHWM (peak RSS) and VmRSS of this process in kB from Linux's /proc/self/status; None elsewhere."""
    try:
        lines = _STATUS.read_text().splitlines()
    except OSError:
        return None
    values = {
        key: int(rest.split()[0])
        for key, _, rest in (line.partition(":") for line in lines)
        if key in ("VmHWM", "VmRSS")
    }
    return values if len(values) == 2 else None
