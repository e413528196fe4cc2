"""lightsweep: Hydra-configured experiments on PyTorch Lightning, measured for real, tuned with Optuna.

Importing the package is cheap (no torch/lightning): the CLI's --help and config checks stay fast.
"""

__version__ = "0.1.0"
