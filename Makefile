# Two entry points for newcomers: `make run` (pipeline on the synthetic cohort) and
# `make test` (the whole test suite). Both create .venv from requirements.lock if needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha256sum requirements.lock pyproject.toml | sha256sum | cut -c1-12)
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup run test test-fast lint lock notebooks notebooks-sync bench-scale clean-env

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required (found " + sys.version.split()[0] + ")"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)  ## create the virtual environment from the lock file

run: $(STAMP)  ## run the DVC pipeline on the bundled synthetic cohort
	dvc repro
	@echo ""
	@echo "Done. Outputs:"
	@echo "  synthetic export (input tables):  data/raw/synthetic/"
	@echo "  ground truth and calibration:     data/raw/synthetic_truth/"
	@echo "  ingested tables + quarantine:     data/interim/ (ingest_report.json)"
	@echo "  features and outcomes:            data/processed/"
	@echo "  exact model tables (not to share): data/results/"
	@echo "  clinician report:                 reports/clinician.html"
	@echo "  technical report:                 reports/technical.html"
	@echo "  model tables, cards (disclosure-controlled): reports/tables/, reports/model_cards/"
	@echo "  headline metrics:                 reports/metrics.json (dvc metrics show)"
	@echo "  calibration vs published figures: reports/synthetic_calibration.json"

test: lint  ## lint (ruff, import layers, types) and run the whole test suite
	python -m pytest

test-fast: $(STAMP)  ## every module's unit tests, without the slow, notebook, Dask and browser ones (< 1 min)
	python -m pytest -q -m "not slow and not notebook and not dask and not browser"

notebooks: $(STAMP)  ## open the teaching notebooks in JupyterLab
	jupyter lab notebooks/

notebooks-sync: $(STAMP)  ## rewrite each notebooks/*.ipynb from its .py, without outputs
	jupytext --to ipynb notebooks/[0-9][0-9]_*.py

bench-scale: $(STAMP)  ## time every stage at 10k, 100k and 1M episodes (not a test; ~30 min)
	python benchmarks/bench_scale.py

lint: $(STAMP)  ## ruff, the import-linter contracts (pyproject.toml) and mypy on pipeline/
	ruff check .
	lint-imports
	mypy

lock:  ## re-resolve requirements.lock from pyproject.toml (needs network)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock

clean-env:
	rm -rf $(VENV)
