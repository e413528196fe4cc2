"""The sweep service end to end: a real `lightsweep serve` on a loopback port launching real digits sweeps
through the CLI; events, trials, the download, a server killed mid-sweep, a job stopped mid-trial."""

from __future__ import annotations

import io
import os
import signal
import time
import zipfile
from pathlib import Path

import optuna
import pytest
from service_server import Server, events, submit, wait_for_state

from conftest import SHARED_DATA
from lightsweep.service.processes import group_alive
from lightsweep.service.store import JobStore

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path):
    running = Server(tmp_path / "home", SHARED_DATA).start()
    yield running
    running.stop()


def study_of(job_dir: Path) -> optuna.Study:
    storage = f"sqlite:///{job_dir / 'sweep' / 'optuna.db'}"
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def stored_job(home: Path, job_id: str):
    return JobStore(f"sqlite:///{home / 'service.db'}").get(job_id)


def test_a_sweep_streams_every_trial_and_serves_its_best_trial_and_results(server):
    with server.client() as client:
        job = submit(client, trials=3)
        assert job["state"] in ("queued", "running") and "train.py -m" in job["command"]
        seen = list(events(client, job["id"]))
        kinds = [(e["event"], e["data"].get("number")) for e in seen]
        for number in range(3):
            assert ("trial_started", number) in kinds and ("trial_finished", number) in kinds
            assert kinds.index(("trial_started", number)) < kinds.index(("trial_finished", number))
        assert ("epoch", 0) in kinds  # each epoch's report reaches the stream
        assert seen[-1]["event"] == "job" and seen[-1]["data"]["state"] == "completed"
        assert [e["id"] for e in seen] == sorted({e["id"] for e in seen})  # ids increase, none repeated

        reconnected = list(events(client, job["id"], last_event_id=seen[2]["id"]))
        assert [e["id"] for e in reconnected] == [e["id"] for e in seen[3:]]  # Last-Event-ID misses nothing

        job = client.get(f"/jobs/{job['id']}").json()
        assert job["progress"]["done"] == 3 and job["state"] == "completed"
        study = study_of(server.home / "jobs" / job["id"])
        best = client.get(f"/jobs/{job['id']}/best-trial").json()["trial"]
        assert best["number"] == study.best_trial.number and best["value"] == study.best_value
        assert best["params"] == study.best_trial.params and "train.py" in best["command"]

        response = client.get(f"/jobs/{job['id']}/download")
        assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
        names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
        assert "report.md" in names and "study.json" in names
        assert any(n.startswith("plots/") and n.endswith(".png") for n in names)
        assert sorted(n for n in names if n.endswith("run.json") and not n.startswith("best")) == [
            f"{n}/run.json" for n in range(3)
        ]


def test_a_killed_server_reattaches_to_its_running_sweep(server):
    with server.client() as client:
        job = submit(client, trials=4)
        for event in events(client, job["id"]):
            if event["event"] == "trial_finished":  # one trial done, the second under way
                break
    pid = stored_job(server.home, job["id"]).pid
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 5)  # niced job
    os.killpg(pid, signal.SIGSTOP)  # the job waits while the server restarts: it cannot finish meanwhile
    server.kill()
    assert stored_job(server.home, job["id"]).state == "running"
    try:
        server.start()
        with server.client() as client:
            assert client.get(f"/jobs/{job['id']}").json()["state"] == "running"  # re-attached, not interrupted
    finally:
        os.killpg(pid, signal.SIGCONT)
    with server.client() as client:
        done = wait_for_state(client, job["id"], ("completed", "failed", "interrupted"))
    assert done["state"] == "completed", done
    numbers = [t.number for t in study_of(server.home / "jobs" / job["id"]).trials]
    assert numbers == [0, 1, 2, 3]


def test_a_job_killed_with_the_server_is_interrupted_and_resume_finishes_it(server):
    with server.client() as client:
        job = submit(client, trials=3)
        for event in events(client, job["id"]):
            if event["event"] == "epoch" and event["data"]["number"] == 1:
                break
    pid = stored_job(server.home, job["id"]).pid
    server.kill()
    os.killpg(pid, signal.SIGKILL)
    server.start()
    with server.client() as client:
        assert client.get(f"/jobs/{job['id']}").json()["state"] == "interrupted"
        assert client.post(f"/jobs/{job['id']}/resume").status_code == 202
        done = wait_for_state(client, job["id"], ("completed", "failed", "interrupted", "stopped"))
    assert done["state"] == "completed", done
    trials = study_of(server.home / "jobs" / job["id"]).trials
    counted = [t for t in trials if not t.user_attrs.get("interrupted")]
    assert [t.state.name for t in counted] == ["COMPLETE"] * 3
    assert len({t.number for t in trials}) == len(trials)  # no duplicate trial number


def test_stopping_a_job_mid_trial_ends_its_process_group_and_keeps_finished_trials(server):
    with server.client() as client:
        job = submit(client, trials=3, max_epochs=30)
        for event in events(client, job["id"]):
            if event["event"] == "epoch" and event["data"]["number"] == 1:
                break
        pid = stored_job(server.home, job["id"]).pid
        assert client.post(f"/jobs/{job['id']}/stop").status_code == 202
        asked = time.monotonic()
        while group_alive(pid) and time.monotonic() - asked < 10:
            time.sleep(0.1)
        assert not group_alive(pid)
        done = wait_for_state(client, job["id"], ("stopped", "completed", "failed", "interrupted"), timeout=30)
        assert done["state"] == "stopped"
        trials = {t["number"]: t for t in client.get(f"/jobs/{job['id']}/trials").json()["trials"]}
    assert trials[0]["state"] == "COMPLETE"
    assert trials[1]["state"] == "FAIL" and trials[1]["error"].startswith("stopped")
    assert 2 not in trials
