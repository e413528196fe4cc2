"""A PostgreSQL server for benchmarks/sweep_scale.py: the local one of tools/postgres (started here when needed)
or one given by URL, and a fresh database on it for every measurement."""

from __future__ import annotations

import subprocess
import uuid
from contextlib import contextmanager

from lightsweep.paths import PROJECT_ROOT

TOOLS = PROJECT_ROOT / "tools" / "postgres"


class Postgres:
    """Fresh databases on one server: every measurement gets an empty study store, dropped afterwards."""

    def __init__(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        self.url = make_url(url)

    @contextmanager
    def database(self):
        import psycopg

        name = f"sweep_scale_{uuid.uuid4().hex[:12]}"
        admin = self.url.set(drivername="postgresql").render_as_string(hide_password=False)  # libpq's form
        with psycopg.connect(admin, autocommit=True) as conn:  # CREATE DATABASE runs outside transactions
            conn.execute(f"CREATE DATABASE {name}")
        try:
            yield self.url.set(database=name).render_as_string(hide_password=False)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE {name} WITH (FORCE)")  # FORCE: a driver's pool left open


def start_postgres(url: str | None) -> tuple[Postgres | None, str, bool]:
    """(the server to measure on, or None and why it is skipped; whether this call started the local one)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return None, "skipped: the PostgreSQL driver is not installed (pip install -e '.[postgres]')", False
    started_here = False
    if url is None:
        started = subprocess.run([TOOLS / "start-postgres.sh"], capture_output=True, text=True, timeout=300)
        if started.returncode != 0:
            reason = (started.stderr.strip().splitlines() or ["no message"])[-1]
            return None, f"skipped: the local server did not start ({reason}); pass --postgres-url URL", False
        url, started_here = started.stdout.split()[-1], "already up" not in started.stdout
    try:
        server = Postgres(url)
        with server.database():
            pass
    except Exception as exc:
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
        return None, f"skipped: cannot create a database on {shown(url)} ({reason})", started_here
    return server, "", started_here


def shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def stop_postgres() -> None:
    subprocess.run([TOOLS / "stop-postgres.sh"], capture_output=True, timeout=120)
