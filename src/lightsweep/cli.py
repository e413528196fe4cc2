"""Command-line entry points: `python train.py ...`, `lightsweep train ...`, `lightsweep reproduce DIR`.

Errors the user can fix print one line and exit 2; `--debug` (or LIGHTSWEEP_DEBUG=1) shows the traceback.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from collections.abc import Callable
from typing import Any

USAGE = """usage: lightsweep <command> [args]

commands:
  train [overrides]            compose a run from conf/ and train it (same as python train.py)
  reproduce RUN_DIR            re-run a run from its .hydra/ snapshot and compare its metrics
  report SWEEP_DIR             (re)write a sweep's report.md, plots/ and best/ from its study
  dashboard [STORAGE]          optuna-dashboard for a study storage (URL, sweep dir or .db file; default:
                               the newest multirun/*/optuna.db) on a free port (--port N to choose)
  serve [--host H] [--port N]  the sweep service: REST API + live events for jobs (--home DIR, --db URL,
                               --max-running N; the serve extra)
  efficiency [overrides]       measure efficiency techniques against the baseline run and combine the best
                               (--techniques a,b --full --repeats N --seeds S...; efficiency --help)
  --help                       this text

add --debug to any command to see full tracebacks"""


def guarded(action: Callable[[], Any]) -> Any:
    """Run `action`; turn config/input errors into one line on stderr and exit code 2."""
    from lightsweep.errors import exit_on_user_error

    if "--debug" in sys.argv:
        os.environ["LIGHTSWEEP_DEBUG"] = "1"
        sys.argv = [arg for arg in sys.argv if arg != "--debug"]
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let errors reach us instead of Hydra's own report
    try:
        return action()
    except Exception as exc:
        exit_on_user_error(exc)
        raise


def train_entry() -> None:
    # Start-up imports (Hydra, torch, Lightning, torchmetrics, scipy) create millions of long-lived objects;
    # the collector's full passes over them cost ~0.7 s while they load and ~1 s at interpreter exit. So it
    # stays off until session.measure has its imports (it then freezes them and turns it on), and at exit
    # the final pass skips everything (run.json, logs, checkpoints and plots are closed by then).
    gc.disable()
    atexit.register(gc.freeze)
    from lightsweep.config import normalize_overrides

    sys.argv = sys.argv[:1] + normalize_overrides(sys.argv[1:])
    sweeps = [a for a in sys.argv[1:] if a.startswith("+sweep=")]
    if sweeps and not {"-m", "--multirun"} & set(sys.argv):
        print(
            f"lightsweep: warning: {sweeps[0].lstrip('+')} sets up an Optuna search, which runs only with -m "
            f"(python train.py -m {sweeps[0].lstrip('+')} ...); without it this is one ordinary training run.",
            file=sys.stderr,
        )
    guarded(_train)


def _train() -> None:
    from lightsweep.train import main as hydra_main

    if not {"--help", "-h", "--hydra-help"} & set(sys.argv):  # --help stays fast: it composes nothing here
        sys.argv = sys.argv[:1] + _with_auto_family(sys.argv[1:])
    hydra_main()


def _with_auto_family(args: list[str]) -> list[str]:
    """Hydra's arguments with model=auto turned into the family it picks when model settings are given or
    `--cfg job` shows the config (lightsweep.config.auto_family_overrides), so that both show the model
    that will be built."""
    from hydra._internal.utils import get_args_parser

    from lightsweep.config import auto_family_overrides

    parsed, _ = get_args_parser().parse_known_args(args)
    shows_job = parsed.cfg == "job"
    overrides, family = auto_family_overrides(parsed.overrides, force=shows_job)
    if family is None:
        return args
    if shows_job:  # stdout stays the YAML alone
        print(f"lightsweep: model=auto picks {family} for this dataset: shown as model={family}.", file=sys.stderr)
    return [arg for arg in args if arg not in parsed.overrides] + overrides


def main() -> None:
    args = sys.argv[1:]
    command = args[0] if args else "--help"
    rest = [a for a in args[1:] if a != "--debug"]  # guarded() reads --debug itself
    if command not in ("train", "efficiency") and any(a in ("--help", "-h") for a in rest):
        print(USAGE)  # `lightsweep reproduce --help`: help, never a run directory named --help
    elif command == "train":
        sys.argv = [sys.argv[0]] + args[1:]
        train_entry()
    elif command == "reproduce" and len(rest) == 1:
        from lightsweep.reproduce import reproduce

        sys.exit(guarded(lambda: reproduce(rest[0])))
    elif command == "report" and len(rest) == 1:
        from lightsweep.sweep.report import write_report

        print(guarded(lambda: write_report(rest[0])))
    elif command == "dashboard":
        from lightsweep.sweep.dashboard import main as dashboard

        guarded(lambda: dashboard(rest))
    elif command == "serve":
        from lightsweep.service.server import main as serve

        guarded(lambda: serve(rest))
    elif command == "efficiency":
        from lightsweep.efficiency.cli import main as efficiency

        sys.exit(guarded(lambda: efficiency(rest)))
    elif command in ("--help", "-h", "help"):
        print(USAGE)
    else:
        print(f"lightsweep: error: unknown command or arguments {' '.join(args)!r}.\n{USAGE}", file=sys.stderr)
        sys.exit(2)
