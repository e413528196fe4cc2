"""The service's web page: `/` and its static files (shipped in the package, served without a token: the page
asks for the token once and sends it with every API call), and, behind the token, optuna-dashboard for a
job's study on a loopback port (lightsweep.sweep.dashboard), admitted by a key in the link it returns."""

from __future__ import annotations

import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel

from lightsweep.errors import ConfigError
from lightsweep.service.jobs_api import job_or_404
from lightsweep.service.responses import Problem, refusals

STATIC = Path(__file__).parent / "static"
# Served by name from this fixed set: no path from the URL reaches the filesystem.
STATIC_FILES = {path.name: path for path in STATIC.iterdir() if path.is_file()}
# The page holds the API token, so it runs only its own files and talks only to this server.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidated: a new version of the package shows at once
}
MAX_DASHBOARDS = 8  # optuna-dashboards kept serving; the oldest is shut down beyond this

pages = APIRouter(include_in_schema=False)
dashboards = APIRouter(tags=["jobs"])


@pages.get("/")
def index() -> FileResponse:
    return FileResponse(STATIC_FILES["index.html"], headers=PAGE_HEADERS)


@pages.get("/static/{name}")
def static(name: str) -> FileResponse:
    if name not in STATIC_FILES:
        raise HTTPException(404, f"no static file {name[:100]!r}")
    return FileResponse(STATIC_FILES[name], headers=PAGE_HEADERS)


class DashboardLink(BaseModel):
    url: str  # open on this machine (the dashboard listens on loopback); the link carries the key that admits it
    study_name: str


@dashboards.post(
    "/jobs/{job_id}/optuna-dashboard",
    responses={**refusals(404, 409), 503: {"model": Problem, "description": "optuna-dashboard is not installed"}},
    summary="Start optuna-dashboard on the job's study (loopback, a free port) and return its link",
)
def optuna_dashboard(job_id: str, request: Request) -> DashboardLink:
    from lightsweep.sweep.study import read_study_json

    job = job_or_404(request, job_id)
    try:
        study = read_study_json(Path(job.job_dir) / "sweep")
    except ConfigError:
        raise HTTPException(
            409, f"job {job.id} has no study yet (a single run, or a sweep before its start): try once it runs"
        ) from None
    try:
        url = _running.url(job.id, study["storage"])
    except ConfigError as exc:
        raise HTTPException(503, str(exc)) from None
    return DashboardLink(url=url, study_name=study["study_name"])


class _Dashboards:
    """One optuna-dashboard per job, each serving in a daemon thread (it ends with the server)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._servers: OrderedDict[str, tuple[Any, str]] = OrderedDict()  # job id -> (server, its link)

    def url(self, job_id: str, storage: str) -> str:
        from lightsweep.sweep.dashboard import bind, dashboard_app

        with self._lock:
            if job_id not in self._servers:
                key = secrets.token_urlsafe(24)
                gate = KeyGate(dashboard_app(storage), key, cookie=f"lightsweep-dashboard-{job_id}")
                server = bind(gate, "127.0.0.1", 0)
                threading.Thread(target=server.serve_forever, daemon=True, name=f"optuna-dashboard-{job_id}").start()
                link = f"http://127.0.0.1:{server.server_port}/dashboard/?key={key}"
                self._servers[job_id] = (server, link)
                while len(self._servers) > MAX_DASHBOARDS:
                    oldest, _ = self._servers.popitem(last=False)[1]
                    oldest.shutdown()
                    oldest.server_close()
            self._servers.move_to_end(job_id)
            return self._servers[job_id][1]


_running = _Dashboards()


class KeyGate:
    """WSGI middleware admitting only a browser that opened the link: `?key=` (checked in constant time) gets
    a cookie and a redirect to the same page without the key; later requests need that cookie, anything
    else is 403. optuna-dashboard has no login and can delete studies, and every user of a shared machine
    can reach its loopback port."""

    def __init__(self, app: Callable[..., Iterable[bytes]], key: str, cookie: str) -> None:
        self.app, self.key, self.cookie = app, key, cookie

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        given = parse_qs(environ.get("QUERY_STRING", "")).get("key", [""])[0]
        if given and hmac.compare_digest(given.encode(), self.key.encode()):
            start_response(
                "303 See Other",
                [
                    ("Location", environ.get("PATH_INFO") or "/"),
                    ("Set-Cookie", f"{self.cookie}={self.key}; HttpOnly; SameSite=Strict; Path=/"),
                ],
            )
            return [b""]
        if hmac.compare_digest(self._cookie(environ).encode(), self.key.encode()):
            return self.app(environ, start_response)
        start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"Open optuna-dashboard through the link the lightsweep page (or its API) gives: it carries the key.\n"]

    def _cookie(self, environ: dict[str, Any]) -> str:
        try:
            morsel = SimpleCookie(environ.get("HTTP_COOKIE", "")).get(self.cookie)
        except CookieError:
            return ""
        return morsel.value if morsel else ""


def include_pages(app: Any, authorized: list[Any]) -> None:
    """Add the page (no token) and the optuna-dashboard route (behind `authorized`) to the service's app."""
    app.include_router(pages)
    app.include_router(dashboards, dependencies=authorized, responses=refusals(401))
