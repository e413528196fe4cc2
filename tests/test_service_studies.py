"""What the service reads from a job: its study (lightsweep.service.studies), its files and ZIP download
(lightsweep.service.archive) and the catalog (lightsweep.service.catalog). One real 3-trial digits sweep
through the CLI into <job folder>/sweep serves the module; the study's answers are checked against
optuna.load_study on the same storage."""

from __future__ import annotations

import io
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from datetime import datetime
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from test_sweep import TINY_CNN, load_study, run_json, sweep

from conftest import SHARED_DATA
from lightsweep.objective import MODES, OBJECTIVES
from lightsweep.paths import CONF_DIR
from lightsweep.service import archive, catalog
from lightsweep.service.stopping import mark_stopped
from lightsweep.service.studies import JobStudy, forget
from lightsweep.sweep.study import INTERRUPTED, best_command, open_storage, write_study_json

EMPTY_PROGRESS = {"n_trials": None, "done": 0, "running": [], "best_value": None, "states": {}}


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> Path:
    """A job folder as the service lays it out: the sweep in sweep/, the process's output in job.log."""
    job_dir = tmp_path_factory.mktemp("job")
    proc, _ = sweep(
        job_dir,
        *TINY_CNN,
        "+sweep=simple",
        "hydra/sweeper/pruner=median",  # the pruner's trials report every epoch
        "hydra.sweeper.n_trials=3",
        "trainer.max_epochs=2",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (job_dir / "job.log").write_text(proc.stdout + proc.stderr)
    return job_dir


@pytest.mark.slow
def test_trials_are_the_studys_with_their_run_records(job):
    study, _ = load_study(job / "sweep")
    trials = JobStudy(job / "sweep").trials()
    assert [(t["number"], t["state"]) for t in trials] == [(n, "COMPLETE") for n in range(3)]
    for record, trial in zip(trials, study.trials, strict=True):
        assert record["params"] == trial.params and record["value"] == trial.value == record["values"][0]
        assert record["epochs"] == [{"epoch": e, "value": v} for e, v in sorted(trial.intermediate_values.items())]
        assert [e["epoch"] for e in record["epochs"]] == [0, 1] and record["last_epoch"] == 1
        assert record["run_dir"] == trial.user_attrs["run_dir"] == str(job / "sweep" / str(trial.number))
        run = run_json(Path(record["run_dir"]))
        assert record["health"] == {"overall": run["health"]["overall"], "components": run["health"]["components"]}
        assert record["metrics"] == run["metrics"]
        assert datetime.fromisoformat(record["started"]) == trial.datetime_start.astimezone()
        assert datetime.fromisoformat(record["completed"]) == trial.datetime_complete.astimezone()
        assert record["duration_s"] == (trial.datetime_complete - trial.datetime_start).total_seconds()
        assert record["error"] is None and record["interrupted"] is False
    json.dumps(trials, allow_nan=False)  # what the API sends as it is


@pytest.mark.slow
def test_best_trial_trends_progress_and_snapshot_agree_with_the_study(job):
    study, meta = load_study(job / "sweep")
    reader = JobStudy(job / "sweep")
    best = reader.best_trial()
    assert best["number"] == study.best_trial.number and best["params"] == study.best_trial.params
    assert best["value"] == study.best_value and best["values"] == [study.best_value] and best["pareto"] is None
    assert best["run_dir"] == study.best_trial.user_attrs["run_dir"]
    assert best["health"]["overall"] == run_json(Path(best["run_dir"]))["health"]["overall"]
    assert best["command"] == best_command(Path(best["run_dir"])) == meta["best"][0]["command"]  # the report's

    trends = reader.trends()
    values = [t.value for t in study.trials]
    assert trends["objective"] == [{"number": t.number, "value": t.value, "values": t.values} for t in study.trials]
    assert trends["best_so_far"] == [
        {"number": n, "value": v} for n, v in enumerate(itertools.accumulate(values, max))
    ]  # the study maximizes val_accuracy
    assert trends["epochs"] == [{"number": n, "epochs": 2} for n in range(3)]
    assert [h["overall"] for h in trends["health"]] == [
        run_json(Path(t.user_attrs["run_dir"]))["health"]["overall"] for t in study.trials
    ]

    assert reader.progress() == {
        "n_trials": 3,
        "done": 3,
        "running": [],
        "best_value": study.best_value,
        "states": {"COMPLETE": 3},
    }
    assert reader.snapshot() == {t.number: (t.state.name, max(t.intermediate_values)) for t in study.trials}
    assert reader.current_trial() is None and reader.running_trials() == []


def test_a_sweep_is_read_as_it_runs(tmp_path):
    """A study written the way a running sweep writes it (a real SQLite storage, another handle on it): every
    state, an interrupted trial not counted, running trials with their epochs, then a trial finishing."""
    sweep_dir = tmp_path / "sweep"
    reader = JobStudy(sweep_dir)
    assert (reader.trials(), reader.running_trials(), reader.current_trial()) == ([], [], None)
    assert reader.best_trial() is None
    assert reader.trends() == {"objective": [], "best_so_far": [], "health": [], "epochs": []}
    assert (reader.progress(), reader.snapshot()) == (EMPTY_PROGRESS, {})  # no study.json yet

    url = f"sqlite:///{sweep_dir}/optuna.db"
    study = optuna.create_study(study_name="live", storage=open_storage(url), direction="minimize")
    write_study_json(sweep_dir, {"study_name": "live", "storage": url, "directions": ["minimize"], "n_trials": 4})
    space = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
    trials = [study.ask(space) for _ in range(5)]
    for trial, curve in zip(trials, ([0.9, 0.5], [0.8], [], [0.7], [math.nan])):
        for epoch, value in enumerate(curve):
            trial.report(value, epoch)
    study.tell(trials[0], 0.5)
    study.tell(trials[1], state=TrialState.PRUNED)
    trials[2].set_user_attr("error", "interrupted: the sweep was stopped during this trial")
    trials[2].set_user_attr(INTERRUPTED, True)
    study.tell(trials[2], state=TrialState.FAIL)
    (sweep_dir / "4").mkdir()  # trial 4's job dir, before the sweeper records it as the trial's run_dir

    assert reader.snapshot() == {
        0: ("COMPLETE", 1),
        1: ("PRUNED", 0),
        2: ("FAIL", None),
        3: ("RUNNING", 0),
        4: ("RUNNING", 0),
    }
    assert reader.progress() == {
        "n_trials": 4,
        "done": 2,  # the interrupted trial is run again by a resumed sweep
        "running": [{"number": 3, "epoch": 0}, {"number": 4, "epoch": 0}],
        "best_value": 0.5,
        "states": {"COMPLETE": 1, "PRUNED": 1, "FAIL": 1, "RUNNING": 2},
    }
    records = reader.trials()
    json.dumps(records, allow_nan=False)
    assert records[1]["value"] is None and records[1]["epochs"] == [{"epoch": 0, "value": 0.8}]  # pruned
    assert records[2]["interrupted"] is True and records[2]["error"].startswith("interrupted")
    assert records[4]["epochs"] == [{"epoch": 0, "value": None}]  # NaN is no JSON number
    assert (records[3]["run_dir"], records[4]["run_dir"]) == (None, str(sweep_dir / "4"))
    assert records[4]["completed"] is None and records[4]["duration_s"] is None
    assert [t["number"] for t in reader.running_trials()] == [3, 4] and reader.current_trial()["number"] == 4

    trials[3].report(0.4, 1)  # the running trial goes on and ends best
    study.tell(trials[3], 0.4)
    assert reader.snapshot()[3] == ("COMPLETE", 1)
    assert reader.progress()["best_value"] == 0.4 and reader.progress()["done"] == 3
    best = reader.best_trial()
    assert (best["number"], best["value"], best["params"]) == (3, 0.4, trials[3].params)
    assert best["command"] is None  # no run dir recorded: nothing to rerun
    assert reader.trends()["best_so_far"] == [{"number": 0, "value": 0.5}, {"number": 3, "value": 0.4}]

    assert reader.epochs(3) == [(0, 0.7), (1, 0.4)] and reader.epochs(3, after=0) == [(1, 0.4)]
    assert reader.epochs(4) == [(0, None)] and reader.epochs(99) == []
    outcome = reader.outcome(3)
    assert (outcome["state"], outcome["value"], outcome["last_epoch"]) == ("COMPLETE", 0.4, 1)
    assert "epochs" not in outcome and reader.outcome(99) is None

    # The job was stopped: its running trial is FAIL "stopped" and not counted; a finished one is kept.
    assert mark_stopped(sweep_dir, [3, 4], "stopped: POST /jobs/<id>/stop during this trial") == [4]
    stopped = optuna.load_study(study_name="live", storage=url).trials[4]
    assert stopped.state is TrialState.FAIL and stopped.user_attrs[INTERRUPTED] is True
    assert reader.outcome(4)["error"].startswith("stopped") and reader.outcome(4)["interrupted"] is True
    assert reader.progress()["done"] == 3 and reader.progress()["running"] == []
    assert mark_stopped(sweep_dir, [4], "again") == [] and reader.outcome(4)["error"].startswith("stopped")

    forget(sweep_dir)  # a deleted job's connections closed; reading again reopens them
    assert reader.snapshot()[4] == ("FAIL", 0)


def test_stopping_a_job_leaves_the_trials_of_another_driver_of_its_study_alone(tmp_path):
    """The job's process group holds its sweep; a sweep started by hand on the same study (another live
    process here, or another host) keeps its running trials; trials without a driver, or whose driver is
    gone, are the job's."""
    import socket

    from lightsweep.service.stopping import request_stop
    from lightsweep.sweep.drivers import WORKER
    from lightsweep.sweep.study import STOP_REQUEST

    sweep_dir = tmp_path / "sweep"
    url = f"sqlite:///{sweep_dir}/optuna.db"
    study = optuna.create_study(study_name="shared", storage=open_storage(url))
    write_study_json(sweep_dir, {"study_name": "shared", "storage": url, "directions": ["minimize"], "n_trials": 9})
    job = subprocess.Popen(["sleep", "60"], start_new_session=True)  # the job's runner: its group's leader
    gone = subprocess.Popen(["true"])
    gone.wait()
    host = socket.gethostname()
    workers = [f"{host}:{job.pid}", f"{host}:{os.getpid()}", f"elsewhere:{job.pid}", None, f"{host}:{gone.pid}"]
    try:
        for worker in workers:
            trial = study.ask()
            if worker:
                trial.set_user_attr(WORKER, worker)
        request_stop(sweep_dir, [0, 1, 2, 3, 4], "POST /jobs/j/stop", group=job.pid)
        noted = [STOP_REQUEST in t.user_attrs for t in study.get_trials()]
        assert noted == [True, False, False, True, True]
        assert mark_stopped(sweep_dir, [0, 1, 2, 3, 4], "stopped: job j", group=job.pid) == [0, 3, 4]
        assert [t.state.name for t in study.get_trials()] == ["FAIL", "RUNNING", "RUNNING", "FAIL", "FAIL"]
    finally:
        job.kill()
        job.wait()


def test_a_multi_objective_study_gives_its_pareto_front(tmp_path):
    url = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="two", storage=open_storage(url), directions=["maximize", "minimize"])
    write_study_json(tmp_path, {"study_name": "two", "storage": url, "directions": ["maximize", "minimize"]})
    for values in ([0.9, 30.0], [0.8, 10.0], [0.7, 20.0]):  # the last is dominated by the second
        study.tell(study.ask(), values)
    best = JobStudy(tmp_path).best_trial()
    assert [t["number"] for t in best["pareto"]] == [0, 1]  # best first by the first objective
    assert (best["number"], best["value"], best["values"]) == (0, None, [0.9, 30.0])
    assert JobStudy(tmp_path).trials()[0]["value"] is None


@pytest.mark.slow
def test_listing_holds_the_jobs_files_and_serves_only_those(job):
    listed = archive.listing(job)
    names = [entry["name"] for entry in listed]
    assert names == sorted(names)
    assert {"job.log", "sweep/report.md", "sweep/study.json"} <= set(names)
    assert {f"sweep/{n}/run.json" for n in range(3)} <= set(names)
    assert any(n.startswith("sweep/plots/") and n.endswith(".png") for n in names)
    assert "sweep/best/best_hyperparameters.yaml" in names  # best/ links to a folder inside the job
    assert not any("/.best." in n for n in names)  # ...shown once, under best/
    for entry in listed:
        assert entry["size"] == (job / entry["name"]).stat().st_size
        assert datetime.fromisoformat(entry["modified"]).timestamp() == pytest.approx(
            (job / entry["name"]).stat().st_mtime, abs=1e-3
        )
    assert archive.resolve_listed(job, "sweep/report.md").samefile(job / "sweep" / "report.md")
    assert archive.resolve_listed(job, "sweep/best/best_hyperparameters.yaml").is_relative_to(job.resolve())


def test_resolve_listed_refuses_every_name_not_listed(tmp_path):
    job, outside = tmp_path / "job", tmp_path / "outside"
    (job / "sweep" / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("not the job's")
    (job / "sweep" / "report.md").write_text("# report")
    (job / "sweep" / "sub" / "inside.txt").write_text("inside")
    (job / "sweep" / ".report.md.1234.part").write_text("half written")
    (job / "sweep" / "leak").symlink_to(outside / "secret.txt")
    (job / "sweep" / "best").symlink_to(outside, target_is_directory=True)
    (job / "sweep" / "inner").symlink_to("sub", target_is_directory=True)  # inside the job: followed
    (job / "sweep" / "loop").symlink_to(job, target_is_directory=True)  # back up: not walked again
    listed = [e["name"] for e in archive.listing(job)]
    assert listed == ["sweep/inner/inside.txt", "sweep/report.md", "sweep/sub/inside.txt"]
    assert archive.resolve_listed(job, "sweep/inner/inside.txt").read_text() == "inside"
    for name in (
        "../outside/secret.txt",
        "sweep/../../outside/secret.txt",
        "sweep/../sweep/report.md",
        "./sweep/report.md",
        "sweep//report.md",
        str(outside / "secret.txt"),
        str(job / "sweep" / "report.md"),
        "/etc/passwd",
        "sweep/leak",
        "sweep/best/secret.txt",
        "sweep/.report.md.1234.part",
        "sweep/missing.md",
        "sweep",
        "",
    ):
        assert archive.resolve_listed(job, name) is None, name
    assert archive.listing(tmp_path / "no-such-job") == []


@pytest.mark.slow
def test_zip_streams_the_report_plots_best_and_trial_records(job):
    sweep_dir = job / "sweep"
    chunks = list(archive.zip_stream(job))
    data = b"".join(chunks)
    assert len(chunks) > 1 and max(map(len, chunks)) < len(data)  # produced piece by piece
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        assert bundle.testzip() is None  # every member's CRC checks
        expected = {"report.md", "study.json", "job.log"}
        expected |= {f"{n}/{file}" for n in range(3) for file in ("run.json", "metrics.csv")}
        expected |= {f"plots/{p.name}" for p in (sweep_dir / "plots").iterdir()}
        expected |= {f"best/{p.name}" for p in (sweep_dir / "best").iterdir()}
        assert set(bundle.namelist()) == expected
        assert bundle.read("report.md") == (sweep_dir / "report.md").read_bytes()
        best = "best/best_hyperparameters.yaml"
        assert bundle.read(best) == (sweep_dir / best).read_bytes()


def test_datasets_say_which_files_are_here(tmp_path):
    empty, coffee = tmp_path / "empty", tmp_path / "coffee"
    empty.mkdir()
    for split in ("TRAIN", "TEST"):  # where TimeSeriesDataModule looks: <data_dir>/<archive>/<name>/
        path = coffee / "UCR" / "Coffee" / f"Coffee_{split}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("0\t1.0\t2.0\n")
    found = {d["name"]: d for d in catalog.datasets(empty)}
    assert set(found) == {p.stem for p in (CONF_DIR / "dataset").glob("*.yaml")}
    assert found["digits"]["present"] and found["digits"]["modality"] == "image"  # shipped with scikit-learn
    assert found["gunpoint"]["present"] and found["gunpoint"]["modality"] == "timeseries"  # shipped with aeon
    assert not found["mnist"]["present"] and str(empty / "mnist") in found["mnist"]["detail"]
    assert not found["imdb"]["present"] and found["imdb"]["modality"] == "text"
    assert not found["coffee"]["present"] and not found["ucr"]["present"]
    assert found["ucr"]["detail"].startswith("a template")
    assert {d["name"]: d["present"] for d in catalog.datasets(coffee)}["coffee"]
    if (SHARED_DATA / "mnist").is_dir():
        assert {d["name"]: d["present"] for d in catalog.datasets(SHARED_DATA)}["mnist"]


def test_modes_objectives_cuda_and_executors():
    import torch

    assert [m["name"] for m in catalog.modes()] == list(MODES)
    objectives = {o["name"]: o for o in catalog.objectives()}
    assert set(objectives) == set(OBJECTIVES)
    assert objectives["overall_health"]["needs_health_mode"] and not objectives["val_accuracy"]["needs_health_mode"]
    assert objectives["test_accuracy"]["test_data_only"] and objectives["training_time"]["direction"] == "minimize"
    found = catalog.cuda()
    assert found["available"] is torch.cuda.is_available() and len(found["devices"]) == torch.cuda.device_count()
    executors = catalog.executors()
    assert set(executors) == {"local", "submitit", "slurm"} and executors["local"]["available"] is True
    assert all(isinstance(e["available"], bool) and e["detail"] for e in executors.values())
    if shutil.which("sinfo") is None:
        assert executors["slurm"]["available"] is False and "not on PATH" in executors["slurm"]["detail"]


def test_the_readers_import_nothing_heavy():
    code = (
        "import sys, lightsweep.service.studies, lightsweep.service.archive, lightsweep.service.catalog; "
        "print(sorted({'torch', 'optuna', 'lightning'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True)
    assert done.stdout.strip() == "[]"
