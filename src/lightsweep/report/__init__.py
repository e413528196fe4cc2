"""Plots and Markdown reports from run and sweep artifacts."""
