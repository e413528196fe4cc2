"""model=auto: the family that fits a dataset's modality, and that family's own config."""

from __future__ import annotations

from typing import Any

from lightsweep.errors import ConfigError
from lightsweep.paths import CONF_DIR

FAMILY_BY_MODALITY = {"image": "cnn", "text": "lstm", "timeseries": "timehut"}


def resolve_model_config(model_cfg: dict[str, Any], modality: str) -> tuple[str, dict[str, Any]]:
    """(family, model config). With family=auto, load conf/model/<family>.yaml for the modality."""
    if model_cfg.get("family") != "auto":
        return model_cfg.get("family") or _family_of(model_cfg), model_cfg
    family = FAMILY_BY_MODALITY.get(modality)
    source = CONF_DIR / "model" / f"{family}.yaml"
    if family is None or not source.is_file():
        raise ConfigError(
            f"model=auto has no model family for {modality!r} data yet. "
            f"Pick one explicitly: model=<{'|'.join(p.stem for p in sorted(source.parent.glob('*.yaml')))}>."
        )
    from omegaconf import OmegaConf

    chosen = OmegaConf.to_container(OmegaConf.load(source), resolve=True)
    return family, chosen


def _family_of(model_cfg: dict[str, Any]) -> str:
    """The module (or package) under lightsweep.models: cnn for lightsweep.models.cnn.CNNClassifier,
    timehut for lightsweep.models.timehut.module.TimeHUT; the class name for models of other packages."""
    parts = str(model_cfg.get("_target_", "?")).split(".")
    return parts[2] if parts[:2] == ["lightsweep", "models"] and len(parts) > 3 else parts[-1].lower()
