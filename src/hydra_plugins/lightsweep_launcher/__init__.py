"""Hydra launchers `lightsweep_submitit_local` and `lightsweep_submitit_slurm` (selected by conf/executor/): the
stock submitit launchers, plus a FAILED result for a job that was cancelled or killed, and a SLURM scheduler
check with a local fallback (see launcher.py; the check lives in _scheduler.py, which Hydra's plugin scan skips)."""
