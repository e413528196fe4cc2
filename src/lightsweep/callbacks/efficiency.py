"""EfficiencyProfiler: what training cost, measured in-process -> run.json "efficiency".

Per epoch wall time and samples/s; peak CPU RSS of this process and peak CUDA memory; FLOPs of one
real training step (forward + backward of the first batch) counted once by torch's FlopCounterMode;
parameter count and model size."""

from __future__ import annotations

import resource
import time
from typing import Any

import lightning as L
import torch
from torch.utils.flop_counter import FlopCounterMode


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

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start, self._samples = time.perf_counter(), 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
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
        parameters = list(pl_module.parameters())
        self.report = {
            "epoch_seconds": self.epoch_seconds,
            "samples_per_second": self.samples_per_second,
            "peak_cpu_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # KiB on Linux
            "peak_cuda_memory_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
            "flops_per_step": self.flops_per_step,
            "parameters": sum(p.numel() for p in parameters),
            "trainable_parameters": sum(p.numel() for p in parameters if p.requires_grad),
            "model_size_mb": sum(t.numel() * t.element_size() for t in (*parameters, *pl_module.buffers())) / 2**20,
        }

    def run_record(self) -> dict[str, Any]:
        """What run() adds to run.json."""
        return {"efficiency": self.report}
