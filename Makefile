# lightsweep: `make train` runs the default experiment, `make test` runs the test suite.
# Both create .venv on first use. torch is pinned to the CPU build (2.13.0): pip takes it from the
# local wheel folder configured for pip on this machine; a looser pin would pull a multi-GB CUDA build.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TRAIN_ARGS ?= experiment=digits_cnn
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install dev train test bench clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -e '.[dev,timeseries]'
	touch $@

install: $(VENV)/.installed  ## create .venv and install lightsweep

dev: $(VENV)/.installed-dev  ## install with the dev and timeseries extras (pytest, aeon)

train: install  ## run the default experiment (CNN on scikit-learn digits, no download); TRAIN_ARGS=... to change
	$(BIN)/python train.py $(TRAIN_ARGS)

test: dev  ## run the whole test suite (what CI runs); PYTEST_ARGS=... to narrow it
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install  ## framework overhead vs a plain PyTorch loop (writes benchmarks/RESULTS.md)
	$(BIN)/python benchmarks/overhead.py

clean:  ## remove .venv, outputs/ and multirun/
	rm -rf $(VENV) outputs multirun
