"""`lightsweep serve [--host 127.0.0.1] [--port 8000] [--home DIR] [--db URL] [--max-running N]`."""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

from lightsweep.errors import ConfigError

TOKEN_FILE = "api_token"


def parse(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lightsweep serve", description="the sweep service (REST API + SSE)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--home", default="lightsweep-home", help="service database, token and job folders")
    parser.add_argument("--db", default=None, help="SQLAlchemy URL of the jobs database (default: <home>/service.db)")
    parser.add_argument("--max-running", type=int, default=1, help="jobs running at once; the rest wait in a queue")
    parsed = parser.parse_args(args)
    if not 0 < parsed.port < 65536 or parsed.max_running < 1:
        raise ConfigError("--port must be 1-65535 and --max-running at least 1.")
    return parsed


def api_token(home: Path) -> tuple[str, bool]:
    """(token, whether it was just generated): LIGHTSWEEP_API_TOKEN, else <home>/api_token, else a new one
    written there readable by the owner only."""
    if os.environ.get("LIGHTSWEEP_API_TOKEN"):
        return os.environ["LIGHTSWEEP_API_TOKEN"], False
    path = home / TOKEN_FILE
    if path.exists():
        return path.read_text().strip(), False
    home.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    return token, True


def main(args: list[str]) -> None:
    try:
        import uvicorn
    except ImportError as exc:
        raise ConfigError("lightsweep serve needs the serve extra: pip install -e '.[serve]'") from exc
    from lightsweep.service.app import create_app

    options = parse(args)
    home = Path(options.home).resolve()
    token, generated = api_token(home)
    if generated:
        print(f"lightsweep serve: API token (shown once, saved in {home / TOKEN_FILE}): {token}", flush=True)
    print(f"lightsweep serve: http://{options.host}:{options.port}  (API docs at /docs, home {home})", flush=True)
    app = create_app(home, token, db_url=options.db, max_running=options.max_running)
    uvicorn.run(app, host=options.host, port=options.port, log_level="warning")
