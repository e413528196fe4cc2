"""The service's job handling beyond one sweep: the queue, single runs, stopping a queued job, resume rules,
the API token, and `lightsweep serve`'s own refusals."""

from __future__ import annotations

import stat

import pytest
from service_server import Server, submit, wait_for_state

from conftest import SHARED_DATA, cli
from lightsweep.service.server import TOKEN_FILE, api_token

FINAL = ("completed", "failed", "stopped", "interrupted")


@pytest.fixture
def server(tmp_path):
    running = Server(tmp_path / "home", SHARED_DATA, max_running=1).start()
    yield running
    running.stop()


@pytest.mark.slow
def test_jobs_beyond_max_running_wait_in_submission_order(server):
    with server.client() as client:
        first, second, third = (submit(client, trials=1, seed=seed) for seed in (1, 2, 3))
        assert client.get(f"/jobs/{second['id']}").json()["state"] == "queued"
        stopped = client.post(f"/jobs/{third['id']}/stop")  # a queued job just leaves the queue
        assert stopped.status_code == 202 and stopped.json()["state"] == "stopped"
        assert client.get("/jobs", params={"state": "queued"}).json()["total"] == 1
        done = [wait_for_state(client, job["id"], FINAL) for job in (first, second)]
        assert [job["state"] for job in done] == ["completed", "completed"]
        assert done[0]["finished_at"] <= done[1]["started_at"]  # one at a time, first come first served
        third = client.get(f"/jobs/{third['id']}").json()
        assert third["started_at"] is None and third["runs"] == 0  # never launched
        assert client.post(f"/jobs/{first['id']}/resume").status_code == 409  # completed: nothing to resume
        assert client.post(f"/jobs/{first['id']}/stop").status_code == 409
        listed = client.get("/jobs", params={"limit": 2, "offset": 1}).json()
        assert listed["total"] == 3 and [j["id"] for j in listed["jobs"]] == [second["id"], third["id"]]


@pytest.mark.slow
def test_a_single_run_job_runs_once_and_serves_its_files(server):
    with server.client() as client:
        body = {"dataset": "digits", "model": "cnn", "kind": "run", "max_epochs": 1, "overrides": {"model.filters": 8}}
        job = client.post("/optimize", json=body).json()
        assert "train.py dataset=digits" in job["command"] and " -m " not in job["command"]
        done = wait_for_state(client, job["id"], FINAL)
        assert done["state"] == "completed", done
        names = [f["name"] for f in client.get(f"/jobs/{job['id']}/files").json()["files"]]
        assert "sweep/run.json" in names
        record = client.get(f"/jobs/{job['id']}/files/sweep/run.json").json()
        assert record["status"] == "ok" and record["config"]["model"]["filters"] == 8
        assert client.get(f"/jobs/{job['id']}/trials").json() == {"trials": []}


def test_the_api_token_is_generated_once_readable_by_the_owner_only(tmp_path, monkeypatch):
    monkeypatch.delenv("LIGHTSWEEP_API_TOKEN", raising=False)
    token, generated = api_token(tmp_path)
    assert generated and len(token) >= 32
    assert stat.S_IMODE((tmp_path / TOKEN_FILE).stat().st_mode) == 0o600
    assert api_token(tmp_path) == (token, False)  # the same token after a restart
    monkeypatch.setenv("LIGHTSWEEP_API_TOKEN", "from-the-environment")
    assert api_token(tmp_path) == ("from-the-environment", False)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "0"], "--port must be 1-65535"),
        (["--max-running", "0"], "--max-running at least 1"),
    ],
)
def test_serve_refuses_bad_options_in_one_line(args, message):
    proc = cli("lightsweep", "serve", *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
