# The project's two entry points: `make run` (the main job) and `make test` (every gate and test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test gates lint format typecheck imports pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/python -c 'import domain, adapters, app, pydantic, httpx, pytest'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/cirrus worker validate -f examples/worker.yml

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

gates: lint format typecheck imports

pytest: $(STAMP)
	$(BIN)/pytest

test: gates pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
