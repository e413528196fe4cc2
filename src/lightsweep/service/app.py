"""The FastAPI application of `lightsweep serve`: the catalogue routes, authentication (a bearer token on
every route but GET /health), the request-size limit, and the background loop that follows the jobs
(lightsweep.service.watcher). The job routes are in lightsweep.service.jobs_api."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

import lightsweep
from lightsweep.service import catalog
from lightsweep.service.responses import MAX_BODY_BYTES, refusals
from lightsweep.service.store import JobStore
from lightsweep.service.watcher import Watcher

POLL_S = 0.25  # how often running jobs are read: an epoch reaches subscribers within about this


class EventHub:
    """Wakes SSE subscribers when the loop has stored new events."""

    def __init__(self) -> None:
        self.latest = 0
        self._changed = asyncio.Condition()

    async def publish(self, events: list[Any]) -> None:
        if events:
            async with self._changed:
                self.latest = max(self.latest, events[-1].id)
                self._changed.notify_all()

    async def wait_beyond(self, event_id: int, timeout: float) -> None:
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(lambda: self.latest > event_id), timeout)


def create_app(
    home: Path, token: str, db_url: str | None = None, max_running: int = 1, poll_s: float = POLL_S
) -> FastAPI:
    home = Path(home).resolve()
    (home / "jobs").mkdir(parents=True, exist_ok=True)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = JobStore(db_url or f"sqlite:///{home / 'service.db'}")
        app.state.store, app.state.hub = store, EventHub()
        app.state.watcher = Watcher(store, max_running, env=job_environment())
        await app.state.hub.publish(await asyncio.to_thread(app.state.watcher.reconcile))
        threading.Thread(target=_warm_catalog, daemon=True, name="warm-catalog").start()
        loop = asyncio.create_task(_follow_jobs(app, poll_s))
        yield
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        store.engine.dispose()

    app = FastAPI(
        title="lightsweep service",
        version=lightsweep.__version__,
        description="Launch, watch, stop and resume lightsweep sweeps; read their trials; stream progress.",
        lifespan=lifespan,
    )
    app.state.home = home
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    authorized = [Depends(BearerToken(token))]

    @app.get("/health", tags=["service"], summary="Version, CUDA, and which executors answer now (no token)")
    async def health() -> dict[str, Any]:
        return {
            "status": "healthy",
            "version": lightsweep.__version__,
            "cuda": await asyncio.to_thread(catalog.cuda),
            "executors": await asyncio.to_thread(catalog.executors),
        }

    catalogue = APIRouter(tags=["catalog"], dependencies=authorized, responses=refusals(401))

    @catalogue.get("/datasets", summary="Datasets, modality, files present")
    async def datasets() -> dict[str, Any]:
        return {"datasets": await asyncio.to_thread(catalog.datasets, job_environment()["LIGHTSWEEP_DATA_DIR"])}

    @catalogue.get("/modes", summary="Objective modes: simple, health")
    async def modes() -> dict[str, Any]:
        return {"modes": catalog.modes()}

    @catalogue.get("/objectives", summary="Objectives and their directions")
    async def objectives() -> dict[str, Any]:
        return {"objectives": catalog.objectives()}

    app.include_router(catalogue)
    from lightsweep.service.jobs_api import router
    from lightsweep.service.pages import include_pages

    app.include_router(router, dependencies=authorized, responses=refusals(401))
    include_pages(app, authorized)
    return app


async def _follow_jobs(app: FastAPI, poll_s: float) -> None:
    while True:
        try:
            await app.state.hub.publish(await asyncio.to_thread(app.state.watcher.tick))
        except Exception:  # a bad tick (e.g. a study file mid-write) must not end the loop for good
            import logging

            logging.getLogger(__name__).exception("the job watcher failed; retrying")
        await asyncio.sleep(poll_s)


def _warm_catalog() -> None:
    """The catalogue's first answers import torch and the dataset classes and ask SLURM (seconds): get them
    while nobody waits, so that the first GET /health or /datasets is quick."""
    catalog.cuda()
    catalog.executors()
    catalog.datasets(job_environment()["LIGHTSWEEP_DATA_DIR"])


def job_environment() -> dict[str, str]:
    """The server's environment for its jobs; data and cache dirs made absolute, since jobs run elsewhere."""
    env = dict(os.environ)
    env["LIGHTSWEEP_DATA_DIR"] = str(Path(env.get("LIGHTSWEEP_DATA_DIR", "data")).resolve())
    if "LIGHTSWEEP_CACHE_DIR" in env:
        env["LIGHTSWEEP_CACHE_DIR"] = str(Path(env["LIGHTSWEEP_CACHE_DIR"]).resolve())
    env.pop("HYDRA_FULL_ERROR", None)
    return env


BEARER = HTTPBearer(auto_error=False, description="the token in LIGHTSWEEP_API_TOKEN or <home>/api_token")


class BearerToken:
    """The dependency of every route but GET /health: 401 unless the request carries the token."""

    def __init__(self, token: str) -> None:
        self.token = token.encode()

    async def __call__(self, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> None:
        given = credentials.credentials.encode() if credentials else b""
        if not hmac.compare_digest(given, self.token):  # constant time: no guessing byte by byte
            raise HTTPException(
                401,
                "missing or wrong bearer token: send 'Authorization: Bearer <token>' (LIGHTSWEEP_API_TOKEN, or the "
                "token the server printed and saved in <home>/api_token).",
                headers={"WWW-Authenticate": "Bearer"},
            )


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 without each error's copy of the input: a NaN or Infinity sent there cannot be written
    back as JSON (FastAPI's own handler then fails with a 500); the message and location say what was wrong."""
    errors = [{key: value for key, value in error.items() if key != "input"} for error in exc.errors()]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, whether announced by Content-Length or streamed."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await _refuse(scope, receive, send, 413 if declared.isdigit() else 400)
        if scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS") and declared is None:
            return await self.app(scope, receive, send)  # no body: keep `receive` for disconnects (SSE)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                return await _refuse(scope, receive, send, 413)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


async def _refuse(scope: dict, receive: Any, send: Any, status: int) -> None:
    detail = (
        f"the request body is over {MAX_BODY_BYTES // 1024} KiB: send a smaller one"
        if status == 413
        else "Content-Length is not a number of bytes"
    )
    await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
