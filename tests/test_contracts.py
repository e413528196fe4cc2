"""The run path's contracts (lightsweep.contracts) hold for every shipped model family and callback."""

from __future__ import annotations

import pytest
from hydra.utils import get_object
from omegaconf import OmegaConf

from lightsweep.contracts import (
    ChangesConfig,
    Checkpointable,
    Distillable,
    KnowsUnreachableWeights,
    ModelFamily,
    PrunesChannels,
    QuantizesForInference,
    RecordsToRunJson,
)
from lightsweep.paths import CONF_DIR

FAMILIES = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml") if p.stem != "auto")
MEASURING = {"health", "efficiency", "plots", "model_pruning", "batch_size_finder", "lr_finder"}
MEASURING |= {"channel_pruning", "int8_inference", "distillation"}  # the efficiency techniques' callbacks


@pytest.mark.parametrize("family", FAMILIES)
def test_every_model_family_meets_the_model_contract(family):
    cls = get_object(OmegaConf.load(CONF_DIR / "model" / f"{family}.yaml")["_target_"])
    assert issubclass(cls, ModelFamily)
    assert issubclass(cls, KnowsUnreachableWeights) == (family == "timehut")  # dilations outgrow short series
    # What the efficiency techniques need (conf/technique/ says "not applicable" where one is missing).
    assert issubclass(cls, Checkpointable) and issubclass(cls, QuantizesForInference) and issubclass(cls, Distillable)
    assert issubclass(cls, PrunesChannels) == (family != "lstm")  # the LSTM's cost is its recurrent cell


def test_callbacks_that_measure_record_into_run_json_and_finders_report_their_changes():
    records, changes = set(), set()
    for path in (CONF_DIR / "callbacks").glob("*.yaml"):
        for name, node in (OmegaConf.to_container(OmegaConf.load(path)) or {}).items():
            if isinstance(node, dict) and "_target_" in node:
                cls = get_object(node["_target_"])
                records |= {name} if issubclass(cls, RecordsToRunJson) else set()
                changes |= {name} if issubclass(cls, ChangesConfig) else set()
    assert records == MEASURING
    assert changes == {"batch_size_finder", "lr_finder"}
