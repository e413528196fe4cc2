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
    """A callback that measures something: run() adds its record to run.json after fit and again after
    testing (a record that describes the tested weights is complete by then)."""

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


# -- optional: what the efficiency techniques (conf/technique/) ask of a model family ---------------------
# A family without one of these gets the technique reported as "not applicable" (never faked).


@runtime_checkable
class Checkpointable(Protocol):
    """Activation checkpointing (speed.checkpointing): the network's blocks (TimeHUT's residual blocks, the
    CNN's conv blocks) recompute their activations in backward through torch.utils.checkpoint; the maths
    is unchanged."""

    def set_checkpointing(self, enabled: bool) -> None: ...


@runtime_checkable
class PrunesChannels(Protocol):
    """Structured pruning that removes channels for real (callbacks.channel_pruning): the `amount` share of
    each prunable layer's output channels with the smallest L1 weight norm go, and every layer that reads
    them shrinks with it (the parameters are replaced by smaller ones; the caller rebuilds the optimizer).
    Returns {"layers": {name: [channels before, after]}, "channels_before": int, "channels_after": int}."""

    def prune_channels(self, amount: float) -> dict[str, Any]: ...


@runtime_checkable
class QuantizesForInference(Protocol):
    """INT8 inference (callbacks.int8_inference). `inference_network()`: the float network the family
    evaluates (classifiers: themselves; TimeHUT: its weight-averaged encoder, not the trained one that
    probe_network() gives). `quantized_network(calibration)`: an INT8 copy of it for CPU inference,
    calibrated on `calibration` (a few input batches); the trained module is left as it was.
    `evaluate_network(network, datamodule)`: the family's test metrics {"accuracy", "f1_macro"} computed
    with `network` in place of inference_network() (TimeHUT: the evaluation protocol's classifier fitted
    and tested on `network`'s embeddings)."""

    def inference_network(self) -> Any: ...
    def quantized_network(self, calibration: list[Any]) -> Any: ...
    def evaluate_network(self, network: Any, datamodule: Any) -> dict[str, float]: ...


@runtime_checkable
class Distillable(Protocol):
    """Knowledge distillation (callbacks.distillation): after `set_teacher(teacher, weight, temperature)`,
    each training step adds `weight` x the distance between this (student) module's outputs and the frozen
    `teacher`'s on the same inputs: KL divergence of the logits softened by `temperature` for classifiers,
    mean squared error of the embeddings for TimeHUT. The teacher is the same family, wider."""

    def set_teacher(self, teacher: Any, weight: float, temperature: float) -> None: ...
