# Two set-up commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test bench lint install install-test clean fuzz

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PIP) install -q -e ".[test]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(VENV)/bin/caffe2ops demo

test: $(VENV)/.installed-test
	$(PY) -m pytest -q

# Longer fuzzing than `make test` does: `make fuzz MINUTES=5`.
MINUTES ?= 5
fuzz: $(VENV)/.installed-test
	$(PY) tests/fuzz_main.py --minutes $(MINUTES)

bench: $(VENV)/.installed-test
	$(PY) benchmarks/run.py

lint: $(VENV)/.installed-test
	$(PY) -m ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build src/*.egg-info
