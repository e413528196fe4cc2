"""The job routes: submit (POST /optimize, POST /jobs), list, inspect, stop, resume, the trials read from
each job's study, files, the ZIP download and the Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from lightsweep.paths import PROJECT_ROOT
from lightsweep.service import archive
from lightsweep.service.request import OptimizeRequest, RequestInvalid, hydra_arguments, validate
from lightsweep.service.responses import refusals
from lightsweep.service.store import FINISHED, QUEUED, RESUMABLE, RUNNING, STATES, Job
from lightsweep.service.studies import JobStudy

router = APIRouter(tags=["jobs"])
KEEPALIVE_S = 15.0
SUBMITTED = {200: {"description": "validate_only=true: the resolved config; no job"}, **refusals(400, 413)}
UNKNOWN_JOB = refusals(404)
STATE_CONFLICT = refusals(404, 409)


def job_or_404(request: Request, job_id: str) -> Job:
    """The job with this id; 404 for an unknown or malformed one (ids are UUIDs)."""
    job = request.app.state.store.get(job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id[:64]!r}: GET /jobs lists the jobs and their ids")
    return job


def job_view(request: Request, job: Job) -> dict[str, Any]:
    """A job as the API shows it: its record, progress (from memory) and the exact command."""
    record = job.public()
    for key in ("created_at", "queued_at", "started_at", "finished_at"):
        record[key] = _iso(record[key])
    command = [sys.executable, str(PROJECT_ROOT / "train.py"), *job.arguments]
    record["command"] = f"cd {shlex.quote(job.job_dir)} && {shlex.join(command)}"
    known = request.app.state.watcher.progress
    if job.id not in known:  # a job not followed since the start: read once (the watcher updates running ones)
        known[job.id] = _study(job).progress()
    record["progress"] = known[job.id]
    return record


@router.post(
    "/optimize", status_code=202, responses=SUBMITTED, summary="Start a sweep (or a single run) from typed parameters"
)
@router.post("/jobs", status_code=202, responses=SUBMITTED, summary="Same as POST /optimize")
async def optimize(
    body: OptimizeRequest,
    request: Request,
    validate_only: bool = Query(False, description="compose and validate only: the resolved config, no job"),
) -> Any:
    try:
        resolved = await asyncio.to_thread(validate, body)
    except RequestInvalid as exc:
        return JSONResponse(
            {"detail": [{"loc": ["body"], "msg": problem, "type": "value_error"} for problem in exc.problems]},
            status_code=422,
        )
    if validate_only:
        return JSONResponse({"valid": True, "config": resolved}, status_code=200)
    job_id = str(uuid.uuid4())
    job_dir = request.app.state.home / "jobs" / job_id
    job_dir.mkdir(parents=True)
    job = Job(
        id=job_id,
        kind=body.kind,
        request=body.model_dump(),
        arguments=hydra_arguments(body, job_dir / "sweep"),
        job_dir=str(job_dir),
    )
    await _publish(request, request.app.state.watcher.submit, job)
    return job_view(request, request.app.state.store.get(job_id))


@router.get("/jobs", summary="Jobs in submission order, paged, optionally of one state")
async def jobs(
    request: Request,
    state: Literal[STATES] | None = Query(None, description="only the jobs in this state"),
    offset: int = Query(0, ge=0, le=10**9),
    limit: int = Query(50, ge=1, le=500),
) -> dict[str, Any]:
    found = request.app.state.store.jobs(state)
    page = found[offset : offset + limit]
    return {"jobs": [job_view(request, j) for j in page], "total": len(found), "offset": offset, "limit": limit}


@router.get(
    "/jobs/{job_id}", responses=UNKNOWN_JOB, summary="State, progress, timestamps and the exact command of a job"
)
async def job(job_id: str, request: Request) -> dict[str, Any]:
    return job_view(request, job_or_404(request, job_id))


@router.post(
    "/jobs/{job_id}/stop",
    status_code=202,
    responses=STATE_CONFLICT,
    summary="Stop a job's process group (or take it off the queue)",
)
async def stop(job_id: str, request: Request) -> dict[str, Any]:
    found = job_or_404(request, job_id)
    if found.state not in (QUEUED, RUNNING) or found.stop_requested:
        raise HTTPException(
            409, f"job {job_id} is {found.state}{' and stopping' * found.stop_requested}: nothing to stop"
        )
    job = await _publish(request, request.app.state.watcher.stop, job_id)
    return job_view(request, job)


@router.post(
    "/jobs/{job_id}/resume",
    status_code=202,
    responses=STATE_CONFLICT,
    summary="Rerun a stopped, failed or interrupted job's command",
)
async def resume(job_id: str, request: Request) -> dict[str, Any]:
    found = job_or_404(request, job_id)
    if found.state not in RESUMABLE:
        raise HTTPException(409, f"job {job_id} is {found.state}: only {', '.join(RESUMABLE)} jobs can be resumed")
    job = await _publish(request, request.app.state.watcher.resume, job_id)
    return job_view(request, job)


@router.get("/jobs/{job_id}/trials", responses=UNKNOWN_JOB, summary="Every trial: state, params, value, epochs, health")
def trials(job_id: str, request: Request) -> dict[str, Any]:
    return {"trials": _study(job_or_404(request, job_id)).trials()}


@router.get(
    "/jobs/{job_id}/current-trial",
    responses=UNKNOWN_JOB,
    summary="The running trial and its last reported epoch (or null)",
)
def current_trial(job_id: str, request: Request) -> dict[str, Any]:
    return {"trial": _study(job_or_404(request, job_id)).current_trial()}


@router.get(
    "/jobs/{job_id}/best-trial",
    responses=UNKNOWN_JOB,
    summary="The best trial: params, value, health, command to rerun it",
)
def best_trial(job_id: str, request: Request) -> dict[str, Any]:
    return {"trial": _study(job_or_404(request, job_id)).best_trial()}


@router.get(
    "/jobs/{job_id}/trends",
    responses=UNKNOWN_JOB,
    summary="Objective and best-so-far per trial, health, epochs per trial",
)
def trends(job_id: str, request: Request) -> dict[str, Any]:
    return _study(job_or_404(request, job_id)).trends()


@router.get("/jobs/{job_id}/files", responses=UNKNOWN_JOB, summary="The job's files (names usable with /files/{name})")
def files(job_id: str, request: Request) -> dict[str, Any]:
    return {"files": archive.listing(Path(job_or_404(request, job_id).job_dir))}


@router.get(
    "/jobs/{job_id}/files/{name:path}",
    responses={200: {"content": {"*/*": {}}}, **UNKNOWN_JOB},
    summary="One file of the job's listing, by its listed name",
)
def file(job_id: str, name: str, request: Request) -> FileResponse:
    path = archive.resolve_listed(Path(job_or_404(request, job_id).job_dir), name)
    if path is None:
        raise HTTPException(404, f"no file {name[:100]!r} in this job: GET /jobs/{job_id}/files lists its files")
    return FileResponse(path, filename=path.name)


@router.get(
    "/jobs/{job_id}/download",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}, **UNKNOWN_JOB},
    summary="ZIP of the report, plots, best/, study.json and each trial's records",
)
def download(job_id: str, request: Request) -> StreamingResponse:
    job = job_or_404(request, job_id)
    headers = {"Content-Disposition": f'attachment; filename="lightsweep-{job.id}.zip"'}
    return StreamingResponse(archive.zip_stream(Path(job.job_dir)), media_type="application/zip", headers=headers)


@router.get(
    "/jobs/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **UNKNOWN_JOB},
    summary="Server-Sent Events: job states, trials started/finished, epochs",
)
async def events(
    job_id: str,
    request: Request,
    last_event_id: str | None = Header(None, description="resume after this event id (EventSource sends it)"),
) -> StreamingResponse:
    job = job_or_404(request, job_id)
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_event_stream(request, job.id, after), media_type="text/event-stream", headers=headers)


async def _event_stream(request: Request, job_id: str, after: int) -> AsyncIterator[str]:
    """Everything after `after`, then each new event as it is stored; ends once the job has finished and
    everything was sent (a finished job gets no more events)."""
    store, hub = request.app.state.store, request.app.state.hub
    yield "retry: 2000\n\n"
    while True:
        for event in store.events(job_id, after):
            after = event.id
            yield f"id: {event.id}\nevent: {event.kind}\ndata: {json.dumps({**event.data, 'at': event.at})}\n\n"
        if store.get(job_id).state in FINISHED and not store.events(job_id, after, limit=1):
            return
        latest = hub.latest
        await hub.wait_beyond(max(latest, after), KEEPALIVE_S)
        if hub.latest == latest:
            yield ": keep-alive\n\n"


async def _publish(request: Request, change: Any, *args: Any) -> Job:
    """Run a watcher change in a thread (it may start a process) and wake the subscribers of its events."""
    result = await asyncio.to_thread(change, *args)
    job, events = result if isinstance(result, tuple) else (None, result)
    await request.app.state.hub.publish(events)
    return job


def _study(job: Job) -> JobStudy:
    return JobStudy(Path(job.job_dir) / "sweep")


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")
