"""Lightning's batch-size and learning-rate finders, run once before fitting, their findings in run.json.

SafeBatchSizeFinder: Lightning's finder doubles the batch size until a step runs out of memory, then
backs off (halving, or a binary search). It can still end on a size that never ran (when every size it
tried ran out of memory); this wrapper counts the optimizer steps each size completed and hands training
only a size no larger than one that ran (else the largest that ran), or a clear error when none ran.
Sizes are searched on the training set only: validation and testing reuse the size found (TimeHUT tests
with two loaders, which Lightning's finder refuses).

LearningRateSearch: Lightning's LR range test; the suggested rate is written into the model's optimizer
settings (`optimizer_spec["lr"]` of classifiers, `lr` of TimeHUT) and into the live optimizers."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import BatchSizeFinder, LearningRateFinder
from lightning.pytorch.tuner.batch_size_scaling import _reset_dataloaders
from lightning.pytorch.utilities.parsing import lightning_getattr, lightning_setattr

from lightsweep.errors import ConfigError

log = logging.getLogger(__name__)


class SafeBatchSizeFinder(BatchSizeFinder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:  # Lightning's BatchSizeFinder arguments
        super().__init__(*args, **kwargs)
        self.report: dict[str, Any] = {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        initial = lightning_getattr(pl_module, self._batch_arg_name)
        steps: Counter[int] = Counter()
        running = {"size": 0}
        training_step, optimizer_step = pl_module.training_step, pl_module.optimizer_step

        # Lightning's first trial would still read the loader built at the configured size: rebuild it at
        # init_val first. Steps are counted by real batch length, not by the attribute.
        lightning_setattr(pl_module, self._batch_arg_name, self._init_val)
        _reset_dataloaders(trainer)

        def measured_training_step(batch: Any, *args: Any, **kwargs: Any) -> Any:
            running["size"] = len(batch[0])
            return training_step(batch, *args, **kwargs)

        def counted_optimizer_step(*args: Any, **kwargs: Any) -> Any:
            result = optimizer_step(*args, **kwargs)  # returns once forward, backward and update all fit
            steps[running["size"]] += 1
            return result

        pl_module.training_step, pl_module.optimizer_step = measured_training_step, counted_optimizer_step
        try:
            self.scale_batch_size(trainer, pl_module)
        finally:
            del pl_module.training_step, pl_module.optimizer_step  # back to the class's methods
        found = self.optimal_batch_size
        if not steps:
            raise ConfigError(
                f"batch_size_finder: no batch size fits in memory (the search ended at {found} without one "
                "successful step). Use a smaller model, precision=16 or bf16, or a smaller "
                "callbacks.batch_size_finder.init_val."
            )
        if found > max(steps):  # never ran (sizes at most one that ran are safe, e.g. binsearch's margin)
            found = max(steps)
            lightning_setattr(pl_module, self._batch_arg_name, found)
            _reset_dataloaders(trainer)
        self.optimal_batch_size = found
        self.report = {"initial": initial, "batch_size": found, "mode": self._mode, "sizes_that_ran": sorted(steps)}
        log.info(f"batch_size_finder: training with batch size {found} (configured {initial})")

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pass

    def run_record(self) -> dict[str, Any]:
        """What run() adds to run.json."""
        return {"batch_size_finder": self.report}

    def config_changes(self) -> dict[str, Any]:
        """Settings this callback replaced ({dotted key: value used}): run.json's config shows what ran."""
        return {"dataset.batch_size": self.report["batch_size"]} if self.report else {}


class LearningRateSearch(LearningRateFinder):
    def __init__(
        self,
        min_lr: float = 1e-8,
        max_lr: float = 1.0,
        num_training_steps: int = 100,
        mode: str = "exponential",
        early_stop_threshold: float | None = 4.0,
    ) -> None:
        super().__init__(min_lr, max_lr, num_training_steps, mode, early_stop_threshold, update_attr=False)
        self.report: dict[str, Any] = {}
        self.changed: dict[str, Any] = {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.lr_find(trainer, pl_module)
        lr = self.optimal_lr.suggestion() if self.optimal_lr else None
        self.report = {
            "suggested_lr": lr,
            "applied": lr is not None,
            "steps_tried": len(self.optimal_lr.results.get("lr", [])) if self.optimal_lr else 0,
        }
        if lr is None:  # too few points for a suggestion: keep the configured rate
            log.info("lr_finder: no suggestion (too few points); training with the configured learning rate")
            return
        spec = getattr(pl_module, "optimizer_spec", None)
        if isinstance(spec, dict):
            key, configured, spec["lr"] = "model.optimizer.lr", spec.get("lr"), lr
        else:
            key, configured = "model.lr", getattr(pl_module, "lr", None)
            pl_module.lr = lr
        self.report["configured_lr"] = configured
        self.changed = {key: lr}
        log.info(f"lr_finder: training with learning rate {lr:.3g} (configured {configured})")
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = lr

    def run_record(self) -> dict[str, Any]:
        """What run() adds to run.json."""
        return {"lr_finder": self.report}

    def config_changes(self) -> dict[str, Any]:
        """Settings this callback replaced ({dotted key: value used}): run.json's config shows what ran."""
        return dict(self.changed)
