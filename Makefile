# lightsweep: `make train` runs the default experiment, `make test` runs the test suite.
# Both create .venv on first use. torch is pinned to the CPU build (2.13.0): pip takes it from the
# local wheel folder configured for pip on this machine; a looser pin would pull a multi-GB CUDA build.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TRAIN_ARGS ?= experiment=timehut_chinatown dataset=unit_test
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install dev train lint format test bench slurm postgres browser cxx clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[timeseries]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -e '.[dev,serve,tfds,tracking,postgres]'
	touch $@

install: $(VENV)/.installed  ## create .venv and install lightsweep (with the timeseries extra: aeon's offline sets)

dev: $(VENV)/.installed-dev  ## also install the dev, serve, tfds, tracking and postgres extras (pytest, optuna-dashboard, tensorflow-datasets, wandb, mlflow, psycopg)

train: install  ## TimeHUT's Chinatown recipe on aeon's offline UnitTest set (no download); TRAIN_ARGS=... to change
	$(BIN)/python train.py $(TRAIN_ARGS)

lint: dev  ## ruff: lint and format check (line length 120); `make format` fixes what it can
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: dev  ## ruff: sort imports, fix what is safe, format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint  ## ruff, then the whole test suite (what CI runs); PYTEST_ARGS=... to narrow it
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install  ## overhead, callbacks overhead, data loading, TimeHUT speed/accuracy, pruning (writes benchmarks/RESULTS.md)
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/callbacks_overhead.py --plots
	$(BIN)/python benchmarks/data_loading.py
	$(BIN)/python benchmarks/timehut_speed.py
	$(BIN)/python benchmarks/timehut_accuracy.py
	$(BIN)/python benchmarks/sweep_pruning.py

slurm:  ## as root on Debian: apt-get the packages of the local SLURM cluster the `slurm` tests start
	SLURM_CI_INSTALL=1 SLURM_CI_INSTALL_ONLY=1 tools/slurm/start-slurm.sh

postgres:  ## as root on Debian: apt-get the packages of the local PostgreSQL server the `postgres` tests start
	PG_CI_INSTALL=1 PG_CI_INSTALL_ONLY=1 tools/postgres/start-postgres.sh

browser:  ## as root on Debian: apt-get chromium, the browser the `browser` tests drive (Playwright downloads none)
	@if [ -x /usr/bin/chromium ]; then echo "chromium is installed: /usr/bin/chromium"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "make browser: installing chromium needs root on Debian (apt-get install chromium)" >&2; exit 1; fi

cxx:  ## as root on Debian: apt-get g++, the compiler torch.compile's CPU backend (inductor) builds kernels with
	@if command -v g++ >/dev/null; then echo "g++ is installed: $$(command -v g++)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null; \
	else echo "make cxx: installing g++ needs root on Debian (apt-get install g++)" >&2; exit 1; fi

clean:  ## remove .venv, outputs/ and multirun/
	rm -rf $(VENV) outputs multirun
