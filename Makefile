# `make demo` and `make test` set everything up on a fresh machine (Python 3.11+).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.seal-installed

.PHONY: setup demo test test-fast bench-gpu bench-gpu-rehearse clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	# torch first, pinned: anything unpinned that depends on it would pull the CUDA build
	$(BIN)/python -m pip install -c constraints.txt torch
	$(BIN)/python -m pip install -c constraints.txt -e '.[all,test]'
	touch $(STAMP)

demo: setup
	$(BIN)/seal demo

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

# `seal bench gpu` on a CUDA machine as it comes (docs/engines.md, "GPU"): no venv, nothing installed; torch,
# transformers, peft, accelerate, safetensors, pyyaml, typer, rich and pydantic must be importable.
# make bench-gpu BENCH_OUT=/somewhere/gpu.json COMMIT=<sha, where there is no git checkout>
BENCH_OUT ?= bench-gpu.json
BENCH_ENV = PYTHONPATH=src$${PYTHONPATH:+:$$PYTHONPATH}

bench-gpu:
	$(BENCH_ENV) $(PYTHON) -m seal.cli bench gpu --out $(BENCH_OUT) $(if $(COMMIT),--commit $(COMMIT))
	@echo "JSON: $(BENCH_OUT)"

# the same stages on CPU at toy sizes, as on a GPU machine (trl, datasets, ... hidden): about 2 minutes
bench-gpu-rehearse:
	$(BENCH_ENV) $(PYTHON) -m seal.cli bench gpu --rehearse --out $(BENCH_OUT)
	@echo "JSON: $(BENCH_OUT)"

clean:
	rm -rf $(VENV) runs .pytest_cache
