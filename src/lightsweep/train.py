"""The one run path: `run(cfg)` trains and measures one composed config; `main` is the Hydra entry.

This module imports only Hydra/OmegaConf at the top so `python train.py --help` stays fast;
torch and Lightning are imported inside `run`.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from lightsweep.config import register_resolvers
from lightsweep.errors import exit_on_user_error
from lightsweep.paths import CONF_DIR, PROJECT_ROOT
from lightsweep.runinfo import RUN_JSON, git_sha, now_iso, versions, write_json_atomic


@dataclass
class RunResult:
    status: str  # ok | pruned (stopped by a sweep's pruner) | failed | interrupted
    run_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    objective: float | list[float] | None = None  # a list for a multi-objective (list) objective.name
    model_family: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def run(cfg: DictConfig) -> RunResult:
    """Train, test and record one run. Writes <paths.output_dir>/run.json whatever happens."""
    from lightsweep.session import measure, resolved_config

    run_dir = Path(cfg.paths.output_dir)
    record: dict[str, Any] = {
        "status": "running",
        "started": now_iso(),
        "seed": cfg.get("seed"),
        "overrides": _overrides(),
        "versions": versions(),
        "git_sha": git_sha(PROJECT_ROOT),
    }
    result = RunResult(status="failed", run_dir=run_dir)
    try:
        record["config"], result.model_family = resolved_config(cfg)
        measured = measure(record["config"], in_sweep=not _single_run())
        result.status = "pruned" if measured.pruned else "ok"
    except KeyboardInterrupt as exc:
        result.status, measured = "interrupted", getattr(exc, "measured", None)
        record["resume_from"] = getattr(exc, "resume_from", None)
        raise
    except BaseException as exc:
        result.status, measured = "failed", None
        record["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if measured is not None:
            record.update(measured.record, config=measured.config)
            result.metrics, result.timings, result.objective = measured.metrics, measured.timings, measured.objective
        record.update(
            status=result.status,
            metrics=result.metrics,
            objective=result.objective,
            model_family=result.model_family,
            timings=result.timings,
            finished=now_iso(),
        )
        record.setdefault("config", OmegaConf.to_container(cfg, resolve=False))
        write_json_atomic(run_dir / RUN_JSON, record)
        _finish_wandb_run(cfg, result.status)
    return result


def _finish_wandb_run(cfg: DictConfig, status: str) -> None:
    """W&B keeps one run open per process and Lightning never finishes it: the next run in this process
    (tests, a sweep's in-process jobs) would log into it, and an offline run is written out only when
    finished."""
    wandb = sys.modules.get("wandb")
    if wandb is None or wandb.run is None:
        return
    targets = {node.get("_target_") for node in (cfg.get("logger") or {}).values() if node}
    if "lightning.pytorch.loggers.WandbLogger" in targets:
        wandb.finish(exit_code=0 if status in ("ok", "pruned") else 1)


def _overrides() -> list[str]:
    """The command-line overrides of this job (empty when run() is called outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


register_resolvers()


@hydra.main(config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> float | list[float] | str | None:
    """Hydra entry: run one config and hand the objective (or the pruned marker) to a sweeper."""
    from lightsweep.sweep.study import PRUNED, pruning_callback

    try:
        pruning = None if _single_run() else pruning_callback(cfg)
        if pruning:  # a sweep with a study storage: this job reports to its trial every epoch
            with open_dict(cfg):
                cfg.callbacks = cfg.callbacks or {}
                cfg.callbacks.optuna_pruning = pruning
        result = run(cfg)
        _summarise(result)
    except KeyboardInterrupt as exc:
        if not _single_run():  # a sweep stops too; its sweeper records the trial
            raise
        print(_how_to_resume(exc), file=sys.stderr)
        sys.exit(130)  # the shell's code for a command stopped by SIGINT
    except Exception as exc:
        if _single_run():  # in a sweep the sweeper records the failed trial and goes on
            exit_on_user_error(exc)
        raise
    return PRUNED if result.status == "pruned" else result.objective


def _summarise(result: RunResult) -> None:
    """What a user reads at the end of a run: the outcome, then where its record and plots are (machines
    read run.json)."""
    shown = ", ".join(
        f"{k} {v:.4f}" for k, v in result.metrics.items() if k in ("val/acc", "test/acc", "test/f1_macro")
    )
    objective = result.objective if not isinstance(result.objective, float) else round(result.objective, 4)
    lines = [
        f"{result.status}: {result.model_family}, {shown}; objective {objective}",
        f"run dir: {result.run_dir} (run.json: metrics, health, efficiency, config)",
    ]
    plots = sorted(p.name for p in (result.run_dir / "plots").glob("*.png"))
    if plots:
        lines.append(f"plots: {result.run_dir / 'plots'}/ {', '.join(plots)}")
    for line in lines:
        logging.getLogger(__name__).info(line)


def _how_to_resume(exc: KeyboardInterrupt) -> str:
    done = f"lightsweep: interrupted after {getattr(exc, 'finished_epochs', 0)} finished epoch(s)"
    if resume_from := getattr(exc, "resume_from", None):
        return f"{done}; to resume, run the same command with ckpt_path={resume_from}"
    return f"{done} and no checkpoint to resume from (callbacks.model_checkpoint writes it): run it again to start over"


def _single_run() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return not HydraConfig.initialized() or HydraConfig.get().mode == RunMode.RUN
