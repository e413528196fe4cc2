"""Fixtures: compose the real config tree, shrink it, run it (in-process or through the real CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from lightsweep.config import compose
from lightsweep.paths import PROJECT_ROOT

# Real dataset files for tests (shared/data beside the checkout); tests needing them skip when absent.
SHARED_DATA = Path(os.environ.get("LIGHTSWEEP_TEST_DATA", PROJECT_ROOT.parent / "shared" / "data"))

# Small and quiet: a couple of epochs, no progress bar.
SHRINK = [
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.num_sanity_val_steps=0",
]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test fetches a real dataset from the internet (cli() children inherit it); the download tests
    against a local server remove it."""
    monkeypatch.setenv("LIGHTSWEEP_OFFLINE", "1")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory, monkeypatch) -> Path:
    """Decoded-array caches go to a fresh temp dir (paths.cache_dir; cli() children inherit it), never
    beside the data: the shared data folder is read-only in CI, and a test must not fill it."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("LIGHTSWEEP_CACHE_DIR", str(folder))
    return folder


IMDB_PER_GROUP = 40  # real reviews per (split, label) in the tiny IMDB copy (tiny_imdb)


def shared_data(name: str) -> Path:
    folder = SHARED_DATA / name
    if not folder.is_dir():
        pytest.skip(f"real data for {name} not found at {folder} (set LIGHTSWEEP_TEST_DATA)")
    return folder


@pytest.fixture(scope="session")
def tiny_imdb(tmp_path_factory) -> Path:
    """<data_dir>/imdb/aclImdb/{train,test}/{neg,pos}/ with the first IMDB_PER_GROUP real reviews of each group;
    session-scoped so the real tarball is scanned once for all test files."""
    from lightsweep.data.imdb import raw_reviews

    source = shared_data("imdb") / "aclImdb_v1.tar.gz"
    root = tmp_path_factory.mktemp("data") / "imdb"
    taken: dict[tuple[str, int], int] = {}
    for split, label, review_id, text in raw_reviews(source):
        if taken.get((split, label), 0) < IMDB_PER_GROUP:
            taken[(split, label)] = taken.get((split, label), 0) + 1
            path = root / "aclImdb" / split / ("neg", "pos")[label] / f"{review_id}_{7 * label + 1}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        elif len(taken) == 4 and min(taken.values()) == IMDB_PER_GROUP:
            break
    return root


def tiny_lstm(imdb_root: Path) -> list[str]:
    """Overrides for a tiny LSTM on the tiny IMDB copy (the tiny_imdb fixture's folder)."""
    return [
        f"paths.data_dir={imdb_root.parent}",
        "dataset=imdb",
        "dataset.vocab_size=300",
        "dataset.seq_len=64",
        "model=lstm",
        "model.embedding_dim=8",
        "model.lstm_units=4",
        "model.hidden_units=[]",
    ]


@pytest.fixture
def run_cfg(tmp_path):
    """run_cfg(overrides) -> (RunResult, run.json) for a shrunk real config run in a temp dir."""
    from lightsweep.train import run

    def _run(overrides: list[str], output_dir: Path | None = None):
        out = output_dir or tmp_path / "run"
        result = run(compose(SHRINK + overrides, output_dir=out))
        return result, json.loads((out / "run.json").read_text())

    return _run


def quiet_trainer(**settings):
    """A Lightning Trainer for callback and module tests: no logger, checkpoints, progress bar or summary."""
    import lightning as L

    return L.Trainer(
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, **settings
    )


def cli(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `python train.py ...` (or the `lightsweep` command via args[0]=='lightsweep') like a user does,
    from a fresh temp dir so Hydra's outputs/ land there, not in the checkout."""
    if args and args[0] == "lightsweep":
        command = [sys.executable, "-c", "from lightsweep.cli import main; main()", *args[1:]]
    else:
        command = [sys.executable, str(PROJECT_ROOT / "train.py"), *args]
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "LIGHTSWEEP_DEBUG")}
    with tempfile.TemporaryDirectory(prefix="lightsweep-cli-") as scratch:
        return subprocess.run(command, cwd=cwd or scratch, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of the local PostgreSQL server of tools/postgres, started here (and stopped after the session if
    this session started it); skips with the script's reason where it cannot run (not root, not installed)."""
    tools = PROJECT_ROOT / "tools" / "postgres"
    started = subprocess.run([tools / "start-postgres.sh"], capture_output=True, text=True, timeout=300)
    if started.returncode == 2:  # the script's "cannot run here"
        pytest.skip(started.stderr.strip().splitlines()[-1])
    assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
    yield started.stdout.split()[-1]
    if "already up" not in started.stdout:
        subprocess.run([tools / "stop-postgres.sh"], capture_output=True, timeout=120)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh database on the local server for one test (tests must not share studies); dropped afterwards."""
    try:
        import psycopg
    except ImportError:
        pytest.skip("the PostgreSQL driver is not installed: pip install -e '.[postgres]'")
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:  # CREATE DATABASE runs outside transactions
        admin.execute(f"CREATE DATABASE {name}")
    yield f"{postgres_server.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")  # FORCE: pools a test left open
