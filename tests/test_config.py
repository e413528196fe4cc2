"""The config tree: every choice of every group composes, and the CLI's help stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from lightsweep.config import compose, normalize_overrides
from lightsweep.paths import CONF_DIR

# conf/technique/ holds the efficiency optimizer's techniques, read by `lightsweep efficiency`, never composed
# into a run (tests/test_efficiency.py checks each file).
GROUPS = sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and p.name not in ("hydra", "technique"))
OPTIONAL = {"experiment", "debug", "sweep"}  # not in the defaults list: selected with group= or +group=


def all_choices():
    for group in GROUPS:
        for path in sorted((CONF_DIR / group).glob("*.yaml")):
            prefix = "+" if group == "sweep" else ""
            yield f"{prefix}{group}={path.stem}"


@pytest.mark.parametrize("override", list(all_choices()))
def test_every_choice_composes_resolves_and_validates(override, tmp_path):
    from hydra.utils import get_object

    from lightsweep.models.registry import resolve_model_config
    from lightsweep.validate import validate

    cfg = compose(normalize_overrides([override]), output_dir=tmp_path)
    plain = OmegaConf.to_container(cfg, resolve=True)
    assert plain["trainer"]["_target_"] == "lightning.pytorch.Trainer"
    assert plain["paths"]["output_dir"] == str(tmp_path)
    modality = get_object(plain["dataset"]["_target_"]).modality  # model=auto picks its family as run() does
    plain["model"] = resolve_model_config(plain["model"], modality)[1]
    validate(plain)  # every key fits its constructor


def test_every_group_has_choices():
    for group in GROUPS:
        assert list((CONF_DIR / group).glob("*.yaml")), f"config group {group} is empty"
    assert {
        "model",
        "dataset",
        "precision",
        "strategy",
        "scheduler",
        "executor",
        "callbacks",
        "logger",
        "sweep",
        "experiment",
        "debug",
        "paths",
    } <= set(GROUPS) | {"hydra"}


@pytest.mark.parametrize(
    ("choice", "flag"), [("32", "32-true"), ("16", "16-mixed"), ("bf16", "bf16-mixed"), ("64", "64-true")]
)
def test_precision_choices_map_to_lightning_flags(choice, flag, tmp_path):
    cfg = compose([f"precision={choice}"], output_dir=tmp_path)
    assert cfg.trainer.precision == flag


def test_numeric_group_choices_are_quoted_but_values_are_not():
    assert normalize_overrides(["precision=16", "precision=16,32", "seed=3", "trainer.max_epochs=5"]) == [
        "precision='16'",
        "precision='16','32'",
        "seed=3",
        "trainer.max_epochs=5",
    ]


@pytest.mark.parametrize(
    ("executor", "launcher"),
    [("local", "BasicLauncher"), ("submitit_local", "LocalLauncher"), ("slurm", "SlurmLauncher")],
)
def test_executor_selects_hydra_launcher(executor, launcher):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), job_name="t"):
        cfg = hydra_compose("train", overrides=[f"executor={executor}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith(launcher)


def test_help_is_fast_and_imports_no_torch():
    code = (
        "import sys; sys.argv=['train.py','--help']\n"
        "from lightsweep.cli import train_entry\n"
        "try:\n    train_entry()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'lightning') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    groups = dict(line.split(": ", 1) for line in out.stdout.splitlines() if line.startswith(("dataset: ", "model: ")))
    assert "digits" in groups["dataset"] and "cnn" in groups["model"]
    assert "HEAVY []" in out.stdout


def test_sweep_is_accepted_with_or_without_plus():
    assert normalize_overrides(["sweep=simple", "+sweep=health", "seed=1"]) == [
        "+sweep=simple",
        "+sweep=health",
        "seed=1",
    ]


@pytest.mark.parametrize("spelling", ["sweep=simple", "+sweep=simple"])
def test_a_sweep_config_without_multirun_warns_that_it_runs_once(spelling):
    from conftest import cli

    proc = cli(spelling, "--cfg", "job")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "warning: sweep=simple sets up an Optuna search, which runs only with -m" in proc.stderr
    assert "objective:" in proc.stdout  # composed fine: no "No match in the defaults list"
