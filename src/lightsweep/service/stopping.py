"""Stopping a job's trials from outside its sweep: a stop request noted on the running trials before the
sweep is signalled (its sweeper then records them FAIL "stopped: ..."), and FAIL for trials a killed sweep
left RUNNING. Only the job's own trials are touched: another driver of the same study (a sweep started by
hand against the job's storage) keeps its own."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from lightsweep.service.studies import open_study
from lightsweep.sweep.study import INTERRUPTED


def request_stop(sweep_dir: Path, numbers: list[int], reason: str, group: int | None = None) -> None:
    """Note on trials `numbers` still RUNNING who stops them, before their sweep is signalled: the sweeper
    then records them FAIL "stopped: <reason>" (a finished trial can no longer be changed afterwards)."""
    from optuna.exceptions import UpdateFinishedTrialError

    from lightsweep.sweep.study import STOP_REQUEST

    opened = open_study(sweep_dir)
    if opened is None:
        return
    storage = opened.storage
    study_id = storage.get_study_id_from_name(opened.meta["study_name"])
    for number in numbers:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
        if _run_elsewhere(storage.get_trial(trial_id).user_attrs, group):
            continue
        try:
            storage.set_trial_user_attr(trial_id, STOP_REQUEST, reason)
        except UpdateFinishedTrialError:  # it ended meanwhile: its own outcome stands
            continue


def mark_stopped(sweep_dir: Path, numbers: list[int], error: str, group: int | None = None) -> list[int]:
    """Record those of trials `numbers` still RUNNING as FAIL with `error`, marked interrupted (not counted:
    a resumed sweep runs them again); return the numbers marked. A trial that ended meanwhile keeps its own
    record (a sweep stopped by SIGINT marks its running trials itself; Optuna never changes a finished one).
    Call it once the job's process is gone, so that nothing else is recording these trials."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    opened = open_study(sweep_dir)
    if opened is None:
        return []
    storage = opened.storage  # the store itself: the cached wrapper re-reads unfinished trials anyway
    study_id = storage.get_study_id_from_name(opened.meta["study_name"])
    marked = []
    for number in numbers:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
        trial = storage.get_trial(trial_id)
        if trial.state.name != "RUNNING" or _run_elsewhere(trial.user_attrs, group):
            continue
        try:
            storage.set_trial_user_attr(trial_id, "error", error)
            storage.set_trial_user_attr(trial_id, INTERRUPTED, True)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:  # ended between the check and the update
            continue
        marked.append(number)
    return marked


def _run_elsewhere(user_attrs: dict, group: int | None) -> bool:
    """Whether a trial's driver (its worker attr, host:pid) is not the job's: a live process outside the job's
    process group `group` (the job's runner leads it; None: the caller owns every trial), or one on another
    host. A trial without a worker yet, or whose driver is gone, is the job's to stop."""
    from lightsweep.sweep.drivers import worker_address

    address = worker_address(user_attrs)
    if group is None or address is None:
        return False
    if address[0] != socket.gethostname():
        return True
    try:
        return os.getpgid(address[1]) != group
    except ProcessLookupError:
        return False
