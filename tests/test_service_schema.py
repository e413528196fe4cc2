"""Issue 13, acceptance 5: Schemathesis against the service app's own OpenAPI document, in-process (the ASGI
app, lifespan and watcher loop included): generated requests to every operation, valid and invalid, with the
bearer token. No answer is a 5xx; every status, content type and JSON body is one the document declares.

The job routes are called with the id of one finished job seeded before the app starts (a random id would
only ever meet the 404), with a report and a log in its folder. A generated request that passes validation
is queued and stays queued: the app runs with max_running=0, and a job's launch is refused and recorded here,
so nothing trains.

Schemathesis' lazy pytest loader (from_fixture) fails on pytest 9.2, so the schema is loaded when the module
is imported, from an app on a temporary home (removed when the session ends)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from test_service_hostile import children, launches_refused, seed_finished_job

from lightsweep.service.app import create_app

TOKEN = "schema-token-0123456789abcdef"
JOB = "3d5e7f90-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
ROOT = Path(tempfile.mkdtemp(prefix="lightsweep-schema-"))
atexit.register(shutil.rmtree, ROOT, ignore_errors=True)  # also when these tests are collected but not run
HOME = ROOT / "home"
MAX_EXAMPLES = 100  # per operation and phase: about a minute on 2 shared cores

APP = create_app(HOME, TOKEN, max_running=0)
CONFIG = schemathesis.Config.from_dict(
    {
        "auth": {"openapi": {"HTTPBearer": {"bearer": TOKEN}}},  # explicit: ignored_auth also sends none, a wrong one
        "parameters": {"job_id": JOB},
        "generation": {"max-examples": MAX_EXAMPLES},
        # Starlette's 405 names the methods of one route only: GET /jobs and POST /jobs are two routes, so
        # OPTIONS /jobs answers `Allow: POST`. A framework limit, not the app's.
        "checks": {"allow_header_conformance": {"enabled": False}},
        "operations": [
            {
                # A schema-valid request may still name a config that does not validate (an objective that
                # the pruner cannot watch, a dataset whose files are absent): that 422 is the answer.
                "include-name": ["POST /optimize", "POST /jobs"],
                "checks": {"positive_data_acceptance": {"expected-statuses": ["2XX", 401, 404, 409, 413, 422]}},
            }
        ],
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)


@pytest.fixture(scope="module", autouse=True)
def service():
    """The seeded job (in the database before the first request starts the app), job launches refused;
    afterwards: no job was launched, no process is left, the app is shut down."""
    seed_finished_job(HOME, ROOT / "elsewhere" / JOB, JOB)
    before = children()
    with launches_refused() as launched:
        yield
        from schemathesis.python.asgi import shutdown_lifespans

        shutdown_lifespans()
    assert launched == [] and children() == before


@schema.parametrize()
def test_every_operation_answers_as_documented(case):
    case.call_and_validate()
