"""Study storages: SQLite files, journal files (relative to the launch dir or absolute) and a real PostgreSQL
server (tools/postgres) open through one function, a sweep runs on each, its report and optuna-dashboard read
it; bad URLs and a server that does not answer are one clear error; SQLite across nodes is warned about."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
from test_sweep import TINY_CNN, load_study, run_json, sweep

from conftest import cli
from lightsweep.errors import ConfigError
from lightsweep.sweep.study import absolute_storage, close_storage, open_storage, storage_warning


def _round_trip(url: str) -> None:
    """A study written through one opened storage reads back, trial and value, through a second one."""
    import optuna

    writer = open_storage(url)
    study = optuna.create_study(study_name="rt", storage=writer, direction="maximize")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    close_storage(writer)
    reader = open_storage(url)
    again = optuna.load_study(study_name="rt", storage=reader)
    assert [(t.number, t.state.name, t.value) for t in again.trials] == [
        (t.number, "COMPLETE", t.params["x"]) for t in study.trials
    ]
    close_storage(reader)


@pytest.mark.parametrize(
    "url, stored",
    [
        ("sqlite:///db/optuna.db", "db/optuna.db"),
        ("journal://logs/study.log", "logs/study.log"),  # relative: the launch dir's
        ("journal://{tmp}/abs/study.log", "abs/study.log"),  # journal:/// + an absolute path
    ],
)
def test_sqlite_and_journal_storages_round_trip_a_study(tmp_path, url, stored):
    url = absolute_storage(url.format(tmp=tmp_path), tmp_path)
    assert str((tmp_path / stored).resolve()) in url  # absolute: jobs running elsewhere find the same file
    _round_trip(url)
    assert (tmp_path / stored).stat().st_size > 0


@pytest.mark.postgres
def test_postgresql_storage_round_trips_a_study(postgres_url):
    assert absolute_storage(postgres_url, "/elsewhere") == postgres_url
    _round_trip(postgres_url)


def _open_at(url: str, start: float) -> str:
    import time

    time.sleep(max(0.0, start - time.time()))  # every process opens the new storage at the same moment
    close_storage(open_storage(url))
    return "opened"


@pytest.mark.parametrize("scheme", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_drivers_opening_a_new_storage_at_once_all_open_it(tmp_path, scheme, request):
    # The first opening creates Optuna's tables: the others fail on a table that now exists, and retry.
    import time
    from concurrent.futures import ProcessPoolExecutor

    url = f"sqlite:///{tmp_path}/new.db" if scheme == "sqlite" else request.getfixturevalue("postgres_url")
    with ProcessPoolExecutor(6) as pool:
        pool.submit(int).result()  # the workers are up (forked) before the moment is set
        start = time.time() + 1.0
        assert list(pool.map(_open_at, [url] * 6, [start] * 6)) == ["opened"] * 6


@pytest.mark.parametrize("url", ["redis://localhost/0", "optuna.db", "journal"])
def test_an_unknown_storage_is_one_error_naming_the_valid_forms(url):
    with pytest.raises(ConfigError, match="not a storage URL") as error:
        open_storage(url)
    assert all(form in str(error.value) for form in ("sqlite:///", "postgresql://", "journal:///"))


def test_a_database_server_that_does_not_answer_is_one_error_saying_what_to_start():
    pytest.importorskip("psycopg", reason="the PostgreSQL driver (the postgres extra) is not installed")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConfigError, match="does not answer") as error:
        open_storage(f"postgresql://postgres:secret@127.0.0.1:{port}/lightsweep")
    message = str(error.value)
    assert "tools/postgres/start-postgres.sh" in message and "secret" not in message


def test_a_missing_database_driver_is_one_error_saying_what_to_install():
    try:
        import pg8000  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pg8000 is installed: its absence is what this test needs")
    with pytest.raises(ConfigError, match=r"driver for this database \(pg8000\) is not installed") as error:
        open_storage("postgresql+pg8000://postgres@127.0.0.1:5433/lightsweep")
    assert "lightsweep[postgres]" in str(error.value)


def test_sqlite_shared_by_workers_on_several_nodes_is_warned_about_naming_the_safer_storages():
    warning = storage_warning("sqlite:////shared/optuna.db", parallel_nodes=True)
    assert "sqlite:////shared/optuna.db" in warning and "postgresql://" in warning and "journal:///" in warning
    assert storage_warning("sqlite+pysqlite:////shared/optuna.db", parallel_nodes=True)
    assert storage_warning("sqlite:////shared/optuna.db", parallel_nodes=False) is None
    for safe in ("postgresql://u@db/study", "mysql+pymysql://u@db/study", "journal:///shared/study.log", None):
        assert storage_warning(safe, parallel_nodes=True) is None


def test_the_dashboard_serves_a_journal_study(tmp_path):
    pytest.importorskip("optuna_dashboard", reason="optuna-dashboard (the serve extra) is not installed")
    import optuna

    from lightsweep.sweep.dashboard import dashboard_app

    url = f"journal://{tmp_path}/study.log"
    optuna.create_study(study_name="j", storage=open_storage(url)).optimize(
        lambda trial: trial.suggest_float("x", 0, 1), n_trials=1
    )
    environ = {"PATH_INFO": "/api/studies", "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    statuses = []
    answer = dashboard_app(url)(environ, lambda status, headers, exc_info=None: statuses.append(status))
    studies = json.loads(b"".join(answer))["study_summaries"]
    assert statuses == ["200 OK"] and [s["study_name"] for s in studies] == ["j"]


def _two_trial_sweep(tmp_path: Path, storage: str) -> tuple[dict, list]:
    """A 2-trial digits sweep on `storage`, then `lightsweep report` on it; (study.json, the study's trials)."""

    proc, sweep_dir = sweep(
        tmp_path,
        *TINY_CNN,
        "dataset=digits",
        "+sweep=simple",
        "hydra.sweeper.n_trials=2",
        "trainer.max_epochs=1",
        "callbacks=none",
        f"hydra.sweeper.storage={storage}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study, meta = load_study(sweep_dir)
    trials = study.trials
    assert [(t.number, t.state.name) for t in trials] == [(0, "COMPLETE"), (1, "COMPLETE")]
    for trial in trials:
        assert run_json(sweep_dir / str(trial.number))["objective"] == trial.value
    (sweep_dir / "report.md").unlink(missing_ok=True)
    report = cli("lightsweep", "report", str(sweep_dir))
    assert report.returncode == 0, report.stderr[-2000:]
    assert "## Best trial" in (sweep_dir / "report.md").read_text()
    return meta, trials


@pytest.mark.slow
def test_a_sweep_on_a_journal_file_relative_to_the_launch_dir(tmp_path):
    meta, _ = _two_trial_sweep(tmp_path, "journal://journal/study.log")
    journal = (tmp_path / "launch" / "journal" / "study.log").resolve()
    assert meta["storage"] == f"journal://{journal}" and journal.stat().st_size > 0


@pytest.mark.slow
@pytest.mark.postgres
def test_a_sweep_on_postgresql(tmp_path, postgres_url):
    meta, _ = _two_trial_sweep(tmp_path, postgres_url)
    assert meta["storage"] == postgres_url
