"""What the sweeper and its jobs share: the study storage, the trial override, the pruned marker, the
interrupted mark, and study.json (where a sweep dir's study lives, so `lightsweep report DIR` can find it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lightsweep.errors import ConfigError

TRIAL_KEY = "optuna_trial"  # each job gets +optuna_trial=<number>: the trial it reports to
PRUNED = "pruned"  # what a job returns when its trial was pruned
INTERRUPTED = "interrupted"  # user attr of a FAIL trial stopped from outside (Ctrl-C, a killed sweep): not done
STOP_REQUEST = "stop_request"  # user attr set on a RUNNING trial before its sweep is stopped: who asked, why
STUDY_JSON = "study.json"
_SQLITE = "sqlite:///"


def absolute_storage(url: str | None, cwd: str | Path) -> str | None:
    """A relative SQLite path means the launch directory; jobs may run elsewhere, so make it absolute."""
    if not url or not str(url).startswith(_SQLITE) or str(url)[len(_SQLITE) :].startswith("/"):
        return url
    return _SQLITE + str((Path(cwd) / str(url)[len(_SQLITE) :]).resolve())


def open_storage(url: str) -> Any:
    """An Optuna RDB storage; SQLite waits up to a minute for a lock (parallel jobs report at once)."""
    import optuna

    engine_kwargs = {}
    if url.startswith(_SQLITE):
        Path(url[len(_SQLITE) :]).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": 60}}
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


def load_trial(storage_url: str, study_name: str, number: int) -> Any:
    """Reattach to trial `number` of a stored study (with the pruner the sweeper stored for it)."""
    import optuna
    from hydra.utils import instantiate

    storage = open_storage(storage_url)
    study_id = storage.get_study_id_from_name(study_name)
    pruner_spec = storage.get_study_user_attrs(study_id).get("pruner")
    pruner = instantiate(pruner_spec, _execution_whitelist_=["optuna.pruners.*"]) if pruner_spec else None
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=pruner)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
    return optuna.trial.Trial(study, trial_id)


def write_study_json(sweep_dir: str | Path, record: dict[str, Any]) -> None:
    from lightsweep.runinfo import write_json_atomic

    write_json_atomic(Path(sweep_dir) / STUDY_JSON, record)


def read_study_json(sweep_dir: str | Path) -> dict[str, Any]:
    path = Path(sweep_dir) / STUDY_JSON
    if not path.is_file():
        raise ConfigError(
            f"{sweep_dir} is not a lightsweep sweep dir: it has no {STUDY_JSON}. Pass the directory a "
            "`python train.py -m ... +sweep=<simple|health|efficiency>` run printed (under multirun/)."
        )
    record = json.loads(path.read_text())
    if not record.get("storage"):
        raise ConfigError(
            f"{sweep_dir}: its sweep kept the study in memory (hydra.sweeper.storage=null), so there is no study "
            "to report or serve. Rerun it with a storage (the +sweep=simple default is a SQLite file)."
        )
    return record


def best_command(run_dir: Path) -> str | None:
    """A trial's run as a single-run command that works as pasted into a shell anywhere: the launch dir,
    this Python (the one with lightsweep installed) and train.py by absolute path, the job's overrides
    without the trial it reported to and without the sweep config, whose objective settings are written
    out instead. None when the run dir lacks Hydra's snapshot."""
    import shlex
    import sys

    import yaml

    from lightsweep.paths import PROJECT_ROOT
    from lightsweep.runinfo import launch_dir

    snapshot = Path(run_dir) / ".hydra"
    if not (snapshot / "overrides.yaml").is_file() or not (snapshot / "config.yaml").is_file():
        return None
    overrides = yaml.safe_load((snapshot / "overrides.yaml").read_text()) or []
    config = yaml.safe_load((snapshot / "config.yaml").read_text())
    kept = [o for o in overrides if o.lstrip("+").split("=", 1)[0] not in (TRIAL_KEY, "sweep")]
    given = {o.split("=", 1)[0] for o in kept}
    objective = config.get("objective") or {}
    kept += [
        f"objective.{key}={_override_value(objective[key])}"
        for key in ("name", "mode", "health_weight")
        if key in objective and f"objective.{key}" not in given
    ]
    python = [sys.executable, str(PROJECT_ROOT / "train.py")]
    return f"cd {shlex.quote(str(launch_dir(run_dir)))} && " + " ".join(shlex.quote(part) for part in python + kept)


def _override_value(value: Any) -> str:
    """A config value in Hydra's override grammar (lists as [a,b])."""
    return f"[{','.join(map(str, value))}]" if isinstance(value, list) else str(value)


def pruning_callback(cfg: Any) -> dict[str, Any] | None:
    """The OptunaPruning callback node for a job of a lightsweep sweep with a study storage (else None). It
    reports the monitored metric every epoch whether or not a pruner is set: the intermediate values are the
    trials' learning curves, which the report, optuna-dashboard and the service's live events read. The
    study is the one the sweeper recorded in study.json: the job's own study_name can differ (model=auto
    resolves to the family in the job)."""
    from hydra.core.hydra_config import HydraConfig

    from lightsweep.objective import monitor_of, names_of

    hydra_cfg = HydraConfig.get()
    names = names_of(cfg.objective.name)
    if (
        cfg.get(TRIAL_KEY) is None or not hydra_cfg.sweeper.get("storage") or len(names) > 1
    ):  # Optuna: no multi-objective report
        return None
    monitor = monitor_of(names[0], hydra_cfg.sweeper.monitor)  # with a pruner, the sweeper checked its direction
    if monitor is None:
        return None
    study = read_study_json(Path(hydra_cfg.runtime.cwd) / hydra_cfg.sweep.dir)
    return {
        "_target_": "lightsweep.callbacks.optuna_pruning.OptunaPruning",
        "storage": study["storage"],
        "study_name": study["study_name"],
        "trial_number": int(cfg[TRIAL_KEY]),
        "monitor": monitor,
    }
