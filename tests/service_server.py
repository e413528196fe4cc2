"""A real `lightsweep serve` on a free loopback port, for the service tests (and the API benchmark)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

TOKEN = "test-token-0123456789"
# A tiny CNN on digits: every searched knob that makes it big is fixed, a few batches per epoch.
TINY = {
    "model.filters": 16,
    "model.conv_layers": 1,
    "model.hidden_layers": 1,
    "model.first_hidden_units": 64,
    "trainer.limit_train_batches": 8,
    "trainer.enable_progress_bar": False,
    "trainer.enable_model_summary": False,
    "trainer.num_sanity_val_steps": 0,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`lightsweep serve --home HOME` in its own process; restartable on the same home and port."""

    def __init__(self, home: Path, data_dir: Path, max_running: int = 1) -> None:
        self.home, self.port, self.max_running = home, free_port(), max_running
        self.env = {**os.environ, "LIGHTSWEEP_API_TOKEN": TOKEN, "LIGHTSWEEP_DATA_DIR": str(data_dir)}
        self.env.pop("HYDRA_FULL_ERROR", None)
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> Server:
        command = [sys.executable, "-c", "from lightsweep.cli import main; main()", "serve"]
        args = ["--port", str(self.port), "--home", str(self.home), "--max-running", str(self.max_running)]
        log = open(self.home.parent / f"server-{self.port}.log", "ab")  # noqa: SIM115 (kept for the process)
        self.process = subprocess.Popen([*command, *args], env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"the server did not answer in 60 s; log: {log.name}")

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def client(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def submit(client: httpx.Client, **request: Any) -> dict[str, Any]:
    body = {"dataset": "digits", "model": "cnn", "max_epochs": 1, **request}
    body["overrides"] = {**TINY, **request.get("overrides", {})}
    response = client.post("/optimize", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def events(client: httpx.Client, job_id: str, last_event_id: int | None = None) -> Iterator[dict[str, Any]]:
    """The job's SSE stream as dicts {id, event, data}, until the server ends it (the job finished)."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    with client.stream("GET", f"/jobs/{job_id}/events", headers=headers, timeout=300) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        event: dict[str, Any] = {}
        for line in response.iter_lines():
            if not line:
                if "event" in event:
                    yield event
                event = {}
            elif line.startswith("id: "):
                event["id"] = int(line[4:])
            elif line.startswith("event: "):
                event["event"] = line[7:]
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])


def wait_for_state(client: httpx.Client, job_id: str, states: tuple[str, ...], timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} never reached {states}: {job}")
