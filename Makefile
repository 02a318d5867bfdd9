# Two commands on a fresh clone (Python 3.11+ is all it needs):
#   make demo   set up .venv and run the main job
#   make test   set up .venv and run ruff + pytest
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lstmlens-installed
# The CPU build of PyTorch; a bare `torch` would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: install demo test bench bench-store bench-serve train-all docs rules-doc neurons-doc evaluation-doc lint clean

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "lstmlens needs Python 3.11 or newer (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[all]"
	touch $(STAMP)

install: $(STAMP)

# PASSIVE: idle OpenMP threads sleep, so a machine busy with other work does not slow
# torch's 2 threads 10× (spinning threads fight for the cores).
demo: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/lstmlens demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

bench-store: $(STAMP)
	$(BIN)/python benchmarks/run.py --only bench_store

bench-serve: $(STAMP)
	$(BIN)/python benchmarks/run.py --only bench_serve

train-all: $(STAMP)
	$(BIN)/python benchmarks/run.py --only bench_tasks --threads 1

docs: $(STAMP)
	$(BIN)/python scripts/explain_doc.py

evaluation-doc: $(STAMP)
	$(BIN)/python scripts/evaluation_doc.py

rules-doc: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python scripts/rules_doc.py

neurons-doc: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python scripts/neurons_doc.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
