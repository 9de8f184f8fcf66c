# Two set-up commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test test-heavy bench bench-dask lint install install-test clean parity fuzz caffe2-suite gpu-check cuda-ptx

$(PY):
	$(PYTHON) -m venv $(VENV)

# The demo's install includes the plot extra (matplotlib): the main job writes its training plot.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install -q -e ".[plot]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PIP) install -q -e ".[test]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(VENV)/bin/caffe2ops train -o demo-output

test: $(VENV)/.installed-test
	$(PY) -m pytest -q

# Longer fuzzing than `make test` does: `make fuzz MINUTES=5`.
MINUTES ?= 5
fuzz: $(VENV)/.installed-test
	$(PY) tests/fuzz_main.py --minutes $(MINUTES)

bench: $(VENV)/.installed-test
	$(PY) benchmarks/run.py

# Real Caffe2 (the oracle): PyPI's torch==1.5.0 for Python 3.8 contains Caffe2's CPU runtime.
CAFFE2_VENV := .venv-caffe2
PY38 ?= $(shell for p in python3.8 $$HOME/.pyenv/versions/3.8*/bin/python3.8; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 8)' >/dev/null 2>&1 && { echo "$$p"; break; }; done)

$(CAFFE2_VENV)/.installed:
	@if [ -z "$(PY38)" ]; then \
		echo "make parity: Python 3.8 not found. Real Caffe2 comes from PyPI's torch==1.5.0, which" >&2; \
		echo "exists for Python <= 3.8 only: install it (e.g. 'pyenv install 3.8') or pass PY38=/path/to/python3.8." >&2; \
		exit 1; fi
	$(PY38) -m venv $(CAFFE2_VENV)
	$(CAFFE2_VENV)/bin/python -m pip install -q torch==1.5.0 numpy==1.18.5 protobuf==3.20.3 \
		'hypothesis<6.80' 'pytest<8' future six
	touch $@

# CAFFE2_PYTHON=/path/to/python (an interpreter with real Caffe2) skips creating .venv-caffe2.
parity: $(VENV)/.installed-test $(if $(CAFFE2_PYTHON),,$(CAFFE2_VENV)/.installed)
	CAFFE2OPS_PARITY=1 $(PY) -m pytest -q -p no:cacheprovider tests/parity
bench-dask: $(VENV)/.installed-test
	$(PY) benchmarks/bench_dask.py

test-heavy: $(VENV)/.installed-test
	CAFFE2OPS_HEAVY_TESTS=1 $(PY) -m pytest -q tests/test_dask.py tests/test_distributed_torch.py \
		tests/test_fuzz.py

# On a GPU machine without network (Python with numba, numba-cuda, CuPy and torch preinstalled):
# install this checkout without downloads, then the real-GPU tests and the GPU benchmark.
GPU_PYTHON ?= python3
gpu-check:
	$(GPU_PYTHON) -m pip install -q --no-deps --no-build-isolation -e .
	$(GPU_PYTHON) -m pytest -q -p no:cacheprovider --noconftest -rs tests/test_cuda_gpu.py
	$(GPU_PYTHON) benchmarks/gpu.py

# Compile every kernel the simulator tests launch to PTX for cc 9.0 (no GPU; needs NVVM, e.g.
# pip install 'numba-cuda[cu12]'): the simulator runs kernels as Python and never type-checks them.
cuda-ptx: $(VENV)/.installed-test
	$(PY) tests/cuda_ptx_check.py

lint: $(VENV)/.installed-test
	$(PY) -m ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build src/*.egg-info

# Caffe2's own tests for our operators, copied out of the Caffe2 wheel at run time (not in `make test`).
caffe2-suite: $(VENV)/.installed-test $(CAFFE2_VENV)/.installed
	$(PY) tests/caffe2_suite.py
