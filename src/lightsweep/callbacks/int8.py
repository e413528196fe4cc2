"""Int8Inference: the tested network against its INT8 copy for CPU inference, latency and accuracy.

When testing ends (the tested weights are in the module), the model family's quantized_network()
(contracts.QuantizesForInference) makes an INT8 copy calibrated on the inputs of the first
`calibration_batches` training batches; the float network (inference_network(), a CPU copy when training ran
on a GPU) and the INT8 one are each timed on the first batch of the test split (no-grad, eval mode, one
warm-up, median of `repeats`, the run's torch threads) and evaluated by the family's evaluate_network().
run.json "int8": {backend, threads, batch_size, float: {...}, int8: {...}} with latency_ms_per_sample,
accuracy, f1_macro and size_mb (the serialized state dict) for each."""

from __future__ import annotations

import copy
import io
import statistics
import time
from typing import Any

import lightning as L
import torch
from torch import nn

from lightsweep.callbacks import probe
from lightsweep.contracts import QuantizesForInference
from lightsweep.errors import ConfigError


class Int8Inference(L.Callback):
    def __init__(self, calibration_batches: int = 4, repeats: int = 5) -> None:
        if calibration_batches < 1 or repeats < 1:
            raise ConfigError(
                f"callbacks.int8_inference.calibration_batches={calibration_batches} and repeats={repeats} "
                "must be at least 1."
            )
        self.calibration_batches, self.repeats = calibration_batches, repeats
        self.calibration: list[torch.Tensor] = []
        self.report: dict[str, Any] = {}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not isinstance(pl_module, QuantizesForInference):
            raise ConfigError(
                f"callbacks.int8_inference: {type(pl_module).__name__} has no INT8 inference (no quantized_network): "
                "drop int8_inference from callbacks for this model."
            )

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int):
        if len(self.calibration) < self.calibration_batches:
            self.calibration.append(batch[0].detach().cpu().clone())

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.calibration:  # testing without a fit in this process: nothing to calibrate on
            return
        float_net = pl_module.inference_network()  # what is evaluated (TimeHUT: the averaged encoder)
        if pl_module.device.type != "cpu":
            float_net = copy.deepcopy(float_net).cpu()
        int8_net = pl_module.quantized_network(self.calibration)
        inputs = _first_test_inputs(trainer.datamodule).cpu()
        self.report = {
            "backend": torch.backends.quantized.engine,
            "threads": torch.get_num_threads(),
            "batch_size": len(inputs),
        }
        for name, net in (("float", float_net), ("int8", int8_net)):
            self.report[name] = {
                "latency_ms_per_sample": self._latency_ms(net, inputs) / len(inputs),
                **pl_module.evaluate_network(net, trainer.datamodule),
                "size_mb": _serialized_mb(net),
            }

    def run_record(self) -> dict[str, Any]:
        """What run() adds to run.json (after testing)."""
        return {"int8": self.report} if self.report else {}

    def _latency_ms(self, net: nn.Module, inputs: torch.Tensor) -> float:
        probe.run(net, inputs)  # warm-up: first-call allocations, weight packing, kernel selection
        seconds = []
        for _ in range(self.repeats):
            started = time.perf_counter()
            probe.run(net, inputs)
            seconds.append(time.perf_counter() - started)
        return 1000 * statistics.median(seconds)


def _first_test_inputs(datamodule: L.LightningDataModule) -> torch.Tensor:
    """The first batch of the test split (TimeHUT's test loaders are [training set, test set])."""
    loaders = datamodule.test_dataloader()
    loader = loaders[-1] if isinstance(loaders, (list, tuple)) else loaders
    return next(iter(loader))[0]


def _serialized_mb(net: nn.Module) -> float:
    """Bytes of the saved state dict: INT8 modules keep packed weights that parameters() does not list."""
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    return buffer.tell() / 2**20
