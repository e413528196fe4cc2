"""Composing the config tree (conf/, at lightsweep.paths.CONF_DIR): the resolvers it uses, the overrides the CLI
rewrites before Hydra reads them, and compose() for tests and tools."""

from __future__ import annotations

import os
import re
from pathlib import Path

from omegaconf import OmegaConf

from lightsweep.objective import direction
from lightsweep.paths import CONF_DIR
from lightsweep.sweep.pruner_budget import startup_trials, warmup_epochs

# Groups whose choices are numbers (precision=16): Hydra's grammar reads 16 as an int and refuses it
# as a group choice, so such overrides are quoted before Hydra parses them.
_NUMERIC_CHOICE = re.compile(r"^([\w]+)=(\d+(?:,\d+)*)$")


# Groups that are not in conf/train.yaml's defaults list: Hydra wants them added (+sweep=simple). `--help`
# lists them beside the others, so the plain spelling is accepted too.
ADDED_GROUPS = ("sweep",)


def normalize_overrides(overrides: list[str]) -> list[str]:
    """Quote numeric group choices (precision=16 -> precision='16') and add the + that an added group
    needs (sweep=simple -> +sweep=simple); leave everything else alone."""
    out = []
    for item in overrides:
        if item.partition("=")[0] in ADDED_GROUPS:
            item = "+" + item
        match = _NUMERIC_CHOICE.match(item)
        if match and (CONF_DIR / match.group(1)).is_dir():
            quoted = ",".join(f"'{v}'" for v in match.group(2).split(","))
            item = f"{match.group(1)}={quoted}"
        out.append(item)
    return out


def _wandb_offline() -> bool:
    """W&B logs offline unless an API key is configured."""
    return not os.environ.get("WANDB_API_KEY")


def register_resolvers() -> None:
    """Resolvers used by conf/ (idempotent)."""
    if not OmegaConf.has_resolver("lightsweep.wandb_offline"):
        OmegaConf.register_resolver("lightsweep.wandb_offline", _wandb_offline)
    if not OmegaConf.has_resolver("objective_direction"):  # objective.direction from objective.name
        OmegaConf.register_resolver("objective_direction", direction)
    if not OmegaConf.has_resolver("lightsweep.pruner_startup"):  # the default pruner's settings, from the budget
        OmegaConf.register_resolver("lightsweep.pruner_startup", startup_trials)
        OmegaConf.register_resolver("lightsweep.pruner_warmup", warmup_epochs)


_MODEL_SETTING = re.compile(r"^\+?model\.")  # model.<key>=... or +model.<key>=... (not ++, which always works)


def auto_family_overrides(overrides: list[str], force: bool = False) -> tuple[list[str], str | None]:
    """model=auto has no settings of its own until run() picks the family from the dataset, so Hydra refuses
    model.<key>=... (not in struct), and a sweep could not take such a key out of its search. When the
    overrides set model keys (or `force`: `--cfg job` shows the model to be built), pick the family now, as
    run() would: model=auto becomes model=<family>, and +model.<key> loses its + for a key the family has.
    Returns (overrides, the family picked or None when model=auto is not in effect)."""
    if not force and not any(_MODEL_SETTING.match(item) for item in overrides):
        return overrides, None
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from lightsweep.models.registry import auto_family, dataset_modality, family_config

    parsed = dict(zip(overrides, OverridesParser.create().parse_overrides(overrides), strict=True))
    by_key = {o.key_or_group: o for o in parsed.values()}
    explicit_family = "model" in by_key and by_key["model"].value() != "auto"
    family_per_dataset = "dataset" in by_key and by_key["dataset"].is_sweep_override()
    if explicit_family or family_per_dataset:
        return overrides, None
    cfg = _compose([item for item, o in parsed.items() if not (_MODEL_SETTING.match(item) or o.is_sweep_override())])
    if cfg.model.get("family") != "auto":  # an experiment chose the family
        return overrides, None
    family = auto_family(dataset_modality(cfg.dataset._target_))
    known = family_config(family)
    settings = [item for item in overrides if parsed[item].key_or_group != "model"]
    picked = [item[1:] if _adds_a_known_key(item, known) else item for item in settings]
    return [f"model={family}", *picked], family


def _adds_a_known_key(item: str, known: dict) -> bool:
    """+model.a.b=... for a key a.b that the family's config already has (Hydra would refuse to add it)."""
    if not item.startswith("+model."):
        return False
    node = known
    for key in item.partition("=")[0].removeprefix("+model.").split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def compose(overrides: list[str] | None = None, output_dir: str | Path | None = None):
    """Compose conf/train.yaml like the CLI does; output_dir replaces Hydra's run dir."""
    overrides, _ = auto_family_overrides(normalize_overrides(list(overrides or [])))
    cfg = _compose(overrides)
    if output_dir is not None:
        cfg.paths.output_dir = str(output_dir)
    return cfg


def _compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), job_name="train"):
        return hydra_compose("train", overrides=overrides)


register_resolvers()
