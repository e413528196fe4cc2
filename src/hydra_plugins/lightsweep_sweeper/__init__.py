"""Hydra sweeper `lightsweep`: the stock Optuna sweeper plus trial pruning, resume, failure handling and
study reports (see sweeper.py; the search loop lives in _impl.py, which Hydra's plugin scan skips)."""
