"""A job's files: the listing the API shows, the one file it may serve by name, and the streamed ZIP download.

Nothing from a URL reaches the filesystem: a file is served only when its name is one of the listing's, and
the listing holds only regular files inside the job folder. Symlinks are followed only when they point
inside it (the report's best/ points to a sibling folder); one pointing elsewhere is left out. Hidden entries
are work in progress (atomic writes' .part files, the report's .best.* copies, which best/ shows) and are
left out too, except Hydra's .hydra/ config snapshots."""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISDIR, S_ISREG
from typing import Any

SWEEP = "sweep"  # the job's sweep dir, <job folder>/sweep
JOB_LOG = "job.log"  # the job process's output, beside it
CHUNK = 64 * 1024
_KEPT_HIDDEN = {".hydra"}
# Members of the download, by their path in the sweep dir: the report, its plots, the best trial, the study
# record, and each trial's (numbered job dir's) run.json and per-epoch metrics.csv.
_ZIPPED = re.compile(r"report\.md|study\.json|plots/.+|best/.+|\d+/run\.json|\d+/(?:.+/)?metrics\.csv")


def listing(job_dir: Path) -> list[dict[str, Any]]:
    """[{name: path relative to the job folder (POSIX), size: bytes, modified: ISO 8601 UTC}], by name."""
    return [
        {"name": name, "size": stat.st_size, "modified": _iso(stat.st_mtime)}
        for name, (_, stat) in sorted(_files(Path(job_dir)).items())
    ]


def resolve_listed(job_dir: Path, name: str) -> Path | None:
    """The file listed as `name`, or None when no listed file has exactly that name."""
    found = _files(Path(job_dir)).get(name)
    if found is None or not found[0].resolve().is_relative_to(Path(job_dir).resolve()):  # moved since listed
        return None
    return found[0]


def zip_stream(job_dir: Path) -> Iterator[bytes]:
    """A ZIP of the report, plots, best/, study.json, every trial's run.json and metrics.csv (named by their
    path in the sweep dir) and job.log, produced chunk by chunk as it is read: never whole in memory or on
    disk. A file that disappears meanwhile (best/ replaced by a newer report) is left out."""
    members = [
        (path, name.removeprefix(f"{SWEEP}/") if name != JOB_LOG else name)
        for name, (path, _) in sorted(_files(Path(job_dir)).items())
        if name == JOB_LOG or (name.startswith(f"{SWEEP}/") and _ZIPPED.fullmatch(name.removeprefix(f"{SWEEP}/")))
    ]
    buffer = _Chunks()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path, arcname in members:
            try:
                source = path.open("rb")
            except OSError:
                continue
            with source:
                info = zipfile.ZipInfo.from_file(path, arcname)
                info.compress_type = zipfile.ZIP_DEFLATED
                with bundle.open(info, "w") as entry:
                    while block := source.read(CHUNK):
                        entry.write(block)
                        if chunk := buffer.take():
                            yield chunk
            if chunk := buffer.take():
                yield chunk
    yield buffer.take()  # the central directory, written when the archive closes


class _Chunks(io.RawIOBase):
    """A write-only, unseekable stream whose bytes are taken away as they come: zipfile then writes each
    member's sizes after its data instead of seeking back."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        taken = b"".join(self._parts)
        self._parts.clear()
        return taken


def _files(job_dir: Path) -> dict[str, tuple[Path, os.stat_result]]:
    """{name relative to the job folder: (path, stat)} of every regular file inside it."""
    root = job_dir.resolve()
    found: dict[str, tuple[Path, os.stat_result]] = {}
    if root.is_dir():
        _walk(root, root, "", found, {root})
    return found


def _walk(
    root: Path, folder: Path, prefix: str, found: dict[str, tuple[Path, os.stat_result]], visited: set[Path]
) -> None:
    """Add the files under `folder` (listed as `prefix`...); `visited` holds the real folders above it, so a
    link back up cannot loop."""
    try:
        entries = list(os.scandir(folder))
    except OSError:  # removed meanwhile (a report replacing best/) or unreadable
        return
    for entry in entries:
        if entry.name.startswith(".") and entry.name not in _KEPT_HIDDEN:
            continue
        path = Path(entry.path)
        name = prefix + entry.name
        if entry.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(root):
                continue
            path = target
        try:
            stat = path.stat()
        except OSError:  # removed meanwhile, or a dangling link
            continue
        if S_ISDIR(stat.st_mode) and path not in visited:  # `path` is real: links were resolved above
            _walk(root, path, name + "/", found, visited | {path})
        elif S_ISREG(stat.st_mode):
            found[name] = (path, stat)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")
