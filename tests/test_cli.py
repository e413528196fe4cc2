"""The `lightsweep` command: help on every subcommand, and the reproduce table's layout."""

from __future__ import annotations

import pytest

from conftest import cli
from lightsweep.reproduce import _compare


@pytest.mark.parametrize("command", ["reproduce", "report", "dashboard"])
def test_help_on_a_subcommand_prints_the_usage_and_runs_nothing(command):
    proc = cli("lightsweep", command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: lightsweep") and "reproduce RUN_DIR" in proc.stdout
    assert "not a finished lightsweep run" not in proc.stdout + proc.stderr


def test_the_reproduce_table_stays_aligned_with_long_metric_names(capsys):
    before = {"test/acc": 0.9, "val/health/neuron_utilization_of_layer": 0.5, "test/auprc": None}
    code = _compare(before, dict(before), 0.0, "/tmp/again")
    rows = capsys.readouterr().out.splitlines()[:4]
    assert code == 0
    assert len({row.rstrip().rfind(" ") for row in rows}) == 1  # the match column starts at one place
    assert len({len(row) for row in rows[1:]}) == 1
