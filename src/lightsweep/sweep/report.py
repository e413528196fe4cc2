"""The study report of a sweep dir (written when a sweep ends, or by `lightsweep report DIR`): report.md with
the best trial and its ready-to-run command, parameter importances, epochs trained vs. the budget, a trial
table and PNG plots; best/ with the best trial's checkpoint and best_hyperparameters.yaml; study.json
updated with the same figures for machines."""

from __future__ import annotations

import os
import secrets
import shutil
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from lightsweep.errors import ConfigError
from lightsweep.runinfo import RUN_JSON, read_run, write_atomically
from lightsweep.sweep.plots import write_plots
from lightsweep.sweep.study import INTERRUPTED, best_command, open_storage, read_study_json, write_study_json


def write_report(sweep_dir: str | Path) -> Path:
    """Write <sweep_dir>/report.md (+ plots/, best/, study.json); return the report's path."""
    import optuna

    sweep_dir = Path(sweep_dir)
    meta = read_study_json(sweep_dir)
    try:
        study = optuna.load_study(study_name=meta["study_name"], storage=open_storage(meta["storage"]))
    except KeyError:
        raise ConfigError(
            f"study {meta['study_name']!r} is not in {meta['storage']}: was the storage moved "
            "or deleted? Point study.json's storage at it, or rerun the sweep."
        ) from None
    names = _names((meta.get("objective") or {}).get("name"), len(study.directions))
    rows = [_row(t, study.user_attrs.get("monitor", "value")) for t in study.get_trials(deepcopy=False)]
    best = _best_trials(study)
    summary = {
        "states": dict(Counter(r["state"] for r in rows)),
        "epochs_trained": sum(r["epochs"] or 0 for r in rows),
        "epochs_without_pruning": sum(_budget(r) for r in rows),
        "importances": {n: _importances(study, i, len(names)) for i, n in enumerate(names)},
        "best": [_best_record(t, rows, names) for t in best],
        "trials": rows,
    }
    if best:
        _write_best_dir(sweep_dir / "best", summary["best"][0], meta, study)
    plots = write_plots(study, names, summary["importances"], sweep_dir / "plots")
    write_study_json(sweep_dir, {**meta, **summary})
    path = sweep_dir / "report.md"
    text = _markdown(meta, study, names, summary, [p.relative_to(sweep_dir) for p in plots])
    write_atomically(path, lambda handle: handle.write(text.encode()))
    return path


def _names(objective: Any, n: int) -> list[str]:
    names = [objective] if isinstance(objective, str) else list(objective or [])
    return names if len(names) == n else [f"objective_{i}" for i in range(n)]


def _row(trial: Any, monitor: str) -> dict[str, Any]:
    run_dir = trial.user_attrs.get("run_dir")
    record = _run_json(run_dir)
    duration = (trial.datetime_complete - trial.datetime_start).total_seconds() if trial.datetime_complete else None
    pruned = trial.state.name == "PRUNED"  # Optuna keeps the last reported epoch's metric as its value
    note = trial.user_attrs.get("error")
    if pruned and trial.value is not None:
        note = f"last {monitor} = {trial.value:.4g}"
    return {
        "number": trial.number,
        "state": trial.state.name,
        "values": None if pruned else trial.values,
        "duration_s": duration,
        "epochs": record.get("epochs_trained"),
        "budget": ((record.get("config") or {}).get("trainer") or {}).get("max_epochs"),
        "pruned_at_epoch": record.get("pruned_at_epoch"),
        "params": trial.params,
        "run_dir": run_dir,
        "note": note,
        "interrupted": trial.user_attrs.get(INTERRUPTED, False),
    }


def _budget(row: dict[str, Any]) -> int:
    """Epochs the trial would have trained unpruned: a pruned one at most its max_epochs."""
    budget = row["budget"]
    pruned = row["state"] == "PRUNED" and isinstance(budget, int) and budget > 0
    return budget if pruned else row["epochs"] or 0


def _run_json(run_dir: str | None) -> dict[str, Any]:
    return read_run(Path(run_dir)) if run_dir and (Path(run_dir) / RUN_JSON).is_file() else {}


def _best_trials(study: Any) -> list[Any]:
    """The best trial, or the Pareto front best-first by the first objective."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return []
    if len(study.directions) == 1:
        return [study.best_trial]
    sign = 1 if study.directions[0].name == "MINIMIZE" else -1
    return sorted(study.best_trials, key=lambda t: sign * t.values[0])


def _best_record(trial: Any, rows: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    row = next(r for r in rows if r["number"] == trial.number)
    command = best_command(Path(row["run_dir"])) if row["run_dir"] else None
    return {
        "number": trial.number,
        "values": dict(zip(names, trial.values)),
        "params": trial.params,
        "command": command,
        "run_dir": row["run_dir"],
    }


def _importances(study: Any, index: int, n_objectives: int) -> dict[str, float]:
    import optuna
    from optuna.trial import TrialState

    values = {t.values[index] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))}
    if len(values) < 2:  # fANOVA needs some variance to apportion
        return {}
    target = None if n_objectives == 1 else (lambda t: t.values[index])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = optuna.importance.get_param_importances(
            study, target=target, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
        )
    return {name: round(float(value), 4) for name, value in found.items()}


def _write_best_dir(link: Path, best: dict[str, Any], meta: dict[str, Any], study: Any) -> None:
    """best/: the best trial's checkpoint (the weights it was tested with), run.json and hyperparameters.
    Built in a fresh folder beside it, then swapped in: a reader sees the old best/ or the new one, never
    none or a half-built one, and a failure leaves the old one as it was."""
    import yaml

    folder = link.with_name(f".{link.name}.{secrets.token_hex(4)}")
    folder.mkdir()  # 0o777 less the umask: other users of the sweep dir can read it (mkdtemp's is 0o700)
    try:
        record = _run_json(best["run_dir"])
        tested = record.get("tested_weights")
        checkpoints = Path(best["run_dir"] or "") / "checkpoints"
        source = Path(tested) if tested and tested != "last" else checkpoints / "last.ckpt"
        if source.is_file():
            shutil.copy2(source, folder / source.name)
        if record:
            shutil.copy2(Path(best["run_dir"]) / RUN_JSON, folder / RUN_JSON)
        (folder / "best_hyperparameters.yaml").write_text(
            yaml.safe_dump(
                {
                    "study": meta["study_name"],
                    "trial": best["number"],
                    "objective": best["values"],
                    "directions": [d.name.lower() for d in study.directions],
                    "params": best["params"],
                    "command": best["command"],
                    "run_dir": best["run_dir"],
                    "checkpoint": source.name if source.is_file() else None,
                },
                sort_keys=False,
            )
        )
        _swap_in(link, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _swap_in(link: Path, folder: Path) -> None:
    """Make `link` a symlink to `folder` (its sibling) in one os.replace, then delete the copies it no longer
    points to (the one it pointed to, and any left by a report killed mid-copy): a folder cannot be renamed
    over a non-empty one, and deleting it first leaves a moment with none."""
    previous = None
    legacy = link.is_dir() and not link.is_symlink()  # a best/ folder written before best/ became a link
    staged = folder.with_name(folder.name + ".link")
    staged.symlink_to(folder.name)  # relative: the sweep dir can be moved or copied
    try:
        if legacy:  # the one moment without best/: once, when an old sweep dir is reported again
            previous = link.rename(folder.with_name(folder.name + ".old"))
        os.replace(staged, link)
    except BaseException:
        if legacy and previous is not None and not link.exists():
            previous.rename(link)
        raise
    finally:
        staged.unlink(missing_ok=True)
    for stale in link.parent.glob(f".{link.name}.*"):  # our copies only: a target set by hand is left alone
        if stale.name != folder.name and stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _blend(meta: dict[str, Any]) -> str:
    objective = meta.get("objective") or {}
    if objective.get("mode") != "health":
        return ""
    w = objective.get("health_weight")
    return f"; mode=health: each score is (1 - {w}) * itself + {w} * overall_health"


def _markdown(meta: dict, study: Any, names: list[str], s: dict, plots: list[Path]) -> str:
    directions = [d.name.lower() for d in study.directions]
    pruner = (study.user_attrs.get("pruner") or {}).get("_target_", "?").rsplit(".", 1)[-1]
    interrupted = sum(bool(r["interrupted"]) for r in s["trials"])
    lines = [
        f"# Sweep report: {meta['study_name']}",
        "",
        f"- storage: `{meta['storage']}`",
        f"- objective: {', '.join(f'{n} ({d})' for n, d in zip(names, directions))}{_blend(meta)}",
        f"- trials: {len(s['trials'])} of n_trials={meta.get('n_trials')} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(s['states'].items()))}"
        f"{f', {interrupted} interrupted (not counted)' if interrupted else ''}); pruner: {pruner}",
        f"- epochs trained: {s['epochs_trained']} in total"
        + (
            ""
            if pruner == "NopPruner"
            else f"; without pruning: at most {s['epochs_without_pruning']} (each pruned trial's trainer.max_epochs "
            "instead of its epochs)"
        ),
        "",
    ]
    title = "Best trial" if len(names) == 1 else "Pareto front (best first by the first objective)"
    lines += [f"## {title}", ""]
    for best in s["best"] or []:
        values = ", ".join(f"{n} = {_fmt(v)}" for n, v in best["values"].items())
        lines += [f"Trial {best['number']}: {values}", "", "| parameter | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in best["params"].items()]
        command = best["command"] or "(run dir missing)"
        lines += ["", "Run it again (a single run, same seed; paste it into any shell):", "", "```", command, "```", ""]
    if s["best"]:
        lines += ["Its checkpoint and `best_hyperparameters.yaml` are in `best/`.", ""]
    else:
        lines += ["No trial completed.", ""]
    for name, found in s["importances"].items():
        if found:
            lines += [f"## Parameter importances ({name}, fANOVA)", "", "| parameter | importance |", "|---|---|"]
            lines += [f"| {k} | {v:.3f} |" for k, v in found.items()] + [""]
    lines += ["## Plots", ""] + [f"![{p.stem}]({p.as_posix()})" for p in plots] + [""]
    lines += [
        "## Trials",
        "",
        f"| # | state | {' | '.join(names)} | duration s | epochs | pruned at epoch | note |",
        "|---" * (6 + len(names)) + "|",
    ]
    for r in s["trials"]:
        values = r["values"] or [None] * len(names)
        lines.append(
            f"| {r['number']} | {r['state']} | {' | '.join(_fmt(v) for v in values)} | "
            f"{_fmt(r['duration_s'])} | {_fmt(r['epochs'])} | {_fmt(r['pruned_at_epoch'])} | "
            f"{(r['note'] or '').replace('|', '/')[:120]} |"
        )
    return "\n".join(lines) + "\n"
