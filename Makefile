# Two commands on a fresh machine: `make test` and `make demo`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# PyTensor compiles C code on first use; keep that cache inside the checkout.
export PYTENSOR_FLAGS ?= base_compiledir=$(CURDIR)/.pytensor

.PHONY: test demo bench bench-mpi clean

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,examples,mpi,mnist]'
	touch $@

# One pytest worker per core (at most four; pytest-xdist), each test file on one worker so the
# functions a file compiles once are reused; one BLAS thread per worker, so workers do not contend.
test: $(VENV)/.installed
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(PY) -m pytest -q --durations=15 -n auto --maxprocesses=4 --dist loadfile tests

demo: $(VENV)/.installed
	$(PY) examples/rnn.py

bench: $(VENV)/.installed
	$(PY) bench/gv_cost.py

# Data-parallel HF: one rank against two (docs/mpi.md).
bench-mpi: $(VENV)/.installed
	$(PY) bench/mpi_speedup.py

clean:
	rm -rf $(VENV) .pytensor .pytest_cache .hypothesis *.egg-info
