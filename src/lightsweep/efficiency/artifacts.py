"""The optimized configuration handed back: command.txt (the ready command line) and optimized.yaml (the same
run as an experiment config: the base experiment's file with the overrides folded in, self-contained)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from lightsweep.paths import CONF_DIR

GROUPS = {path.name for path in CONF_DIR.iterdir() if path.is_dir()}


def command_line(overrides: list[str]) -> str:
    return shlex.join(["python", "train.py", *overrides])


def experiment_config(overrides: list[str], header: str) -> str:
    """An `# @package _global_` experiment config equal to `python train.py <overrides>`: copied into
    conf/experiment/<name>.yaml, `experiment=<name>` runs it."""
    import yaml

    defaults: dict[str, Any] = {}
    body: dict[str, Any] = {}
    experiment_first = sorted(overrides, key=lambda item: not item.startswith("experiment="))  # then ours on top
    for item in experiment_first:
        key, _, value = item.lstrip("+").partition("=")
        if key == "experiment":
            base = yaml.safe_load((CONF_DIR / "experiment" / f"{value}.yaml").read_text()) or {}
            for entry in base.pop("defaults", []):
                if isinstance(entry, dict):
                    defaults.update(entry)
            _merge(body, base)
        elif key in GROUPS:
            defaults[f"override /{key}"] = _value(value)
        else:
            _set(body, key.split("."), _value(value))
    document = {"defaults": [{k: v} for k, v in defaults.items()] + ["_self_"], **body}
    return f"# @package _global_\n{header}" + yaml.safe_dump(document, sort_keys=False)


def write_artifacts(out_dir: Path, overrides: list[str], header: str) -> tuple[Path, Path, str]:
    command = command_line(overrides)
    (out_dir / "command.txt").write_text(command + "\n")
    (out_dir / "optimized.yaml").write_text(experiment_config(overrides, header))
    return out_dir / "optimized.yaml", out_dir / "command.txt", command


def _value(text: str) -> Any:
    """An override's value as YAML reads it (numbers, booleans, null, lists like [a,b])."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _set(node: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
