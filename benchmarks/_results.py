"""Write one benchmark's section of benchmarks/RESULTS.md (between its markers), keeping the others."""

from __future__ import annotations

import platform
import re
from datetime import date
from pathlib import Path

from lightsweep.runinfo import write_atomically

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = (
    "# Benchmark results\n\nEach section is rewritten by the script named in it; rerun the command to refresh it.\n"
)


def machine() -> str:
    import os

    import torch

    return (
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {date.today().isoformat()}"
    )


def write_section(name: str, body: str) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    # whole or not at all: a failed write must not leave other benchmarks' sections truncated
    write_atomically(RESULTS, lambda handle: handle.write(text.encode("utf-8")))
