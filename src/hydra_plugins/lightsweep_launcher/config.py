"""Configs of the lightsweep launchers: the stock submitit settings, plus `fallback_local` for SLURM."""

from __future__ import annotations

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf


@dataclass
class LightsweepLocalConf(LocalQueueConf):
    _target_: str = "hydra_plugins.lightsweep_launcher.launcher.LightsweepLocalLauncher"


@dataclass
class LightsweepSlurmConf(SlurmQueueConf):
    _target_: str = "hydra_plugins.lightsweep_launcher.launcher.LightsweepSlurmLauncher"
    # No reachable scheduler (or no sacct): run the jobs as local processes with a warning (false: stop with
    # an error).
    fallback_local: bool = True


_store = ConfigStore.instance()
_store.store(group="hydra/launcher", name="lightsweep_submitit_local", node=LightsweepLocalConf, provider="lightsweep")
_store.store(group="hydra/launcher", name="lightsweep_submitit_slurm", node=LightsweepSlurmConf, provider="lightsweep")
