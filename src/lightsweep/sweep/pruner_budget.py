"""The default pruner's settings of `+sweep=simple|health`, derived from the sweep's budget (the
`lightsweep.pruner_startup` and `lightsweep.pruner_warmup` resolvers of
conf/hydra/sweeper/pruner_budget/median.yaml). The measurements behind the rule: benchmarks/RESULTS.md, notes on
the default pruner. Imports nothing heavy until a null max_epochs makes it ask the model family for its budget."""

from __future__ import annotations

from typing import Any

# A quarter of the trials finish unpruned before the median decides: with 2-3 finished trials the median pruned
# slow starters that would have been the best (16 trials, 4 epochs); 5 (Optuna's default) saved no more than 4.
STARTUP_SHARE = 4
MIN_STARTUP, MAX_STARTUP = 2, 5  # a median of one trial is that trial
WARMUP_SHARE = 8  # each trial's first epochs // 8 are never pruned: 0 of 4 saved more than 1, at the same bests


def startup_trials(n_trials: int) -> int:
    """n_startup_trials: n_trials // STARTUP_SHARE, within [MIN_STARTUP, MAX_STARTUP]."""
    return min(MAX_STARTUP, max(MIN_STARTUP, int(n_trials) // STARTUP_SHARE))


def warmup_epochs(max_epochs: int | None, *, _root_: Any) -> int:
    """n_warmup_steps: epochs // WARMUP_SHARE of the run's epoch budget (trainer.max_epochs, or the model
    family's own when null); 1 for a one-epoch budget, never pruned: its only check would come after its only
    epoch, with nothing left to save; 0 when the budget is not in epochs (max_epochs=-1, a step budget)."""
    epochs = max_epochs if max_epochs is not None else _family_epochs(_root_)
    if not epochs or epochs < 0:
        return 0
    return 1 if epochs == 1 else epochs // WARMUP_SHARE


def _family_epochs(root: Any) -> int | None:
    """The epochs the run's model family trains when the config sets no budget (its default_budget); None for
    a step budget or a family without a validation loop (TimeHUT: no per-epoch metric, so nothing to warm up)."""
    if root.trainer.get("max_steps", -1) != -1:
        return None
    import lightning as L
    from hydra.utils import get_object
    from omegaconf import OmegaConf

    from lightsweep.models.registry import dataset_modality, resolve_model_config

    model = OmegaConf.to_container(root.model, resolve=True)
    modality = dataset_modality(root.dataset._target_) if model.get("family") == "auto" else ""
    family_class = get_object(resolve_model_config(model, modality)[1]["_target_"])
    if family_class.validation_step is L.LightningModule.validation_step:
        return None  # its budget may depend on the data (TimeHUT: steps by training-set size)
    return family_class.default_budget(None).get("max_epochs")  # the classifiers' budgets ignore the data
