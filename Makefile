# The two set-up commands of README.md:   make demo   |   make test
# Each creates .venv if it is missing, installs torch==2.13.0 first (a CPU build; an unpinned torch
# would pull a multi-GB CUDA build), then the project with the extras it needs, then runs.

comma := ,
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The GLUE directory: $GLUE_DIR if set, else this repository's sibling shared/data/glue if present.
GLUE_DIR ?= $(abspath $(firstword $(wildcard ../shared/data/glue)))
export GLUE_DIR

.PHONY: demo test lint clean-venv

$(PY):
	python3 -m venv $(VENV)

$(VENV)/.installed-%: pyproject.toml | $(PY)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[$(subst -,$(comma),$*)]'
	touch $@

demo: $(VENV)/.installed-demo-serve
	$(VENV)/bin/nxm-deploy demo

test: $(VENV)/.installed-dev-demo-serve
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: $(VENV)/.installed-dev-demo-serve
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pylint nxm_deploy    # duplicate code only (pyproject.toml [tool.pylint]); about 2 minutes

clean-venv:
	rm -rf $(VENV)
