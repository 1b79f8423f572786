# antispoof_ros: the two commands a newcomer needs are `make demo` and `make test`.
# Both create/update the project-local environment (.venv) first; that step is
# idempotent and takes a second when nothing changed.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-fast lint colcon clean

setup:
	@bash tools/setup_venv.sh

demo: setup
	@$(PY) -m antispoof_ros.tools.demo

# ruff, then colcon build + `colcon test` as on the rig (a quick subset and the ament
# linters, tools/colcon_check.sh), then the whole pytest suite
test: setup
	$(VENV)/bin/ruff check .
	@bash tools/colcon_check.sh
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow"

lint: setup
	$(VENV)/bin/ruff check .

colcon: setup
	@bash tools/colcon_check.sh

clean:
	rm -rf build $(VENV)
