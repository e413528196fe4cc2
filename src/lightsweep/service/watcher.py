"""The service's background loop: follows every running job (its process, its study), turns what changed
into events, finishes jobs whose process ended, and starts queued jobs while fewer than --max-running run.

What a client has been told is the job's event log: on a restart the watcher rebuilds each job's view of its
trials from the stored events, so it announces only what changed since, and a client resuming from its
Last-Event-ID misses nothing."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from lightsweep.service import processes, stopping
from lightsweep.service.store import COMPLETED, FAILED, INTERRUPTED, QUEUED, RUNNING, STOPPED, Event, Job, JobStore

TrialView = dict[int, tuple[str, int | None]]  # trial number -> (state, last reported epoch)
STOP_REASON = "POST /jobs/{id}/stop during this trial"


class Watcher:
    def __init__(self, store: JobStore, max_running: int, env: dict[str, str] | None = None) -> None:
        self.store = store
        self.max_running = max_running
        self.env = {**(env or os.environ), "PYTHONUNBUFFERED": "1"}
        self.lock = threading.RLock()  # one change of a job at a time: the loop's tick or a request
        self._children: dict[str, subprocess.Popen] = {}  # jobs this server started: reaped through Popen
        self._views: dict[str, TrialView] = {}
        self._studies: dict[str, Any] = {}
        self.progress: dict[str, dict[str, Any]] = {}  # job id -> the latest progress, served from memory

    # -- the loop -----------------------------------------------------------------------------------------
    def reconcile(self) -> list[Event]:
        """On start: a running job whose process lives on is re-attached; one whose process is gone ends."""
        events: list[Event] = []
        with self.lock:
            for job in self.store.jobs(RUNNING):
                if processes.alive(job.pid, job.pid_start):
                    events += self._emit(job, [("job", {"state": RUNNING, "message": "re-attached after a restart"})])
                else:
                    events += self._follow_trials(job) + self._finish(job)
        return events

    def tick(self) -> list[Event]:
        events: list[Event] = []
        with self.lock:
            for job in self.store.jobs(RUNNING):
                ended = not self._running(job)  # read before the trials: their last change is then seen
                events += self._follow_trials(job)
                if ended:
                    events += self._finish(job)
            events += self._start_queued()
        return events

    # -- requests -----------------------------------------------------------------------------------------
    def submit(self, job: Job) -> list[Event]:
        with self.lock:
            self.store.add(job)
            return self._emit(job, [("job", {"state": QUEUED, "message": "submitted"})]) + self._start_queued()

    def stop(self, job_id: str) -> tuple[Job, list[Event]]:
        """A queued job leaves the queue; a running one's process group is stopped (the loop finishes it)."""
        with self.lock:
            job = self.store.get(job_id)
            if job.state == QUEUED:
                job = self.store.update(job_id, state=STOPPED, finished_at=time.time(), message="stopped in the queue")
                return job, self._emit(job, [("job", {"state": STOPPED, "message": job.message})])
            job = self.store.update(job_id, stop_requested=True, message="stopping")
            stopping.request_stop(
                _sweep_dir(job), self._running_trials(job), STOP_REASON.format(id=job.id), group=job.pid
            )
            processes.stop_group(job.pid)
            return job, self._emit(job, [("job", {"state": RUNNING, "message": "stopping"})])

    def resume(self, job_id: str) -> tuple[Job, list[Event]]:
        with self.lock:
            job = self.store.update(job_id, state=QUEUED, queued_at=time.time(), message="resumed", finished_at=None)
            return job, self._emit(job, [("job", {"state": QUEUED, "message": "resumed"})]) + self._start_queued()

    # -- internals ----------------------------------------------------------------------------------------
    def _start_queued(self) -> list[Event]:
        events: list[Event] = []
        waiting = sorted(self.store.jobs(QUEUED), key=lambda job: job.queued_at)
        free = self.max_running - len(self.store.jobs(RUNNING))
        for job in waiting[: max(free, 0)]:
            child = processes.launch(Path(job.job_dir), job.arguments, self.env)
            self._children[job.id] = child
            job = self.store.update(
                job.id,
                state=RUNNING,
                pid=child.pid,
                pid_start=processes.start_ticks(child.pid),
                started_at=time.time(),
                finished_at=None,
                exit_code=None,
                stop_requested=False,
                message="",
                runs=job.runs + 1,
            )
            events += self._emit(job, [("job", {"state": RUNNING, "message": f"started (run {job.runs})"})])
        return events

    def _running(self, job: Job) -> bool:
        child = self._children.get(job.id)
        if child is not None:
            return child.poll() is None
        return processes.alive(job.pid, job.pid_start)

    def _follow_trials(self, job: Job) -> list[Event]:
        study = self._study(job)
        now = study.snapshot()
        seen = self._view(job)
        changes = trial_changes(seen, now, study)
        # The view becomes what these events tell, not `now`: epochs read after the snapshot (a trial reports
        # on between the two reads) are then not sent twice, and a WAITING trial still gets its start later.
        self._views[job.id] = told(seen, changes)
        self.progress[job.id] = study.progress()
        return self._emit(job, changes)

    def _finish(self, job: Job) -> list[Event]:
        code = processes.exit_code(Path(job.job_dir))
        if code == 0:  # also when a stop came too late to matter
            state, message = COMPLETED, "finished"
        elif job.stop_requested:
            state, message = STOPPED, "stopped on request"
            self._record_stopped(job)
        elif code is None or code == 130 or code < 0:  # killed, or interrupted: resume finishes it
            state, message = INTERRUPTED, "the job's process ended without finishing: resume it"
        else:
            state, message = FAILED, _last_error(Path(job.job_dir)) or f"exit code {code}"
        self._children.pop(job.id, None)
        job = self.store.update(job.id, state=state, exit_code=code, finished_at=time.time(), message=message)
        events = self._follow_trials(job)  # trials the stop recorded
        return events + self._emit(job, [("job", {"state": state, "exit_code": code, "message": message})])

    def _record_stopped(self, job: Job) -> None:
        """Trials left RUNNING by a stopped job (killed before its sweeper recorded them) are FAIL "stopped",
        not counted: resume reruns them."""
        reason = "stopped: " + STOP_REASON.format(id=job.id)
        stopping.mark_stopped(_sweep_dir(job), self._running_trials(job), reason, group=job.pid)

    def _running_trials(self, job: Job) -> list[int]:
        return [number for number, (state, _) in self._study(job).snapshot().items() if state == "RUNNING"]

    def _study(self, job: Job) -> Any:
        from lightsweep.service.studies import JobStudy

        if job.id not in self._studies:
            self._studies[job.id] = JobStudy(_sweep_dir(job))
        return self._studies[job.id]

    def _view(self, job: Job) -> TrialView:
        """What the job's events have told so far (rebuilt from the event log after a restart)."""
        if job.id not in self._views:
            self._views[job.id] = told({}, [(e.kind, e.data) for e in self.store.events(job.id, limit=10**9)])
        return self._views[job.id]

    def _emit(self, job: Job, changes: list[tuple[str, dict[str, Any]]]) -> list[Event]:
        return self.store.append_events(job.id, changes)


FINAL_EVENTS = {"COMPLETE": "trial_finished", "PRUNED": "trial_pruned", "FAIL": "trial_failed"}


def trial_changes(seen: TrialView, now: TrialView, study: Any) -> list[tuple[str, dict[str, Any]]]:
    """The events that take a client from `seen` to `now`, in order: started, each new epoch, the end."""
    changes: list[tuple[str, dict[str, Any]]] = []
    for number, (state, epoch) in sorted(now.items()):
        old_state, old_epoch = seen.get(number, (None, None))
        if old_state is None and state != "WAITING":
            changes.append(("trial_started", {"number": number}))
        if epoch is not None and (old_epoch is None or epoch > old_epoch):
            for step, value in study.epochs(number, after=old_epoch):
                changes.append(("epoch", {"number": number, "epoch": step, "value": value}))
        if state != old_state and state in FINAL_EVENTS:
            changes.append((FINAL_EVENTS[state], study.outcome(number)))
    return changes


def told(seen: TrialView, events: list[tuple[str, dict[str, Any]]]) -> TrialView:
    """What a client knows after `seen` and then `events`."""
    view = dict(seen)
    for kind, data in events:
        _apply_event(view, kind, data)
    return view


def _apply_event(view: TrialView, kind: str, data: dict[str, Any]) -> None:
    number = data.get("number")
    if kind == "trial_started":
        view[number] = ("RUNNING", None)
    elif kind == "epoch":
        view[number] = (view.get(number, ("RUNNING", None))[0], data["epoch"])
    elif kind in FINAL_EVENTS.values():
        state = next(s for s, k in FINAL_EVENTS.items() if k == kind)
        view[number] = (state, view.get(number, (None, None))[1])


def _sweep_dir(job: Job) -> Path:
    return Path(job.job_dir) / "sweep"


def _last_error(job_dir: Path) -> str | None:
    """The last line of the job's log that says what went wrong (the CLI prints one line per error)."""
    try:
        lines = (job_dir / "job.log").read_text(errors="replace").splitlines()
    except OSError:
        return None
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [None])[-1]
