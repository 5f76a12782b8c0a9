# ahazero: `make install && make train` trains the default recipe; `make test` runs the offline tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONFIG ?= configs/default.yaml
ARGS ?=
# torch: a CUDA build where a GPU is present, else the CPU build. Override TORCH_SPEC / TORCH_INDEX
# (e.g. TORCH_INDEX=--extra-index-url=https://download.pytorch.org/whl/cpu) to pick another build.
TORCH_GPU_SPEC ?= torch>=2.6
TORCH_CPU_SPEC ?= torch==2.13.0
TORCH_SPEC ?= $(if $(shell command -v nvidia-smi 2>/dev/null),$(TORCH_GPU_SPEC),$(TORCH_CPU_SPEC))
TORCH_INDEX ?=

.PHONY: install train check eval model bench test test-slow lint format docs clean-smoke

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

install: $(PY)
	@$(PY) -c "import torch" 2>/dev/null && echo "torch already installed: $$($(PY) -c 'import torch; print(torch.__version__)')" \
		|| $(PY) -m pip install -q $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"

GPUS ?= 1

train:
	$(VENV)/bin/ahazero train $(CONFIG) $(ARGS) --gpus $(GPUS)

check:
	$(VENV)/bin/ahazero check $(CONFIG) $(ARGS)

eval:
	$(VENV)/bin/ahazero eval $(CONFIG) $(ARGS)

model:
	$(VENV)/bin/ahazero fetch-model qwen2.5-coder-0.5b-instruct

# Rollout benchmark: tokens/s, step split, the decode step against the GPU's peaks and peak memory,
# per generation backend and completions per step (see docs/performance.md).
BENCH_ARGS ?= --backends hf,graph --presets fast-rollouts --batches 128,256,512,1024
bench:
	$(PY) scripts/bench_rollouts.py $(CONFIG) $(ARGS) $(BENCH_ARGS)

test:
	$(PY) -m pytest -q -m "not slow"

test-slow:
	$(PY) -m pytest -q -m slow

lint:
	$(PY) -m ruff check src rewards scripts tests

format:
	$(PY) -m ruff format src rewards scripts tests

# docs/configuration-reference.md, written from the config schema (a test fails when it is stale)
docs:
	$(PY) scripts/gen_config_reference.py

clean-smoke:
	rm -rf runs/smoke
