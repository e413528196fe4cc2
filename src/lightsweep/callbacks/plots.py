"""PlotWriter: the run's diagnostic plots, drawn once testing ends, into <run dir>/plots/.

It draws what the HealthMonitor recorded (curves, overfitting onset, gradients, dead units, component
scores), the tested weights, and a confusion matrix of the test set from the predictions the model made
while being tested (a forward hook: no extra pass). Models that do not predict classes themselves
(TimeHUT: its SVM predicts inside the module) get no confusion matrix; run.json says so."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from lightsweep.callbacks import probe
from lightsweep.callbacks.health import HealthMonitor
from lightsweep.errors import ConfigError


class PlotWriter(L.Callback):
    def __init__(self, dirpath: str, dpi: int = 80) -> None:
        self.dirpath, self.dpi = Path(dirpath), dpi
        self.report: dict[str, Any] = {}
        self._health: HealthMonitor | None = None
        self._predictions: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []
        self._hook: Any = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._health = next((c for c in trainer.callbacks if isinstance(c, HealthMonitor)), None)
        if self._health is None:
            raise ConfigError(
                "callbacks.plots draws what the health callback records: add it, "
                "e.g. callbacks=[model_checkpoint,health,plots] (callbacks=default has both)."
            )

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._predictions, self._targets = [], []
        if probe.network(pl_module) is pl_module:  # the module's own forward gives class logits
            self._hook = pl_module.register_forward_hook(
                lambda _m, _i, out: self._predictions.append(out.detach().argmax(-1).cpu())
            )

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        if self._hook is not None:
            self._targets.append(batch[1].detach().cpu())

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        started = time.perf_counter()
        from lightsweep.report import plots  # matplotlib: imported only when plots are drawn

        health, files, skipped = self._health.report, [], {}
        if health:
            onset = (health.get("overfitting") or {}).get("onset_epoch")
            files.append(plots.learning_curves(health["curves"], onset, self.dirpath / "learning_curves.png", self.dpi))
            if health["overall"] is not None:
                files.append(
                    plots.health_radar(
                        health["components"], health["overall"], self.dirpath / "health_radar.png", self.dpi
                    )
                )
            else:
                skipped["health_radar"] = "no weighted health component was measured"
            if health["gradient_mean_abs"]:
                files.append(
                    plots.gradient_flow(
                        health["gradient_mean_abs"],
                        health["gradient_layers"],
                        self.dirpath / "gradient_flow.png",
                        self.dpi,
                    )
                )
            if health["dead_units_by_layer"]:
                files.append(plots.dead_units(health["dead_units_by_layer"], self.dirpath / "dead_units.png", self.dpi))
            else:
                skipped["dead_units"] = "no activation sites were probed"
        net = probe.weights_network(pl_module)
        tensors = {name: p.detach().float().cpu().numpy() for name, p in net.named_parameters()}
        files.append(plots.weight_distributions(tensors, self.dirpath / "weights.png", self.dpi))
        matrix = self._confusion(pl_module)
        if matrix is not None:
            files.append(plots.confusion_matrix(matrix, self.dirpath / "confusion_matrix.png", self.dpi))
        else:
            skipped["confusion_matrix"] = f"{type(pl_module).__name__} does not predict classes in its forward()"
        self.report.update(
            dir=str(self.dirpath), files=[p.name for p in files], skipped=skipped, seconds=time.perf_counter() - started
        )

    def run_record(self) -> dict[str, Any]:
        """What run() adds to run.json (collected after fit and again after testing: on_test_end fills
        this dict)."""
        return {"plots": self.report}

    def _confusion(self, pl_module: L.LightningModule) -> np.ndarray | None:
        if not self._predictions or len(self._predictions) != len(self._targets):
            return None
        predicted, true = torch.cat(self._predictions).numpy(), torch.cat(self._targets).numpy()
        classes = int(getattr(pl_module.trainer.datamodule, "num_classes", 0) or max(predicted.max(), true.max()) + 1)
        matrix = np.zeros((classes, classes), dtype=np.int64)
        np.add.at(matrix, (true, predicted), 1)
        return matrix
