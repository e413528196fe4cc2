"""Trials trained by several processes (strategy=ddp_spawn, two CPU ranks): one report per epoch from rank 0,
one prune decision for all ranks, one objective and one run.json with rank 0's records."""

from __future__ import annotations

import pytest
from optuna.trial import TrialState
from test_sweep import TINY_CNN, load_study, run_json, sweep

TWO_RANKS = ["strategy=ddp_spawn", "trainer.devices=2", "trainer.accelerator=cpu"]
EPOCHS = 4


@pytest.mark.slow
def test_a_ddp_spawn_sweep_reports_from_rank_zero_and_stops_every_rank_together(tmp_path):
    proc, sweep_dir = sweep(
        tmp_path,
        *TINY_CNN,
        *TWO_RANKS,
        "+sweep=simple",
        "callbacks=[model_checkpoint,health,efficiency]",
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=1",
        "hydra.sweeper.pruner.n_warmup_steps=1",  # prunable from the second epoch on: both ranks trained by then
        "hydra.sweeper.n_trials=4",
        # plain SGD at this rate barely moves in 8 steps an epoch: an SGD trial after an Adam one is pruned
        "model.optimizer._target_=choice(torch.optim.Adam,torch.optim.SGD)",
        "model.optimizer.lr=0.003",
        f"trainer.max_epochs={EPOCHS}",
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study, _ = load_study(sweep_dir)
    assert [t.number for t in study.trials] == [0, 1, 2, 3]
    assert {p.name for p in sweep_dir.iterdir() if p.name.isdigit()} == {"0", "1", "2", "3"}  # one job per trial
    assert TrialState.PRUNED in {t.state for t in study.trials}, [t.params for t in study.trials]
    for trial in study.trials:
        record = run_json(sweep_dir / str(trial.number))
        epochs = record["epochs_trained"]
        assert record["world_size"] == 2
        assert sorted(trial.intermediate_values) == list(range(epochs))  # one value per epoch trained
        # rank 0 reported once per epoch, rank 1 never; both ranks trained the same epochs
        assert record["pruning_by_rank"] == [{"reports": epochs, "epochs": epochs}, {"reports": 0, "epochs": epochs}]
        if trial.state is TrialState.PRUNED:
            assert record["status"] == "pruned" and record["objective"] is None
            assert record["pruned_at_epoch"] == max(trial.intermediate_values) == epochs - 1 < EPOCHS - 1
        else:
            assert trial.state is TrialState.COMPLETE and record["status"] == "ok" and epochs == EPOCHS
            assert record["pruned_at_epoch"] is None and trial.value == record["objective"]  # returned once
        # rank 0's records came back from its process: health, efficiency and epoch times of every epoch
        assert len(record["timings"]["epoch_s"]) == len(record["efficiency"]["epoch_seconds"]) == epochs
        assert len(record["health"]["curves"]["val/acc"]) == epochs and record["health"]["overall"] is not None
        assert record["efficiency"]["flops_per_step"] > 0


@pytest.mark.slow
def test_a_single_ddp_spawn_run_records_rank_zeros_health_efficiency_and_epochs(run_cfg):
    result, record = run_cfg(["dataset=digits", *TWO_RANKS, "callbacks=[health,efficiency]"])  # tests the last epoch
    assert result.status == "ok" and record["world_size"] == 2
    assert record["epochs_trained"] == 2 and record["objective_epoch"] == 1
    assert len(record["timings"]["epoch_s"]) == 2 and all(s > 0 for s in record["timings"]["epoch_s"])
    assert len(record["health"]["curves"]["train/loss"]) == 2 and record["health"]["components"]
    assert len(record["efficiency"]["samples_per_second"]) == 2 and record["efficiency"]["parameters"] > 0
    assert record["speed"]["first_step_s"] is not None  # every callback's record, not only health and efficiency
