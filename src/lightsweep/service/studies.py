"""One job's study as the API shows it: trials, the running trial, the best trial, trends and progress, read
from the job's Optuna storage and each trial's run.json (never copied into the service's database).

Every function runs in a worker thread, several at once. Opening an RDB storage takes tens of milliseconds,
so each sweep dir keeps one open study; it reads through Optuna's cached storage, which fetches a finished
trial once and afterwards only the unfinished and new ones: what `progress` and `snapshot`, polled several
times a second per running job, need to stay cheap. Before the sweeper writes study.json (a job that has just
started, or a single run) every answer is empty."""

from __future__ import annotations

import copy
import json
import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from lightsweep.errors import ConfigError
from lightsweep.runinfo import RUN_JSON
from lightsweep.sweep.study import INTERRUPTED, STUDY_JSON, best_command, close_storage, open_storage, read_study_json


@dataclass(frozen=True)
class _Opened:
    meta: dict[str, Any]  # study.json
    storage: Any  # the RDB or journal storage (closed by forget())
    study: Any  # optuna.Study over Optuna's cached wrapper of `storage`


_lock = threading.Lock()
_opened: dict[Path, tuple[int, _Opened]] = {}  # sweep dir -> (study.json's mtime_ns, its open study)


def forget(sweep_dir: str | Path) -> None:
    """Close the sweep dir's storage connections (a deleted job); a later call opens it again."""
    with _lock:
        entry = _opened.pop(Path(sweep_dir).resolve(), None)
    if entry:
        close_storage(entry[1].storage)


def open_study(sweep_dir: Path) -> _Opened | None:
    """The sweep dir's open study, None before study.json exists. study.json is re-read when it changes
    (the report adds its figures; a resumed sweep may have another n_trials); the storage is kept."""
    import optuna

    try:
        mtime = (sweep_dir / STUDY_JSON).stat().st_mtime_ns
    except FileNotFoundError:
        return None
    with _lock:
        cached = _opened.get(sweep_dir)
        if cached and cached[0] == mtime:
            return cached[1]
        try:
            meta = read_study_json(sweep_dir)
        except ConfigError:  # a sweep that kept its study in memory: nothing to read
            return None
        previous = cached[1] if cached else None
        same = previous and all(previous.meta[key] == meta[key] for key in ("storage", "study_name"))
        if same:
            opened = _Opened(meta, previous.storage, previous.study)
        else:
            storage = open_storage(meta["storage"])
            try:
                study = optuna.load_study(study_name=meta["study_name"], storage=storage)
            except KeyError:
                raise ConfigError(
                    f"{sweep_dir / STUDY_JSON} names study {meta['study_name']!r}, which is not in "
                    f"{meta['storage']}: was the storage moved or deleted? Point study.json at it, or rerun the sweep."
                ) from None
            opened = _Opened(meta, storage, study)
            if previous:  # study.json now names another study: the old storage's connections are not needed
                close_storage(previous.storage)
        _opened[sweep_dir] = (mtime, opened)
        return opened


class JobStudy:
    """The study of the sweep in `sweep_dir` (a job's <job folder>/sweep)."""

    def __init__(self, sweep_dir: str | Path) -> None:
        self.sweep_dir = Path(sweep_dir).resolve()

    def trials(self, running_only: bool = False) -> list[dict[str, Any]]:
        """Every trial by number (only the RUNNING ones with running_only)."""
        opened = open_study(self.sweep_dir)
        if opened is None:
            return []
        single = len(opened.study.directions) == 1
        return [
            self._record(t, single)
            for t in opened.study.get_trials(deepcopy=False)
            if not running_only or t.state.name == "RUNNING"
        ]

    def running_trials(self) -> list[dict[str, Any]]:
        """The RUNNING trials (n_jobs > 1 runs several), by number."""
        return self.trials(running_only=True)

    def current_trial(self) -> dict[str, Any] | None:
        """The RUNNING trial with the highest number (its last_epoch is the last one it reported)."""
        running = self.running_trials()
        return running[-1] if running else None

    def best_trial(self) -> dict[str, Any] | None:
        """{number, params, value, values, health, run_dir, command, pareto}: the best trial (Optuna's own
        choice, as the report's); for a multi-objective study the first of the Pareto front by the first
        objective (as the report orders it), `pareto` listing the whole front (None for one objective).
        None while no trial has completed."""
        opened = open_study(self.sweep_dir)
        if opened is None:
            return None
        study = opened.study
        if not any(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False)):
            return None
        if len(study.directions) == 1:
            return {**self._best_record(study.best_trial), "pareto": None}
        sign = 1 if study.directions[0].name == "MINIMIZE" else -1
        front = [self._best_record(t) for t in sorted(study.best_trials, key=lambda t: sign * t.values[0])]
        return {**front[0], "pareto": front}

    def trends(self) -> dict[str, list[dict[str, Any]]]:
        """Per trial: the objective (completed trials), the best value so far in the study's direction (of the
        first objective for a multi-objective study), the overall health and the epochs trained."""
        trends: dict[str, list[dict[str, Any]]] = {"objective": [], "best_so_far": [], "health": [], "epochs": []}
        opened = open_study(self.sweep_dir)
        if opened is None:
            return trends
        better = _better(opened.study)
        best = None
        for trial in opened.study.get_trials(deepcopy=False):
            run = _run_summary(self._run_dir(trial))
            if trial.state.name == "COMPLETE":
                value = trial.values[0]
                best = value if best is None or better(value, best) else best
                trends["objective"].append({"number": trial.number, "value": value, "values": list(trial.values)})
                trends["best_so_far"].append({"number": trial.number, "value": best})
            if run.get("health"):
                trends["health"].append({"number": trial.number, "overall": run["health"]["overall"]})
            epochs = run.get("epochs_trained")
            trends["epochs"].append(
                {"number": trial.number, "epochs": len(trial.intermediate_values) if epochs is None else epochs}
            )
        return trends

    def progress(self) -> dict[str, Any]:
        """{n_trials, done, running: [{number, epoch}], best_value, states}: done counts the finished trials the
        sweep counts (an interrupted one is run again); best_value is the best of the (first) objective."""
        answer: dict[str, Any] = {"n_trials": None, "done": 0, "running": [], "best_value": None, "states": {}}
        opened = open_study(self.sweep_dir)
        if opened is None:
            return answer
        better = _better(opened.study)
        answer["n_trials"] = opened.meta.get("n_trials")
        for trial in opened.study.get_trials(deepcopy=False):
            state = trial.state.name
            answer["states"][state] = answer["states"].get(state, 0) + 1
            if trial.state.is_finished() and not trial.user_attrs.get(INTERRUPTED):
                answer["done"] += 1
            if state == "RUNNING":
                answer["running"].append({"number": trial.number, "epoch": _last_epoch(trial)})
            if state == "COMPLETE" and (answer["best_value"] is None or better(trial.values[0], answer["best_value"])):
                answer["best_value"] = trial.values[0]
        return answer

    def snapshot(self) -> dict[int, tuple[str, int | None]]:
        """{trial number: (state name, last reported epoch)}: consecutive snapshots differ by what happened."""
        opened = open_study(self.sweep_dir)
        if opened is None:
            return {}
        return {t.number: (t.state.name, _last_epoch(t)) for t in opened.study.get_trials(deepcopy=False)}

    def epochs(self, number: int, after: int | None = None) -> list[tuple[int, float | None]]:
        """[(epoch, value)] trial `number` reported after epoch `after` (all when None): an event per epoch."""
        trial = self._trial(number)
        if trial is None:
            return []
        return [
            (step, _finite(value))
            for step, value in sorted(trial.intermediate_values.items())
            if after is None or step > after
        ]

    def outcome(self, number: int) -> dict[str, Any] | None:
        """Trial `number` as trials() gives it, less the epochs (sent one by one before): a finished event."""
        opened = open_study(self.sweep_dir)
        trial = self._trial(number)
        if opened is None or trial is None:
            return None
        record = self._record(trial, len(opened.study.directions) == 1)
        del record["epochs"]
        return record

    def _trial(self, number: int) -> Any:
        opened = open_study(self.sweep_dir)
        if opened is None:
            return None
        return next((t for t in opened.study.get_trials(deepcopy=False) if t.number == number), None)

    def _run_dir(self, trial: Any) -> Path | None:
        """The trial's job dir: recorded when the trial ends; while it runs, the sweeper's <sweep dir>/<number>."""
        recorded = trial.user_attrs.get("run_dir")
        if recorded:
            return Path(recorded)
        numbered = self.sweep_dir / str(trial.number)
        return numbered if numbered.is_dir() else None

    def _record(self, trial: Any, single: bool) -> dict[str, Any]:
        run_dir = self._run_dir(trial)
        run = _run_summary(run_dir)
        # Optuna keeps a pruned trial's last reported value as its value: not an objective value.
        values = None if trial.state.name == "PRUNED" or trial.values is None else list(trial.values)
        epochs = [{"epoch": step, "value": _finite(v)} for step, v in sorted(trial.intermediate_values.items())]
        started, completed = trial.datetime_start, trial.datetime_complete
        return {
            "number": trial.number,
            "state": trial.state.name,
            "params": trial.params,
            "value": values[0] if values and single else None,
            "values": values,
            "started": _iso(started),
            "completed": _iso(completed),
            "duration_s": (completed - started).total_seconds() if started and completed else None,
            "error": trial.user_attrs.get("error"),
            "interrupted": bool(trial.user_attrs.get(INTERRUPTED, False)),
            "run_dir": str(run_dir) if run_dir else None,
            "epochs": epochs,
            "last_epoch": epochs[-1]["epoch"] if epochs else None,
            "health": run.get("health"),
            "metrics": run.get("metrics"),
        }

    def _best_record(self, trial: Any) -> dict[str, Any]:
        run_dir = self._run_dir(trial)
        return {
            "number": trial.number,
            "params": trial.params,
            "value": trial.values[0] if len(trial.values) == 1 else None,
            "values": list(trial.values),
            "health": _run_summary(run_dir).get("health"),
            "run_dir": str(run_dir) if run_dir else None,
            "command": best_command(run_dir) if run_dir else None,
        }


def _better(study: Any) -> Any:
    """better(a, b): whether value a beats b in the (first) objective's direction."""
    if study.directions[0].name == "MINIMIZE":
        return lambda a, b: a < b
    return lambda a, b: a > b


def _last_epoch(trial: Any) -> int | None:
    return max(trial.intermediate_values) if trial.intermediate_values else None


def _finite(value: float) -> float | None:
    """A diverged epoch reports NaN, which JSON cannot carry: null."""
    return value if math.isfinite(value) else None


def _iso(moment: datetime | None) -> str | None:
    """Optuna's naive local times as UTC ISO 8601 (to the microsecond, as stored)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds") if moment else None


def _run_summary(run_dir: Path | None) -> dict[str, Any]:
    """{health: {overall, components}, metrics, epochs_trained} of the trial's run.json; {} without one."""
    path = run_dir / RUN_JSON if run_dir else None
    try:
        stat = path.stat() if path else None
    except FileNotFoundError:
        return {}
    return copy.deepcopy(_read_summary(str(path), stat.st_mtime_ns)) if stat else {}  # the cached one stays as read


@lru_cache(maxsize=4096)
def _read_summary(path: str, mtime_ns: int) -> dict[str, Any]:
    """Cached by modification time: a finished trial's run.json is parsed once, not on every request."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):  # replaced between stat and read: the next call reads the new one
        return {}
    health = record.get("health")
    return {
        "health": {"overall": health.get("overall"), "components": health.get("components")} if health else None,
        "metrics": record.get("metrics"),
        "epochs_trained": record.get("epochs_trained"),
    }
