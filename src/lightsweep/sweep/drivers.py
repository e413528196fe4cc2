"""Many drivers on one study: the same sweep command started on several machines (or several times on one)
shares its study through the storage. What makes that safe, on every storage (SQLite, any SQLAlchemy
server, a journal file), with nothing but trial attributes:

- slots: n_trials is the study's total; every trial counts except one FAIL marked interrupted (stopped,
  lost, surplus), which a driver makes up for. A driver asks for a trial only while slots are open, and a
  trial that two drivers' asks pushed past n_trials (they counted at the same moment) is dropped as surplus
  before it runs, so the study never runs more than n_trials;
- liveness: each driver stamps its running trials with its worker id (host:pid) and a heartbeat (wall
  time, written every heartbeat_interval s). A RUNNING trial whose heartbeat is older than grace_period, or
  whose worker is a process on this host that no longer exists, is lost: any driver records it FAIL with
  the reason, marked interrupted, and re-queues its parameters (WAITING, asked first) up to retry_failed
  times. Optuna's own heartbeat lives in RDBStorage only (not the journal), hence this one.
- a driver ends when the study holds n_trials counted trials and none of them is still running or waiting,
  so a trial lost near the end is still made up for.

Heartbeats compare wall clocks of different machines: keep them in sync (NTP) and grace_period well above
any skew."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lightsweep.sweep.study import INTERRUPTED

log = logging.getLogger(__name__)

WORKER = "worker"  # user attr: "host:pid" of the driver running the trial
HEARTBEAT = "heartbeat"  # user attr: the driver's last sign of life for the trial (unix time)
RETRY_OF = "retry_of"  # user attr of a re-queued trial: the number of the first trial of its chain
RETRIES = "retries"  # user attr of a re-queued trial: how many times its parameters were re-queued


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Liveness:
    heartbeat_interval: float  # seconds between two heartbeats of a running trial
    grace_period: float  # seconds without a heartbeat after which a trial's worker is lost
    retry_failed: int  # times the parameters of a lost trial are re-queued


@dataclass(frozen=True)
class Slots:
    counted: int  # trials that count towards n_trials (finished, running or waiting)
    unfinished: int  # of those, running or waiting (in any driver)
    waiting: int  # re-queued trials no driver has taken yet


def _is_surplus_or_stopped(trial: Any) -> bool:
    return trial.state.name == "FAIL" and bool(trial.user_attrs.get(INTERRUPTED))


def counted_trials(trials: Iterable[Any]) -> list[Any]:
    """The trials that count towards n_trials: all but the FAIL ones marked interrupted (made up for). A
    trial that finished on its own while another driver was marking it lost keeps its own outcome."""
    return [t for t in trials if not _is_surplus_or_stopped(t)]


def slots(study: Any) -> Slots:
    counted = counted_trials(study.get_trials(deepcopy=False))
    unfinished = [t for t in counted if t.state.name in ("RUNNING", "WAITING")]
    return Slots(len(counted), len(unfinished), sum(t.state.name == "WAITING" for t in unfinished))


def claim(study: Any, trial: Any, n_trials: int) -> bool:
    """Stamp a freshly asked trial with this worker and a first heartbeat; False when it is surplus: the
    study already held n_trials counted trials before it (two drivers asked at the same moment), and it is
    then recorded FAIL "surplus", not counted, never run."""
    earlier = [t for t in counted_trials(study.get_trials(deepcopy=False)) if t.number < trial.number]
    storage, trial_id = study._storage, trial._trial_id
    storage.set_trial_user_attr(trial_id, WORKER, this_worker())
    storage.set_trial_user_attr(trial_id, HEARTBEAT, time.time())
    if len(earlier) < n_trials:
        return True
    _record_interrupted(study, trial_id, f"surplus: the study already had its {n_trials} trials when it was asked")
    log.info(f"Trial {trial.number} dropped: other drivers filled the study's {n_trials} trials meanwhile")
    return False


def fail_lost_trials(study: Any, liveness: Liveness, now: float | None = None) -> list[int]:
    """Record the study's RUNNING trials whose worker is lost as FAIL (interrupted, with the reason) and
    re-queue their parameters while retries are left; return their numbers. Safe from several drivers at
    once: the storage lets only one of them finish a trial, and only that one re-queues it."""
    from optuna.exceptions import UpdateFinishedTrialError

    now = time.time() if now is None else now
    lost = []
    for trial in study.get_trials(deepcopy=False, states=_running()):
        reason = lost_reason(trial, liveness.grace_period, now)
        if reason is None:
            continue
        try:
            _record_interrupted(study, trial._trial_id, reason)
        except UpdateFinishedTrialError:  # it finished meanwhile, or another driver recorded it first
            continue
        log.warning(f"Trial {trial.number}: {reason}; recorded as FAIL, not counted towards n_trials")
        lost.append(trial.number)
        _requeue(study, trial, liveness.retry_failed)
    return lost


def worker_address(user_attrs: dict[str, Any]) -> tuple[str, int] | None:
    """(host, pid) of the driver running a trial, from its worker attr; None before a driver stamped it."""
    host, _, pid = str(user_attrs.get(WORKER) or "").rpartition(":")
    return (host, int(pid)) if host and pid.isdigit() else None


def lost_reason(trial: Any, grace_period: float, now: float) -> str | None:
    """Why a RUNNING trial's worker is lost, or None while it is alive."""
    worker = trial.user_attrs.get(WORKER)
    address = worker_address(trial.user_attrs)
    if address and address[0] == socket.gethostname() and not _process_exists(address[1]):
        return f"worker lost: {worker} (its process on this host has ended)"
    beat = trial.user_attrs.get(HEARTBEAT)
    last = beat if beat is not None else trial.datetime_start.timestamp()  # started by an older driver
    if now - last <= grace_period:
        return None
    who = worker or "a driver without heartbeats"
    return f"worker lost: {who} sent no heartbeat for {now - last:.0f} s (grace_period {grace_period:g} s)"


def fail_own_trials(study: Any, numbers: Iterable[int], error: str) -> None:
    """This driver's trials still RUNNING (a Ctrl-C, an error of the sweep): FAIL with `error`, interrupted
    (a stop asked for from outside, e.g. by the service, says who asked instead)."""
    from optuna.exceptions import UpdateFinishedTrialError

    from lightsweep.sweep.study import STOP_REQUEST

    numbers = set(numbers)
    for trial in study.get_trials(deepcopy=False, states=_running()):
        if trial.number not in numbers:
            continue
        request = trial.user_attrs.get(STOP_REQUEST)
        try:
            _record_interrupted(study, trial._trial_id, f"stopped: {request}" if request else error)
        except UpdateFinishedTrialError:
            continue
        log.warning(f"Trial {trial.number}: {error}; recorded as FAIL, not counted towards n_trials")


class Heartbeat:
    """`with Heartbeat(study, liveness, trials):` a daemon thread that stamps the trials in `trials` (number ->
    trial id: the trials this driver runs now, kept up to date by the driver) every heartbeat_interval and
    meanwhile records other drivers' lost trials."""

    def __init__(self, study: Any, liveness: Liveness, trials: dict[int, int]) -> None:
        self.study, self.liveness, self.trials = study, liveness, trials
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lightsweep-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _beat(self) -> None:
        from optuna.exceptions import UpdateFinishedTrialError

        while not self._stop.wait(self.liveness.heartbeat_interval):
            try:
                for trial_id in list(self.trials.values()):
                    try:
                        self.study._storage.set_trial_user_attr(trial_id, HEARTBEAT, time.time())
                    except UpdateFinishedTrialError:  # told meanwhile (or failed as lost by another driver)
                        continue
                fail_lost_trials(self.study, self.liveness)
            except Exception as exc:  # a storage hiccup must not end the beats: the next one retries
                log.warning(f"heartbeat: {type(exc).__name__}: {exc}")


def _record_interrupted(study: Any, trial_id: int, error: str) -> None:
    from optuna.trial import TrialState

    storage = study._storage
    storage.set_trial_user_attr(trial_id, "error", error[:500])  # Optuna changes no attr of a finished trial
    storage.set_trial_user_attr(trial_id, INTERRUPTED, True)
    storage.set_trial_state_values(trial_id, TrialState.FAIL)


def _requeue(study: Any, trial: Any, retry_failed: int) -> None:
    retries = int(trial.user_attrs.get(RETRIES, 0))
    if retries >= retry_failed:
        return
    first = trial.user_attrs.get(RETRY_OF, trial.number)
    study.enqueue_trial(trial.params, user_attrs={RETRY_OF: first, RETRIES: retries + 1}, skip_if_exists=False)
    log.info(f"Trial {trial.number}: its parameters re-queued (retry {retries + 1} of {retry_failed})")


def _running() -> tuple[Any, ...]:
    from optuna.trial import TrialState

    return (TrialState.RUNNING,)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True
