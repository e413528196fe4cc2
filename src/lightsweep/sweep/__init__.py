"""Sweeps: what the Optuna sweeper and its jobs share (study.py) and study reports (report.py, plots.py)."""
