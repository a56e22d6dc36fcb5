# Thin aliases. `make check` is exactly what CI runs (.ci/run).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WORKDIR ?= runs/fashion_mnist_mlp
CONFIG ?= experiments/configs/fashion_mnist_mlp.py
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: install data train seeds evaluate test test-slow lint format check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The default data set: Debian's Fashion-MNIST package (real data, installed offline).
data:
	@if [ -f $(FMNIST) ]; then echo "Fashion-MNIST found in $(dir $(FMNIST))"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null; \
	else echo "Fashion-MNIST is missing. Install it with 'sudo apt-get install -y dataset-fashion-mnist'" \
	  "(Debian/Ubuntu), or put the four IDX files in a folder and run" \
	  "'make train ARGS=--config.data.dir=FOLDER', or see README.md (Data)."; exit 1; fi

train: install data
	$(PY) -m vae_jax.main --config=$(CONFIG) --workdir=$(WORKDIR) $(ARGS)

# The default run over several seeds, then mean ± std of every headline number.
SEEDS ?= 0 1 2
SEEDS_DIR ?= runs/seeds
seeds: install data
	for s in $(SEEDS); do \
	  $(PY) -m vae_jax.main --config=$(CONFIG) --workdir=$(SEEDS_DIR)/seed$$s --config.seed=$$s $(ARGS) || exit 1; \
	done
	$(PY) -m vae_jax.aggregate $(addprefix $(SEEDS_DIR)/seed,$(SEEDS))

evaluate: install
	$(PY) -m vae_jax.evaluate --workdir=$(WORKDIR) $(ARGS)

test: install
	$(PY) -m pytest -q -n 2 $(ARGS)

test-slow: install
	$(PY) -m pytest -q -m slow $(ARGS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

check: lint test

bench: install
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m benchmarks.run $(ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
