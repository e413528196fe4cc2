"""What the sweeper and its jobs share: the study storage, the trial override, the pruned marker, the
interrupted mark, and study.json (where a sweep dir's study lives, so `lightsweep report DIR` can find it)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from lightsweep.errors import ConfigError

TRIAL_KEY = "optuna_trial"  # each job gets +optuna_trial=<number>: the trial it reports to
PRUNED = "pruned"  # what a job returns when its trial was pruned
INTERRUPTED = "interrupted"  # user attr of a FAIL trial stopped from outside (Ctrl-C, a killed sweep): not done
STOP_REQUEST = "stop_request"  # user attr set on a RUNNING trial before its sweep is stopped: who asked, why
STUDY_JSON = "study.json"
_SQLITE = "sqlite:///"
_JOURNAL = "journal://"  # journal:///abs/path.log or journal://relative/path.log: Optuna's JournalStorage on a file
STORAGE_FORMS = (
    "sqlite:///relative/or/absolute.db (one machine), postgresql://user@host:port/db or mysql://user@host/db "
    "(any SQLAlchemy URL: a database server, for workers on many machines) or journal:///shared/path/study.log "
    "(a journal file on a filesystem every worker sees)"
)


def absolute_storage(url: str | None, cwd: str | Path) -> str | None:
    """A relative SQLite or journal path means the launch directory; jobs may run elsewhere, so make it absolute."""
    for prefix in (_SQLITE, _JOURNAL):
        if url and str(url).startswith(prefix):
            path = str(url)[len(prefix) :]
            return url if path.startswith("/") else prefix + str((Path(cwd) / path).resolve())
    return url


def open_storage(url: str) -> Any:
    """The Optuna storage of a URL: a journal file, or an RDB storage for any SQLAlchemy URL (SQLite waits up to
    a minute for a lock: parallel jobs report at once). A URL that cannot be opened is a ConfigError."""
    import sqlalchemy.exc

    if url.startswith(_JOURNAL):
        return _journal_storage(Path(url[len(_JOURNAL) :]))
    engine_kwargs = _engine_kwargs(url)
    try:
        return _rdb_storage(url, engine_kwargs)
    except ImportError as exc:  # the database's Python driver
        module = getattr(exc.__cause__, "name", None) or "its driver"
        raise ConfigError(
            f"study storage {_shown(url)}: the Python driver for this database ({module}) is not "
            "installed. For PostgreSQL: pip install 'lightsweep[postgres]' (psycopg); for MySQL: pip install "
            "pymysql and use mysql+pymysql://..."
        ) from None
    except sqlalchemy.exc.OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise ConfigError(
            f"study storage {_shown(url)}: the database does not answer ({reason}). Start the database "
            "server (a local PostgreSQL for tests: tools/postgres/start-postgres.sh) or fix the URL; valid "
            f"storages: {STORAGE_FORMS}."
        ) from None


def _rdb_storage(url: str, engine_kwargs: dict[str, Any]) -> Any:
    """RDBStorage, whose first use creates Optuna's tables: drivers started together on a new database race
    to create them, and all but one fail on a name that now exists; once created, opening again just works."""
    import optuna
    import sqlalchemy.exc

    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError, sqlalchemy.exc.OperationalError) as exc:
            if attempt == 4 or not _created_meanwhile(exc):
                raise
            time.sleep(0.2 * (attempt + 1))


def _created_meanwhile(exc: Exception) -> bool:
    """The error of creating a table, type or row another driver has just created (PostgreSQL: a unique
    violation or "already exists"; SQLite: "table ... already exists", an OperationalError)."""
    import sqlalchemy.exc

    return isinstance(exc, sqlalchemy.exc.IntegrityError) or "already exists" in str(exc)


def close_storage(storage: Any) -> None:
    """Close a storage's connections (an RDB storage's pool; a journal file keeps nothing open)."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


def storage_warning(url: str | None, parallel_nodes: bool) -> str | None:
    """A warning when workers on more than one node would share a SQLite file, else None."""
    if not parallel_nodes or not url or _scheme(url) != "sqlite":
        return None
    return (
        f"hydra.sweeper.storage={url} is a SQLite file, but this sweep runs workers on more than one node: "
        "SQLite's file locks are unreliable on shared (network) filesystems, so trials can be lost or the study "
        "corrupted. Use a database server (hydra.sweeper.storage=postgresql://user@host:port/db; "
        "tools/postgres/start-postgres.sh starts a local one) or a journal file on the shared filesystem "
        "(hydra.sweeper.storage=journal:///shared/path/study.log)."
    )


def _scheme(url: str) -> str:
    """The database of a URL without its driver: postgresql+psycopg://... -> postgresql."""
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def _journal_storage(path: Path) -> Any:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    except OSError as exc:
        raise ConfigError(
            f"study storage {_JOURNAL}{path}: cannot open the journal file ({exc.strerror}). Point it at a "
            "writable path every worker sees, e.g. journal:///shared/path/study.log."
        ) from None


def _engine_kwargs(url: str) -> dict[str, Any]:
    """SQLAlchemy engine settings for an RDB storage URL; an unknown scheme is a ConfigError."""
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        parsed.get_dialect()  # the database's dialect, not yet its driver (imported when connecting)
    except (sqlalchemy.exc.ArgumentError, sqlalchemy.exc.NoSuchModuleError):
        raise ConfigError(
            f"study storage {url!r} is not a storage URL Optuna can open (hydra.sweeper.storage); valid: "
            f"{STORAGE_FORMS}."
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return {"connect_args": {"timeout": 60}}
    if parsed.get_driver_name() in ("psycopg", "psycopg2"):
        # A driver frozen or cut off inside a transaction keeps its row locks, and every other driver waits on
        # them: the server ends such a session after 20 s idle in its transaction (a live driver's
        # transactions last milliseconds). connect_timeout: a host that drops packets fails in 10 s.
        connect_args: dict[str, Any] = {"options": "-c idle_in_transaction_session_timeout=20000"}
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = 10
        return {"connect_args": connect_args}
    return {}


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


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
