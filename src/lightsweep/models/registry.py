"""model=auto: the family that fits a dataset's modality, and that family's own config."""

from __future__ import annotations

from typing import Any

from lightsweep.errors import ConfigError
from lightsweep.paths import CONF_DIR

FAMILY_BY_MODALITY = {"image": "cnn", "text": "lstm", "timeseries": "timehut"}


def auto_family(modality: str) -> str:
    """The family model=auto picks for a dataset of this modality."""
    family = FAMILY_BY_MODALITY.get(modality)
    if family is None or not (CONF_DIR / "model" / f"{family}.yaml").is_file():
        choices = "|".join(p.stem for p in sorted((CONF_DIR / "model").glob("*.yaml")))
        raise ConfigError(
            f"model=auto has no model family for {modality!r} data yet. Pick one explicitly: model=<{choices}>."
        )
    return family


def family_config(family: str) -> dict[str, Any]:
    """conf/model/<family>.yaml as plain containers."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / f"{family}.yaml"), resolve=True)


def dataset_modality(dataset_target: str) -> str:
    """The modality a dataset class declares (imports the class: torch and Lightning come with it)."""
    from hydra.utils import get_object

    return get_object(dataset_target).modality


def resolve_model_config(model_cfg: dict[str, Any], modality: str) -> tuple[str, dict[str, Any]]:
    """(family, model config). With family=auto: the family's config for the modality, with the settings the
    auto node carries (an experiment's `model:` keys, +model.<key>=...) merged in; the validator then refuses
    those the family does not take."""
    if model_cfg.get("family") != "auto":
        return model_cfg.get("family") or _family_of(model_cfg), model_cfg
    from omegaconf import OmegaConf

    family = auto_family(modality)
    settings = {key: value for key, value in model_cfg.items() if key != "family"}
    return family, OmegaConf.to_container(OmegaConf.merge(family_config(family), settings), resolve=True)


def _family_of(model_cfg: dict[str, Any]) -> str:
    """The module (or package) under lightsweep.models: cnn for lightsweep.models.cnn.CNNClassifier,
    timehut for lightsweep.models.timehut.module.TimeHUT; the class name for models of other packages."""
    parts = str(model_cfg.get("_target_", "?")).split(".")
    return parts[2] if parts[:2] == ["lightsweep", "models"] and len(parts) > 3 else parts[-1].lower()
