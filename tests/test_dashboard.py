"""`lightsweep dashboard`: optuna-dashboard served for a real SQLite study on its own port, fetched over HTTP."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import cli
from lightsweep.errors import ConfigError
from lightsweep.sweep.dashboard import resolve_storage


def make_study(db: Path, name: str) -> None:
    """A real stored study with three finished trials."""
    import optuna

    db.parent.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{db}")
    study.optimize(lambda trial: (trial.suggest_float("x", -2, 2) - 1) ** 2, n_trials=3)


@pytest.mark.slow
def test_dashboard_serves_the_newest_sweep_study_over_http(tmp_path):
    pytest.importorskip("optuna_dashboard", reason="optuna-dashboard (the serve extra) is not installed")
    make_study(tmp_path / "multirun" / "cnn-digits-simple-none" / "optuna.db", "cnn-digits-simple-none")
    env = {k: v for k, v in os.environ.items() if k != "LIGHTSWEEP_DEBUG"}
    command = [sys.executable, "-c", "from lightsweep.cli import main; main()", "dashboard"]
    server = subprocess.Popen(
        command, cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        line = server.stdout.readline()  # printed once the port is bound
        url = re.search(r"http://\S+/dashboard/", line)
        assert url, f"no URL in {line!r}"
        with urllib.request.urlopen(url.group(0), timeout=30) as page:
            assert page.status == 200 and "<html" in page.read().decode().lower()
        api = url.group(0).replace("/dashboard/", "/api/studies")
        with urllib.request.urlopen(api, timeout=30) as answer:
            studies = json.loads(answer.read())["study_summaries"]
        assert [s["study_name"] for s in studies] == ["cnn-digits-simple-none"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_dashboard_storage_from_url_sweep_dir_or_file(tmp_path):
    older, newer = tmp_path / "multirun" / "a" / "optuna.db", tmp_path / "multirun" / "b" / "optuna.db"
    make_study(older, "a")
    make_study(newer, "b")
    os.utime(older, (time.time() + 60, time.time() + 60))  # a was written last
    assert resolve_storage(None, tmp_path) == f"sqlite:///{older}"
    assert resolve_storage("multirun/b", tmp_path) == f"sqlite:///{newer}"
    assert resolve_storage(str(newer), tmp_path) == f"sqlite:///{newer}"
    assert resolve_storage("postgresql://db/optuna", tmp_path) == "postgresql://db/optuna"
    (older.parent / "study.json").write_text(json.dumps({"storage": "postgresql://db/sweeps"}))
    assert resolve_storage("multirun/a", tmp_path) == "postgresql://db/sweeps"  # where the sweep said it lives
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_storage("multirun/c", tmp_path)


def test_dashboard_without_any_study_says_what_to_do():
    proc = cli("lightsweep", "dashboard")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "no study storage here" in line and "+sweep=simple" in line
