# One word per job. `make demo` and `make test` are the README's two commands.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Python 3.12 lives under pyenv on these machines (see .python-version).
PYTHON312 := $(shell PYENV_VERSION=3.12.1 pyenv which python3.12 2>/dev/null || command -v python3.12)

.PHONY: venv demo test lint typecheck unit docs bench clean

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON312)" || { echo "python3.12 not found (pyenv 3.12.1 expected)"; exit 1; }
	test -x $(PY) || $(PYTHON312) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/vz demo

lint: venv
	$(VENV)/bin/ruff check src tests properties benchmarks docs_hooks
	$(VENV)/bin/ruff format --check src tests properties benchmarks docs_hooks

typecheck: venv
	$(VENV)/bin/mypy --strict src

unit: venv
	$(PY) -m pytest -q src tests properties docs

docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

test: lint typecheck docs unit

bench: venv
	$(PY) benchmarks/algebra.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
