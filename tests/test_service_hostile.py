"""Issue 13, acceptance 4: a hostile corpus against the real service app, in-process (lifespan, watcher loop and
all). Every request is refused with 401, 404, 409, 413 or 422 and an answer saying what was wrong; none is a
500, none creates a job or a job folder, none starts a process.

Each case changes one thing of a request the app accepts (VALID with the token; the finished job JOB), so
the refusal can only come from that change: the controls at the end check that the unchanged requests
succeed."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from lightsweep.service.store import COMPLETED, Job, JobStore

TOKEN = "hostile-token-0123456789abcdef"
JOB = "6f1c1f9e-3a59-4d4e-9a57-0c1d2b3a4f5e"  # the one job there is: finished, in a folder outside the home
UNKNOWN = "0b7e8c55-1d3a-4c8e-9a0f-2f6b7c1d9e42"
VALID = {"dataset": "digits", "model": "cnn", "max_epochs": 1, "trials": 2}
MB = 1024 * 1024


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    status: int
    says: str  # part of the answer's body: what was wrong
    authorization: str | None = f"Bearer {TOKEN}"
    body: Any = None  # sent as JSON unless `raw`
    raw: bytes | None = None  # sent as it is (NaN, broken JSON, 1 MB)
    chunked: bool = False  # raw body sent in 8 KiB messages without Content-Length
    headers: dict[str, str] = field(default_factory=dict)
    literal_path: bool = False  # the path reaches the app untouched (httpx removes literal ../ segments)


JOB_ROUTES = [
    ("GET", ""),
    ("POST", "/stop"),
    ("POST", "/resume"),
    ("GET", "/trials"),
    ("GET", "/current-trial"),
    ("GET", "/best-trial"),
    ("GET", "/trends"),
    ("GET", "/files"),
    ("GET", "/files/sweep/report.md"),
    ("GET", "/download"),
    ("GET", "/events"),
    ("POST", "/optuna-dashboard"),
]
PROTECTED = [
    ("GET", "/datasets"),
    ("GET", "/modes"),
    ("GET", "/objectives"),
    ("POST", "/optimize"),
    ("POST", "/jobs"),
    ("GET", "/jobs"),
    *[(method, f"/jobs/{JOB}{suffix}") for method, suffix in JOB_ROUTES],
]
STRING_FIELDS = {
    "kind": "sweep",
    "dataset": "digits",
    "model": "cnn",
    "mode": "simple",
    "objective": "val_accuracy",
    "pruner": "none",
    "sampler": "tpe",
    "executor": "local",
}


def auth_cases() -> Iterator[Case]:
    """Missing and wrong tokens on every protected route (VALID as the body of the POSTs), malformed ones."""
    for method, path in PROTECTED:
        body = VALID if method == "POST" else None
        yield Case(f"no-token {method} {path}", method, path, 401, "bearer token", authorization=None, body=body)
        wrong = "Bearer " + TOKEN[:-1] + "x"
        yield Case(f"wrong-token {method} {path}", method, path, 401, "bearer token", authorization=wrong, body=body)
    malformed = {
        "basic-scheme": f"Basic {TOKEN}",
        "scheme-only": "Bearer",
        "empty-token": "Bearer ",
        "no-scheme": TOKEN,
        "token-prefix": f"Bearer {TOKEN[:8]}",
        "token-suffixed": f"Bearer {TOKEN}extra",
        "token-and-more": f"Bearer {TOKEN} {TOKEN}",
        "two-tokens-tab": f"Bearer {TOKEN}\tBearer {TOKEN}",
    }
    for name, value in malformed.items():
        yield Case(f"malformed-token {name}", "POST", "/optimize", 401, "bearer token", authorization=value, body=VALID)
    yield Case("token-in-query", "GET", f"/jobs?token={TOKEN}", 401, "bearer token", authorization=None)


def override(key: str, value: Any, says: str) -> Case:
    return Case(
        f"override {key}={value!r}"[:90], "POST", "/optimize", 422, says, body={**VALID, "overrides": {key: value}}
    )


def override_cases() -> Iterator[Case]:
    yield override("_target_", "os.system", "_target_")
    yield override("model._target_", "subprocess.Popen", "_target_")
    yield override("model.optimizer._target_", "os.system", "_target_")
    yield override("model.activation", "_target_", "model.activation")  # a class name as a value: not a choice
    yield override("model.activation", "${oc.create:{_target_:os.system}}", "override grammar")
    yield override("model.activation", "${oc.env:HOME}", "override grammar")
    yield override("trainer.precision", "${oc.env:HOME}", "override grammar")
    yield override("hydra.run.dir", "/tmp/elsewhere", "hydra")
    yield override("hydra.sweep.dir", "/etc", "hydra")
    yield override("hydra.job.chdir", True, "hydra")
    yield override("paths.output_dir", "/etc", "paths")
    yield override("paths.data_dir", "/", "paths")
    yield override("dataset.name", "../../etc", "dataset.name")
    yield override("dataset.data_dir", "/etc", "names a file")
    yield override("trainer.default_root_dir", "/etc", "names a file")
    yield override("model.activation", "relu\nhydra.run.dir=/etc", "override grammar")
    yield override("model.activation", "relu' hydra.run.dir='/etc", "override grammar")
    yield override("model.activation", 'relu" hydra.run.dir="/etc', "override grammar")
    yield override("model.activation", "relu,swish", "override grammar")
    yield override("model.activation", "relu hydra.run.dir=/etc", "override grammar")
    yield override("+model.extra_knob", 1, "not a plain config key")
    yield override("++trainer.max_epochs", 1, "not a plain config key")
    yield override("~model.dropout", 0.1, "not a plain config key")
    yield override("model@trainer", 1, "not a plain config key")
    yield override("model.filters=3", 1, "not a plain config key")
    yield override("model.filters\nhydra.run.dir", 1, "not a plain config key")
    yield override("hydra/launcher", "basic", "not a plain config key")
    yield override("model.filters", 10**12, "out of range")
    yield override("model.optimizer.lr", 1e300, "out of range")
    yield override("model.filters", -5, "negative")
    yield override("model.filters", "16", "wrong type")
    yield override("model.filters", [1, 2], "overrides")
    yield override("model.filters", {"_target_": "os.system"}, "overrides")
    yield override("model.filters", None, "overrides")
    yield override("model.no_such_knob", 1, "not a settable key")
    yield override("seed", 1, "seed field")
    yield override("objective.name", "val_loss", "objective")
    yield override("model.activation", "r" * 201, "200 characters")
    yield override("model." + "k" * 200, 1, "200 characters")
    many = {f"model.knob{n}": 1 for n in range(65)}
    yield Case("override 65 keys", "POST", "/optimize", 422, "64", body={**VALID, "overrides": many})


def body_cases() -> Iterator[Case]:
    for name, valid in STRING_FIELDS.items():  # newline and quote injection in every string field
        for label, bad in (("newline", f"{valid}\nhydra.run.dir=/etc"), ("quote", f"{valid}' hydra.run.dir='/etc")):
            yield Case(f"{label} in {name}", "POST", "/optimize", 422, name, body={**VALID, name: bad})
    fields = {
        "dataset ../../etc": ({"dataset": "../../etc"}, "dataset"),
        "dataset /etc/passwd": ({"dataset": "/etc/passwd"}, "dataset"),
        "dataset digits,mnist": ({"dataset": "digits,mnist"}, "dataset"),
        "trials 10**12": ({"trials": 10**12}, "trials"),
        "trials -1": ({"trials": -1}, "trials"),
        "trials 0": ({"trials": 0}, "trials"),
        "max_epochs -1": ({"max_epochs": -1}, "max_epochs"),
        "max_epochs 10**9": ({"max_epochs": 10**9}, "max_epochs"),
        "n_jobs 10**6": ({"n_jobs": 10**6}, "n_jobs"),
        "seed -1": ({"seed": -1}, "seed"),
        "seed 2**64": ({"seed": 2**64}, "seed"),
        "health_weight 1e308": ({"mode": "health", "health_weight": 1e308}, "health_weight"),
        "health_weight -1": ({"mode": "health", "health_weight": -1}, "health_weight"),
        "trials as shell": ({"trials": "10; rm -rf /"}, "trials"),
        "trials as float": ({"trials": 2.5}, "trials"),
        "dataset as number": ({"dataset": 5}, "dataset"),
        "dataset null": ({"dataset": None}, "dataset"),
        "overrides as list": ({"overrides": ["model.filters=16"]}, "overrides"),
        "overrides as string": ({"overrides": "model.filters=16"}, "overrides"),
        "fallback_local as object": ({"fallback_local": {"a": 1}}, "fallback_local"),
        "unknown field command": ({"command": "rm -rf /"}, "command"),
        "unknown field arguments": ({"arguments": ["hydra.run.dir=/etc"]}, "arguments"),
        "unknown field hydra": ({"hydra": {"run": {"dir": "/etc"}}}, "hydra"),
        "unknown field sweep_dir": ({"sweep_dir": "/etc"}, "sweep_dir"),
        "health objective, simple mode": ({"objective": "overall_health"}, "mode=health"),
        "health_weight without health": ({"health_weight": 0.9}, "health_weight"),
        "fallback_local without slurm": ({"fallback_local": True}, "fallback_local"),
        "run with trials": ({"kind": "run", "trials": 5}, "trials"),
        "pruner without a monitor": ({"objective": "training_time", "pruner": "median"}, "pruner"),  # validate()
    }
    for name, (changes, says) in fields.items():
        yield Case(name, "POST", "/optimize", 422, says, body={**VALID, **changes})
    yield Case(
        "missing dataset", "POST", "/optimize", 422, "dataset", body={k: v for k, v in VALID.items() if k != "dataset"}
    )
    for name, text in {
        "NaN health_weight": '{"dataset": "digits", "mode": "health", "health_weight": NaN}',
        "Infinity trials": '{"dataset": "digits", "trials": Infinity}',
        "NaN override": '{"dataset": "digits", "model": "cnn", "overrides": {"model.dropout": NaN}}',
        "-Infinity override": '{"dataset": "digits", "model": "cnn", "overrides": {"model.optimizer.lr": -Infinity}}',
        "broken JSON": '{"dataset": "digits",',
        "body a list": "[]",
        "body a string": '"dataset=digits"',
        "body null": "null",
        "empty body": "",
    }.items():
        says = {"NaN health_weight": "health_weight", "Infinity trials": "trials"}.get(name, "body")
        if "override" in name:
            says = "overrides"
        yield Case(
            name, "POST", "/optimize", 422, says, raw=text.encode(), headers={"Content-Type": "application/json"}
        )
    yield Case("validate_only=maybe", "POST", "/optimize?validate_only=maybe", 422, "validate_only", body=VALID)
    yield Case("JSON alias with newline", "POST", "/jobs", 422, "dataset", body={**VALID, "dataset": "digits\n"})


def size_cases() -> Iterator[Case]:
    padded = json.dumps({**VALID, "padding": "x" * MB}).encode()
    just_over = json.dumps({**VALID, "padding": "x" * (64 * 1024)}).encode()
    json_type = {"Content-Type": "application/json"}
    yield Case("1 MB with Content-Length", "POST", "/optimize", 413, "64 KiB", raw=padded, headers=json_type)
    yield Case("1 MB chunked", "POST", "/optimize", 413, "64 KiB", raw=padded, chunked=True, headers=json_type)
    yield Case("1 MB to /jobs", "POST", "/jobs", 413, "64 KiB", raw=padded, headers=json_type)
    yield Case("1 MB without token", "POST", "/optimize", 413, "64 KiB", raw=padded, authorization=None)
    yield Case("just over 64 KiB", "POST", "/optimize", 413, "64 KiB", raw=just_over, headers=json_type)
    yield Case("1 MB of zeros chunked", "POST", "/jobs", 413, "64 KiB", raw=b"0" * MB, chunked=True)
    yield Case("1 MB body on a GET", "GET", "/jobs", 413, "64 KiB", raw=b" " * MB)


def job_id_cases() -> Iterator[Case]:
    for method, suffix in JOB_ROUTES:  # a non-UUID and an unknown UUID on every job route
        yield Case(f"non-uuid {method} {suffix or '/'}", method, f"/jobs/not-a-job{suffix}", 404, "no job")
        yield Case(f"unknown-uuid {method} {suffix or '/'}", method, f"/jobs/{UNKNOWN}{suffix}", 404, "no job")
    ids = {
        "job id %2e%2e": "%2e%2e",
        "job id uppercase": JOB.upper(),
        "job id SQL": "x'%20OR%20'1'='1",
        "job id 5000 chars": "a" * 5000,
        "job id NUL": "%00",
    }
    for name, job_id in ids.items():
        yield Case(name, "GET", f"/jobs/{job_id}", 404, "no job")
    # %2f is decoded before routing: /jobs/../../service.db is no route at all
    yield Case("job id ..%2f..%2fservice.db", "GET", "/jobs/..%2f..%2fservice.db", 404, "not found")
    yield Case(
        "Last-Event-ID garbage", "GET", f"/jobs/{UNKNOWN}/events", 404, "no job", headers={"Last-Event-ID": "-1; x"}
    )


def file_cases() -> Iterator[Case]:
    names = {
        "..%2f": "..%2f..%2fhome%2fservice.db",
        "%2e%2e/": "%2e%2e/%2e%2e/home/api_token",
        "%2e%2e%2f": "%2e%2e%2f%2e%2e%2fsecret.txt",
        "sweep/..%2f": "sweep/..%2f..%2fsecret.txt",
        "absolute": "/etc/passwd",
        "encoded absolute": "%2Fetc%2Fpasswd",
        "double encoded": "%252e%252e%252fsecret.txt",
        "backslashes": "..%5c..%5csecret.txt",
        "NUL": "sweep/report.md%00.png",
        "home": "~%2F.ssh%2Fid_rsa",
        "hidden file": ".secret",
        "link outside": "escape",
        "a folder": "sweep",
    }
    for name, file_name in names.items():
        yield Case(f"file {name}", "GET", f"/jobs/{JOB}/files/{file_name}", 404, "no file")
    literal = {"literal ../": "../secret.txt", "literal sweep/../": "sweep/../job.log", "literal ./": "./job.log"}
    for name, file_name in literal.items():
        path = f"/jobs/{JOB}/files/{file_name}"
        yield Case(f"file {name}", "GET", path, 404, "no file", literal_path=True)
    # The web page's files (no token) are served by name from a fixed set.
    for name, file_name in {"%2e%2e": "%2e%2e", "NUL": "index.html%00", "hidden": ".env"}.items():
        yield Case(f"static {name}", "GET", f"/static/{file_name}", 404, "no static file", authorization=None)
    yield Case("static ..%2f", "GET", "/static/..%2fapp.py", 404, "not found", authorization=None)  # no route
    yield Case("static literal ../", "GET", "/static/../app.py", 404, "not found", literal_path=True)


def query_and_state_cases() -> Iterator[Case]:
    queries = {
        "state=bogus": ("state=bogus", "state"),
        "state with newline": ("state=running%0a", "state"),
        "state SQL": ("state=running'%20OR%201=1", "state"),
        "state uppercase": ("state=RUNNING", "state"),
        "offset -1": ("offset=-1", "offset"),
        "offset 10**10": ("offset=10000000000", "offset"),
        "offset 10**30": ("offset=" + "9" * 30, "offset"),
        "offset abc": ("offset=abc", "offset"),
        "limit 0": ("limit=0", "limit"),
        "limit 10**6": ("limit=1000000", "limit"),
    }
    for name, (query, says) in queries.items():
        yield Case(name, "GET", f"/jobs?{query}", 422, says)
    yield Case("stop a finished job", "POST", f"/jobs/{JOB}/stop", 409, "nothing to stop")
    yield Case("resume a completed job", "POST", f"/jobs/{JOB}/resume", 409, "can be resumed")


CASES = [
    *auth_cases(),
    *override_cases(),
    *body_cases(),
    *size_cases(),
    *job_id_cases(),
    *file_cases(),
    *query_and_state_cases(),
]


def seed_finished_job(home: Path, job_dir: Path, job_id: str) -> None:
    """A completed job `job_id` in the service database at `home` (before the app starts), whose folder
    `job_dir` holds a report, a log, a hidden file and a link to a file outside it."""
    (job_dir / "sweep").mkdir(parents=True)
    (job_dir / "sweep" / "report.md").write_text("# report\n")
    (job_dir / "job.log").write_text("done\n")
    (job_dir / ".secret").write_text("hidden\n")
    (job_dir.parent / "secret.txt").write_text("outside the job\n")
    (job_dir / "escape").symlink_to(job_dir.parent / "secret.txt")
    store = JobStore(f"sqlite:///{home / 'service.db'}")
    store.add(Job(id=job_id, kind="sweep", request=VALID, arguments=["-m"], job_dir=str(job_dir), state=COMPLETED))
    store.engine.dispose()


def children() -> dict[int, str]:
    """The live child processes of this process (of any of its threads): pid -> command line. The catalogue's
    SLURM probe (`sinfo`, run by GET /health and at start-up) comes and goes by itself and is left out, also
    while it is a fork not yet turned into sinfo (it then shows this process's own command line)."""
    own = Path(f"/proc/{os.getpid()}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    found: dict[int, str] = {}
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids = (task / "children").read_text().split()
        except OSError:  # a thread that ended meanwhile
            continue
        for pid in pids:
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:  # ended meanwhile
                continue
            if command.split(" ")[0] != "sinfo" and command != own:
                found[int(pid)] = command
    return found


@contextlib.contextmanager
def launches_refused() -> Iterator[list[Any]]:
    """processes.launch, the one way a job's process starts, records its arguments and refuses: a request
    that got through would fail loudly instead of training."""
    from lightsweep.service import processes

    launched: list[Any] = []

    def refuse(*args: Any) -> None:
        launched.append(args)
        raise PermissionError("these tests must not start a job's process")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(processes, "launch", refuse)
        yield launched


@dataclass
class Service:
    client: Any
    home: Path
    launched: list[Any]
    children_before: dict[int, str]


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Iterator[Service]:
    from fastapi.testclient import TestClient

    from lightsweep.service.app import create_app

    root = tmp_path_factory.mktemp("hostile")
    home = root / "home"
    home.mkdir()
    seed_finished_job(home, root / "elsewhere" / JOB, JOB)
    before = children()
    with launches_refused() as launched:
        with TestClient(create_app(home, TOKEN), raise_server_exceptions=False) as client:
            yield Service(client, home, launched, before)


def send(service: Service, case: Case) -> tuple[int, str]:
    headers = dict(case.headers)
    if case.authorization is not None:
        headers["Authorization"] = case.authorization
    if case.literal_path or case.chunked:
        chunks = [case.raw[i : i + 8192] for i in range(0, len(case.raw), 8192)] if case.chunked else [b""]
        return service.client.portal.call(_asgi_request, service.client.app, case.method, case.path, headers, chunks)
    body = {"content": case.raw} if case.raw is not None else {"json": case.body}
    answer = service.client.request(case.method, case.path, headers=headers, **body)
    return answer.status_code, answer.text


async def _asgi_request(
    app: Any, method: str, path: str, headers: dict[str, str], chunks: list[bytes]
) -> tuple[int, str]:
    """One request straight to the ASGI app, as a client on a raw socket can send it: the path untouched
    (httpx drops literal ../ segments) and the body in `chunks`, with no Content-Length (chunked encoding)."""
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(key.lower().encode(), value.encode()) for key, value in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send_message(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send_message)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").decode()


def assert_nothing_started(service: Service) -> None:
    assert [job.id for job in service.client.app.state.store.jobs()] == [JOB]
    assert list((service.home / "jobs").iterdir()) == []
    assert service.launched == []
    assert children() == service.children_before


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_hostile_request_is_refused_and_starts_nothing(service, case):
    status, text = send(service, case)
    assert status == case.status, text[:500]
    assert case.says.lower() in text.lower(), text[:500]
    assert_nothing_started(service)


def test_the_corpus_is_large_and_its_ids_unique():
    assert len(CASES) >= 60
    assert len({case.id for case in CASES}) == len(CASES)


def test_the_unchanged_requests_succeed(service):
    """The controls: with the token, VALID validates, JOB and its listed files are served, so each refusal
    above comes from what its case changed."""
    client, auth = service.client, {"Authorization": f"Bearer {TOKEN}"}
    answer = client.post("/optimize?validate_only=true", json=VALID, headers=auth)
    assert answer.status_code == 200 and answer.json()["valid"] is True, answer.text
    assert client.get(f"/jobs/{JOB}", headers=auth).json()["state"] == COMPLETED
    listed = {entry["name"] for entry in client.get(f"/jobs/{JOB}/files", headers=auth).json()["files"]}
    assert listed == {"job.log", "sweep/report.md"}
    assert client.get(f"/jobs/{JOB}/files/sweep/report.md", headers=auth).text == "# report\n"
    for method, path in PROTECTED:
        if method == "GET" and not path.endswith("/events"):
            assert client.get(path, headers=auth).status_code == 200, path


def test_after_the_whole_corpus_no_job_no_folder_no_process(service):
    """Runs last in this file: GET /jobs still lists only the seeded job, the home's jobs/ folder is empty,
    no process was started or is running."""
    listed = service.client.get("/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert [job["id"] for job in listed["jobs"]] == [JOB] and listed["total"] == 1
    assert_nothing_started(service)
