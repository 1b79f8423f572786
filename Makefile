# antispoof_ros: the two commands a newcomer needs are `make demo` and `make test`.
# Both create/update the project-local environment (.venv) first; that step is
# idempotent and takes a second when nothing changed.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-fast lint clean

setup:
	@bash tools/setup_venv.sh

demo: setup
	@$(PY) -m antispoof_ros.tools.demo

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf build $(VENV)
