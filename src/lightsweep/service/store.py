"""The service's own records: its jobs and their events, in a SQLAlchemy database (a SQLite file in the
service home by default, any SQLAlchemy URL with --db). Trials are not copied here: they live in each job's
Optuna storage and run.json files. The server is the only writer, so the jobs are also kept in memory:
reads (GET /jobs/{id}, polled by every client) never touch the database."""

from __future__ import annotations

import bisect
import json
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

QUEUED, RUNNING, COMPLETED, FAILED, STOPPED, INTERRUPTED = (
    "queued",
    "running",
    "completed",
    "failed",
    "stopped",
    "interrupted",
)
STATES = (QUEUED, RUNNING, COMPLETED, FAILED, STOPPED, INTERRUPTED)
FINISHED = (COMPLETED, FAILED, STOPPED, INTERRUPTED)
RESUMABLE = (FAILED, STOPPED, INTERRUPTED)  # rerunning the same sweep command resumes its study


@dataclass(frozen=True)
class Job:
    id: str
    kind: str  # sweep | run
    request: dict[str, Any]
    arguments: list[str]  # after train.py: the exact command line, built from the validated request
    job_dir: str
    state: str = QUEUED
    created_at: float = field(default_factory=time.time)
    queued_at: float = field(default_factory=time.time)  # the queue's order: submitted or resumed
    started_at: float | None = None
    finished_at: float | None = None
    pid: int | None = None  # the job's runner, leader of its own process group
    pid_start: int | None = None  # its start time in clock ticks: a reused pid is not our process
    exit_code: int | None = None
    stop_requested: bool = False
    message: str = ""
    runs: int = 0  # times launched (1 + resumes)

    def public(self) -> dict[str, Any]:
        record = asdict(self)
        for private in ("pid", "pid_start", "job_dir"):
            record.pop(private)
        return record


@dataclass(frozen=True)
class Event:
    id: int  # increasing over the whole service: the SSE event id a client resumes from
    job_id: str
    kind: str
    data: dict[str, Any]
    at: float


class JobStore:
    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        connect_args = {"check_same_thread": False, "timeout": 30} if url.startswith("sqlite") else {}
        self.engine = sa.create_engine(url, connect_args=connect_args)
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_wal)
        meta = sa.MetaData()
        self.jobs_table = sa.Table(
            "jobs",
            meta,
            sa.Column("id", sa.String(36), primary_key=True),
            sa.Column("record", sa.Text, nullable=False),  # the Job as JSON: one schema, no column per field
            sa.Column("created_at", sa.Float, nullable=False, index=True),
        )
        self.events_table = sa.Table(
            "events",
            meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("job_id", sa.String(36), nullable=False, index=True),
            sa.Column("kind", sa.String(32), nullable=False),
            sa.Column("data", sa.Text, nullable=False),
            sa.Column("at", sa.Float, nullable=False),
        )
        meta.create_all(self.engine)
        self._lock = threading.Lock()
        self._fresh: dict[str, list[Event]] = {}  # each job's events appended since this server started
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(self.jobs_table.c.record).order_by(self.jobs_table.c.created_at))
            self._jobs = {job.id: job for job in (Job(**json.loads(r[0])) for r in rows)}

    def add(self, job: Job) -> Job:
        with self._lock, self.engine.begin() as conn:
            conn.execute(
                self.jobs_table.insert().values(id=job.id, record=json.dumps(asdict(job)), created_at=job.created_at)
            )
            self._jobs[job.id] = job
        return job

    def update(self, job_id: str, **changes: Any) -> Job:
        with self._lock, self.engine.begin() as conn:
            job = replace(self._jobs[job_id], **changes)
            conn.execute(
                self.jobs_table.update().where(self.jobs_table.c.id == job_id).values(record=json.dumps(asdict(job)))
            )
            self._jobs[job_id] = job
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def jobs(self, state: str | None = None) -> list[Job]:
        """In submission order."""
        return [job for job in self._jobs.values() if state is None or job.state == state]

    def append_events(self, job_id: str, events: list[tuple[str, dict[str, Any]]]) -> list[Event]:
        if not events:
            return []
        now = time.time()
        stored = []
        with self._lock, self.engine.begin() as conn:
            for kind, data in events:
                result = conn.execute(
                    self.events_table.insert().values(job_id=job_id, kind=kind, data=json.dumps(data), at=now)
                )
                stored.append(Event(result.inserted_primary_key[0], job_id, kind, data, now))
            self._fresh.setdefault(job_id, []).extend(stored)
        return stored

    def events(self, job_id: str, after: int = 0, limit: int = 1000) -> list[Event]:
        """The job's events with id > after, oldest first: from memory when they all came since the start
        (every SSE subscriber asks after each new event), else from the database."""
        fresh = self._fresh.get(job_id, [])
        if fresh and after >= fresh[0].id - 1:
            start = bisect.bisect_right(fresh, after, key=lambda event: event.id)
            return fresh[start : start + limit]
        import sqlalchemy as sa

        table = self.events_table
        query = sa.select(table).where(table.c.job_id == job_id, table.c.id > after).order_by(table.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [Event(r.id, r.job_id, r.kind, json.loads(r.data), r.at) for r in conn.execute(query)]


def _sqlite_wal(connection: Any, _record: Any) -> None:
    # WAL: SSE readers catching up never block the watcher's writes.
    connection.execute("PRAGMA journal_mode=WAL")
