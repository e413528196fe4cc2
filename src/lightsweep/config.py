"""Where the config tree lives, the resolvers it uses, and composing it outside the CLI (tests, tools)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from omegaconf import OmegaConf

from lightsweep.objective import direction
from lightsweep.paths import CONF_DIR, PROJECT_ROOT  # noqa: F401  PROJECT_ROOT: re-exported for train.py

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
        OmegaConf.register_resolver(
            "lightsweep.wandb_offline", _wandb_offline
        )
    if not OmegaConf.has_resolver("objective_direction"):  # objective.direction from objective.name
        OmegaConf.register_resolver("objective_direction", direction)


def compose(overrides: list[str] | None = None, output_dir: str | Path | None = None):
    """Compose conf/train.yaml like the CLI does; output_dir replaces Hydra's run dir."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_resolvers()
    overrides = normalize_overrides(list(overrides or []))
    with initialize_config_dir(config_dir=str(CONF_DIR), job_name="train"):
        cfg = hydra_compose("train", overrides=overrides)
    if output_dir is not None:
        cfg.paths.output_dir = str(output_dir)
    return cfg


register_resolvers()
