"""The baseline the techniques are measured against, composed from the user's overrides as train.py would."""

from __future__ import annotations

from typing import Any

from lightsweep.efficiency.techniques import Baseline
from lightsweep.errors import ConfigError

SCALED_KEYS = (  # the keys technique files scale (conf/technique/*.yaml "scale")
    "dataset.batch_size",
    "trainer.accumulate_grad_batches",
    "model.hidden_dims",
    "model.filters",
    "model.first_hidden_units",
    "model.lstm_units",
    "model.embedding_dim",
)


def baseline_of(overrides: list[str]) -> tuple[Baseline, list[str], str, int]:
    """(the baseline, overrides it needs added, a name for its output folder, its seed). The efficiency
    callback (FLOPs, memory, inference speed) is added when the baseline's callbacks lack it."""
    from omegaconf import OmegaConf

    from lightsweep.config import compose
    from lightsweep.session import resolved_config

    if any(o.startswith(("seed=", "hydra.run.dir=", "hydra.sweep.dir=")) for o in overrides):
        raise ConfigError(
            "lightsweep efficiency sets seed and the run folders itself: drop seed=/hydra.run.dir=/hydra.sweep.dir= "
            "from the overrides (use --seeds S ... for the seeds)."
        )
    cfg = compose(overrides, output_dir="/tmp/lightsweep-efficiency-compose")
    plain, family = resolved_config(cfg)
    callbacks = [name for name, node in (plain.get("callbacks") or {}).items() if node]
    extra = []
    if "efficiency" not in callbacks:
        callbacks.append("efficiency")
        extra.append(f"callbacks=[{','.join(callbacks)}]")
    values = {key: _dotted(plain, key) for key in SCALED_KEYS}
    accelerator = plain["trainer"].get("accelerator", "auto")
    device = "cuda" if accelerator in ("gpu", "cuda") or (accelerator == "auto" and _cuda()) else "cpu"
    name = _choice(overrides, "experiment") or f"{_choice(overrides, 'dataset')}_{family}"
    seed = int(OmegaConf.select(cfg, "seed", default=0) or 0)
    return Baseline(family=family, device=device, callbacks=tuple(callbacks), values=values), extra, name, seed


def _choice(overrides: list[str], group: str) -> str | None:
    """The group's option on the command line, else train.yaml's default."""
    import yaml

    from lightsweep.paths import CONF_DIR

    chosen = next((o.partition("=")[2] for o in overrides if o.startswith(f"{group}=")), None)
    if chosen is not None:
        return chosen
    defaults = yaml.safe_load((CONF_DIR / "train.yaml").read_text())["defaults"]
    return next((entry[group] for entry in defaults if isinstance(entry, dict) and group in entry), None)


def _dotted(plain: dict[str, Any], key: str) -> Any:
    node: Any = plain
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
