# Two commands for a fresh machine: `make demo` (set up, build the demo site) and `make test`.
PYTHON ?= python3
VENV ?= .venv
# Where pip finds torch. Empty: the default index (this project's machines hold the CPU wheel locally).
# Elsewhere: make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu, or pip picks a multi-GB CUDA build.
TORCH_INDEX ?=
PY := $(VENV)/bin/python

.PHONY: setup demo serve test lint golden docs

setup: $(VENV)/.installed

# torch first, pinned, so pip takes the CPU wheel and the package's range is already met
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: setup
	$(VENV)/bin/facetrend build

serve: demo
	$(VENV)/bin/facetrend serve

# pytest exits 5 when it collects no test; that is not a failure of the suite
test: setup
	$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

lint: setup
	$(VENV)/bin/ruff check generator tests benchmarks

# Rewrite tests/golden/ (the demo's report.json, the site's file list) from a fresh smoke build; review, commit
golden: setup
	$(PY) -m pytest -q tests/test_golden.py --regen-golden

docs: setup
	$(VENV)/bin/facetrend settings > docs/settings.md
