"""Distillation: train this (student) model to also match a trained teacher of the same family.

When fit is set up, the teacher is loaded from its Lightning checkpoint with the student's own class
(`load_from_checkpoint`: every family saves its hyperparameters), checked to map the same inputs to the
same classes, and handed to the student's set_teacher(teacher, weight, temperature)
(contracts.Distillable), which adds the distillation term to each training step and keeps the teacher
frozen. run.json "distillation": {teacher, teacher_params, student_params, weight, temperature}, the
parameters those of each one's trained network (probe.weights_network)."""

from __future__ import annotations

import os
from typing import Any

import lightning as L

from lightsweep.callbacks import probe
from lightsweep.contracts import Distillable
from lightsweep.errors import ConfigError, first_line


class Distillation(L.Callback):
    def __init__(self, teacher: str, weight: float = 0.5, temperature: float = 2.0) -> None:
        self.teacher_path, self.weight, self.temperature = str(teacher), weight, temperature
        self.report: dict[str, Any] = {}
        self._teacher: L.LightningModule | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if not isinstance(pl_module, Distillable):
            raise ConfigError(
                f"callbacks.distillation: {type(pl_module).__name__} cannot learn from a teacher (no set_teacher): "
                "drop distillation from callbacks for this model."
            )
        self._teacher = self._load(type(pl_module))
        for setting in ("input_shape", "num_classes"):
            ours, theirs = pl_module.hparams.get(setting), self._teacher.hparams.get(setting)
            if ours is not None and theirs is not None and list(_flat(ours)) != list(_flat(theirs)):
                raise ConfigError(
                    f"callbacks.distillation.teacher={self.teacher_path} was trained with {setting}={theirs}, this "
                    f"run's model has {ours}: use a teacher trained on the same dataset."
                )
        pl_module.set_teacher(self._teacher, self.weight, self.temperature)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Counted here: a family may build its network in its own setup (the LSTM, sized to the vocabulary)."""
        self.report = {
            "teacher": self.teacher_path,
            "teacher_params": probe.parameter_count(probe.weights_network(self._teacher)),
            "student_params": probe.parameter_count(probe.weights_network(pl_module)),
            "weight": self.weight,
            "temperature": self.temperature,
        }

    def run_record(self) -> dict[str, Any]:
        """What run() adds to run.json."""
        return {"distillation": self.report}

    def _load(self, family: type[L.LightningModule]) -> L.LightningModule:
        """The teacher on the CPU (the student's set_teacher moves it with the student)."""
        where = f"callbacks.distillation.teacher={self.teacher_path}"
        if not os.path.isfile(self.teacher_path):
            raise ConfigError(f"{where} is not a file: give the path of a checkpoint (<run dir>/checkpoints/*.ckpt).")
        try:
            return family.load_from_checkpoint(self.teacher_path, map_location="cpu")
        except Exception as exc:  # not a checkpoint, or one of another family (its settings do not fit)
            raise ConfigError(
                f"{where} cannot be loaded as a {family.__name__} checkpoint ({type(exc).__name__}: "
                f"{first_line(exc)}): the teacher must be a checkpoint of the same model family."
            ) from exc


def _flat(value: Any) -> Any:
    return value if isinstance(value, (list, tuple)) else [value]
