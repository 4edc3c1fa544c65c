# The README's two commands: `make demo` (the main job) and `make test` (the whole suite).
# Both install first, so each works alone on a fresh machine with Python 3.11 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test demo lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check .

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/govreports demo

bench: install
	$(BIN)/python -m benchmarks.parse_throughput

clean:
	rm -rf $(VENV) data/warehouse .pytest_cache .ruff_cache .hypothesis
