"""benchmarks/ucr_suite.py: resumes after a real kill without rerunning finished rows, summarises two
configurations, refuses bad input in one line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SHARED_DATA, shared_data
from lightsweep.paths import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
import ucr_suite  # noqa: E402

SUITE = [sys.executable, str(PROJECT_ROOT / "benchmarks" / "ucr_suite.py")]
# plain TS2Vec cut to 2 steps and no callbacks: seconds per run, the SVM evaluation included
TINY = ["--config", "ts2vec", "--name", "tiny", "--override", "trainer.max_steps=2", "--override", "callbacks=none"]


def rows_of(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_killed_suite_resumes_without_rerunning_finished_rows(tmp_path):
    shared_data("UCR/Chinatown")
    results = tmp_path / "results.jsonl"
    command = [*SUITE, *TINY, "--datasets", "Chinatown", "--seeds", "0", "1"]
    command += ["--results", str(results), "--data-dir", str(SHARED_DATA)]
    victim = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not results.exists() or not results.read_text():
        assert victim.poll() is None, "the suite ended before its first row"
        assert time.monotonic() < deadline, "no row within 240 s"
        time.sleep(0.05)
    victim.kill()  # SIGKILL while seed 1 trains: no handler runs
    victim.wait()
    first = results.read_text()
    assert len(first.splitlines()) == 1 and first.endswith("\n")  # the finished row, whole; nothing of seed 1
    finished = rows_of(results)[0]
    stamp = (Path(finished["run_dir"]) / "run.json").stat().st_mtime_ns

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert results.read_text().startswith(first)  # the finished row untouched, byte for byte
    assert (Path(finished["run_dir"]) / "run.json").stat().st_mtime_ns == stamp  # and not re-run
    rows = rows_of(results)
    assert [(r["name"], r["dataset"], r["seed"]) for r in rows] == [("tiny", "Chinatown", 0), ("tiny", "Chinatown", 1)]
    second = json.loads((tmp_path / "results_runs" / "tiny" / "Chinatown" / "seed1" / "run.json").read_text())
    assert second["status"] == "ok" and second["finished"] == rows[1]["date"]
    assert rows[1]["test_acc"] == second["metrics"]["test/acc"] and rows[1]["train_s"] > 0
    assert rows[1]["wall_s"] >= rows[1]["train_s"] and rows[1]["overrides"][-1] == "callbacks=none"


def _hand_rows() -> list[dict]:
    """new vs old: Beef +5 points (over seeds 0, 1: new's seed 2 has no partner), Car -5, Fish tie, Adiac +2,
    Earthquakes +1, Coffee only run by new. Training-time ratios 2, 1.5, 1, 0.5, 1.25."""
    table = {
        ("new", "Beef"): ([0.80, 0.70, 0.90], [2, 2, 9]),
        ("old", "Beef"): ([0.70, 0.70], [1, 1]),
        ("new", "Car"): ([0.60, 0.60], [3, 3]),
        ("old", "Car"): ([0.65, 0.65], [2, 2]),
        ("new", "Fish"): ([0.90, 0.80], [1, 1]),
        ("old", "Fish"): ([0.80, 0.90], [1, 1]),
        ("new", "Adiac"): ([0.50, 0.52], [1, 1]),
        ("old", "Adiac"): ([0.48, 0.50], [2, 2]),
        ("new", "Earthquakes"): ([0.76, 0.76], [5, 5]),
        ("old", "Earthquakes"): ([0.75, 0.75], [4, 4]),
        ("new", "Coffee"): ([1.0], [1]),
    }
    return [
        {"name": name, "dataset": dataset, "seed": seed, "test_acc": acc, "train_s": train, "date": "2026-12-01"}
        for (name, dataset), (accs, trains) in table.items()
        for seed, (acc, train) in enumerate(zip(accs, trains, strict=True))
    ]


def test_summary_of_a_hand_written_results_file(tmp_path, capsys):
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(row) + "\n" for row in _hand_rows()))
    datasets = ["Beef", "Car", "Fish", "Adiac", "Earthquakes", "Coffee"]
    summary = ucr_suite.compare(ucr_suite.read_rows(results), "new", "old", datasets)
    means = {t["dataset"]: (t["this"], t["other"]) for t in summary["table"]}
    assert means["Beef"] == pytest.approx((0.75, 0.70)) and summary["missing"] == ["Coffee"]
    assert summary["mean_this"] == pytest.approx(0.694) and summary["mean_other"] == pytest.approx(0.688)
    assert summary["rank_this"] == pytest.approx(1.3) and summary["rank_other"] == pytest.approx(1.7)
    assert (summary["wins"], summary["ties"], summary["losses"]) == (3, 1, 1)
    assert summary["worst"][0] == "Car" and summary["worst"][1] == pytest.approx(-5.0)
    assert summary["median_time_ratio"] == pytest.approx(1.25)

    ucr_suite.main(["--name", "new", "--compare", "old", "--no-run", f"--results={results}", "--datasets", *datasets])
    printed = capsys.readouterr().out
    assert "| Beef | 0,1 | 0.7500 | 0.7000 | +5.00 | 2.00 |" in printed
    for part in ("wins/ties/losses 3/1/1", "worst deficit Car (-5.00 points)", "mean rank 1.30 vs 1.70"):
        assert part in printed
    assert "median training-time ratio 1.25" in printed and "left out): Coffee" in printed


@pytest.mark.parametrize(
    ("args", "message", "valid"),
    [
        (["--config", "bogus"], "unknown configuration 'bogus'", "defaults, ts2vec"),
        (["--datasets", "NoSuchSet"], "unknown dataset NoSuchSet", "presets dev or ArrowHead, GunPoint"),
        (["--no-run", "--compare", "nobody"], "no rows named 'nobody'", "Names there: none yet"),
    ],
)
def test_bad_input_is_one_line_naming_what_is_valid(tmp_path, args, message, valid):
    # an empty data dir: only the sets shipped with aeon are valid
    proc = subprocess.run(
        [*SUITE, *args, "--data-dir", str(tmp_path), "--results", str(tmp_path / "results.jsonl")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert message in proc.stderr and valid in proc.stderr
    assert not (tmp_path / "results.jsonl").exists()
