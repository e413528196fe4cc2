"""The contracts between the run path and the pieces a config plugs into it, as Protocols.

A new dataset, model family or callback meets one of these and needs nothing else from the run path
(README: "Extending lightsweep"). They are structural: nothing inherits from them; `isinstance` works on
the runtime-checkable ones. Imports nothing heavy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable


class DataModule(Protocol):
    """A LightningDataModule built from conf/dataset/<name>.yaml; the model is sized from it. (Written down for
    authors of new datasets: the run path reads these attributes directly, nothing checks the Protocol.)"""

    modality: str  # image | text | timeseries: what model=auto picks a family by
    input_shape: Sequence[int]  # of one sample, known after setup("fit")
    num_classes: int

    def prepare_data(self) -> None: ...
    def setup(self, stage: str) -> None: ...


@runtime_checkable
class ModelFamily(Protocol):
    """A LightningModule built from conf/model/<family>.yaml as `Model(input_shape=..., num_classes=...,
    **settings)`. Its training budget applies when the config sets neither trainer.max_epochs nor
    trainer.max_steps. Callbacks probe `probe_network()` (the module that maps a batch of inputs to
    outputs: the classifier itself, TimeHUT's encoder), or the whole module when it returns None."""

    def default_budget(self, datamodule: Any) -> dict[str, int]: ...
    def probe_network(self) -> Any: ...


@runtime_checkable
class RecordsToRunJson(Protocol):
    """A callback that measures something: run() adds its record to run.json after fit."""

    def run_record(self) -> dict[str, Any]: ...


@runtime_checkable
class ChangesConfig(Protocol):
    """A callback that replaces settings during fit (a learning-rate or batch-size finder): run.json's
    config shows the values that ran, as {dotted key: value}."""

    def config_changes(self) -> dict[str, Any]: ...


@runtime_checkable
class KnowsUnreachableWeights(Protocol):
    """Optional for a model family whose receptive field can outgrow short inputs (TimeHUT's dilated
    convolutions): the health monitor leaves weights that inputs of this shape cannot reach out of the
    gradient status, reports them as structurally unused and recommends `overrides_for(input_shape)`.
    `input_shape` is (..., T, D): one sample's or a batch's."""

    def unreachable_weights(self, input_shape: Sequence[int]) -> dict[str, Any]: ...
    def overrides_for(self, input_shape: Sequence[int]) -> list[str]: ...
