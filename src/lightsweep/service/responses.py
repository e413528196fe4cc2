"""What the service's routes answer besides their data: the refusals, documented in the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

MAX_BODY_BYTES = 64 * 1024
REFUSALS = {
    400: "the body is not readable as JSON text (not UTF-8), or Content-Length is not a number",
    401: "missing or wrong bearer token",
    404: "no job with this id (or no such file in its listing)",
    409: "the job's state does not allow this",
    413: f"request body over {MAX_BODY_BYTES // 1024} KiB",
}


class Problem(BaseModel):
    detail: str  # what was wrong, what is valid, what to do


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the refusals a route answers besides FastAPI's own 422."""
    return {status: {"model": Problem, "description": REFUSALS[status]} for status in statuses}
