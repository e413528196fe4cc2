"""run.json: the one machine-readable record of a run, written atomically."""

from __future__ import annotations

import json
import math
import os
import platform
import secrets
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

RUN_JSON = "run.json"
_VERSIONED = ("torch", "lightning", "hydra-core", "optuna", "torchmetrics", "omegaconf")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def versions() -> dict[str, str | None]:
    """Versions of Python and the stack, read from package metadata (no imports)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name.removesuffix("-core")] = version(name)
        except PackageNotFoundError:
            found[name.removesuffix("-core")] = None
    return found


def git_sha(root: Path) -> str | None:
    """HEAD of the repository holding the code, with '-dirty' if it has uncommitted changes."""
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return sha.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def _json_safe(value: Any) -> Any:
    """NaN/inf are not JSON: store them as null so every reader can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_atomically(dest: Path, write: Callable[[IO[bytes]], None]) -> None:
    """write(handle) into a temp file beside `dest`, then rename it to `dest`: readers never see a partial
    file and a failure leaves nothing behind; the unique temp name lets parallel runs write the same file.
    The file gets the mode open() would give (0o666 less the umask), not tempfile's owner-only 0o600, so
    other users of a shared data or output dir can read it."""
    part = dest.parent / f".{dest.name}.{secrets.token_hex(8)}.part"
    descriptor = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the kernel applies the umask
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """JSON written with write_atomically: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_json_safe(data), indent=2, sort_keys=False) + "\n"
    write_atomically(path, lambda handle: handle.write(text.encode("utf-8")))


def read_run(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / RUN_JSON).read_text())


def launch_dir(run_dir: str | Path) -> Path:
    """The directory a run was launched from (Hydra's runtime.cwd in its snapshot), so relative paths such as
    paths.data_dir mean the same when it is run again; the current directory when that is unknown or gone."""
    from omegaconf import OmegaConf

    hydra_yaml = Path(run_dir) / ".hydra" / "hydra.yaml"
    if hydra_yaml.is_file():
        cwd = OmegaConf.load(hydra_yaml).hydra.runtime.get("cwd")
        if cwd and Path(cwd).is_dir():
            return Path(cwd)
    return Path.cwd()
