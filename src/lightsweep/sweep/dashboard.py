"""`lightsweep dashboard [STORAGE]`: optuna-dashboard for a study storage, served on its own free port (its
frontend uses root-absolute paths, so it cannot live under a sub-path of another app)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lightsweep.errors import ConfigError
from lightsweep.sweep.study import STUDY_JSON, open_storage, read_study_json

SWEEP_DB = "optuna.db"  # a sweep's default storage: sqlite:///<sweep dir>/optuna.db (conf/sweep/*.yaml)


def resolve_storage(target: str | None, cwd: Path) -> str:
    """A storage URL from a URL, a sweep dir, an SQLite file, or (None) the newest multirun/*/optuna.db."""
    if target and "://" in target:
        return target
    path = Path(target) if target else _newest_sweep_db(cwd)
    if not path.is_absolute():
        path = cwd / path
    if path.is_dir() and (path / STUDY_JSON).is_file():
        return read_study_json(path)["storage"]
    if path.is_dir():
        path = path / SWEEP_DB
    if not path.is_file():
        raise ConfigError(
            f"{path} does not exist: pass a storage URL (sqlite:///..., postgresql://..., journal:///...), a sweep "
            f"dir or its {SWEEP_DB} file."
        )
    return f"sqlite:///{path.resolve()}"


def _newest_sweep_db(cwd: Path) -> Path:
    found = sorted((cwd / "multirun").glob(f"*/{SWEEP_DB}"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise ConfigError(
            f"no study storage here: {cwd}/multirun/*/{SWEEP_DB} does not exist. Run a sweep first "
            "(python train.py -m +sweep=simple) or pass a storage URL, a sweep dir or an SQLite file."
        )
    return found[-1]


def dashboard_app(storage: str) -> Any:
    """optuna-dashboard's WSGI application for a storage URL (opened here: it knows no journal:// URLs)."""
    try:
        from optuna_dashboard import wsgi
    except ImportError:
        raise ConfigError("optuna-dashboard is not installed: pip install -e '.[serve]'.") from None
    return wsgi(open_storage(storage))


def bind(app: Any, host: str = "127.0.0.1", port: int = 0) -> Any:
    """A threaded WSGI server for `app` bound to host:port (0: a free port; server_port says which), not yet
    serving: the caller runs serve_forever() (the service runs one per job in a thread)."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIServer, make_server

    class ThreadedServer(ThreadingMixIn, WSGIServer):  # the page loads several API routes at once
        daemon_threads = True

    return make_server(host, port, app, server_class=ThreadedServer)


def serve(storage: str, host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve optuna-dashboard until interrupted; port 0 takes a free port. Prints the URL first."""
    with bind(dashboard_app(storage), host, port) as server:
        print(
            f"Optuna dashboard for {storage}: http://{host}:{server.server_port}/dashboard/ (Ctrl-C to stop)",
            flush=True,
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


def main(args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="lightsweep dashboard", description=__doc__)
    parser.add_argument(
        "storage", nargs="?", help=f"storage URL, sweep dir or SQLite file (default: the newest multirun/*/{SWEEP_DB})"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    options = parser.parse_args(args)
    serve(resolve_storage(options.storage, Path.cwd()), options.host, options.port)
