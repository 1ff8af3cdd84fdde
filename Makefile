# The project's two entry points: `make run` (the main job) and `make test` (every gate and test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test gates lint format typecheck imports pytest system-deps bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
	$(BIN)/python -c 'import domain, adapters, app, pydantic, httpx, pytest'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/cirrus run examples/.cirrus.yml

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/hadolint Dockerfile

format: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

gates: lint format typecheck imports

# Debian packages and local images the integration tests use: podman, runc and a busybox
# image for the container isolation; PostgreSQL for the store tests (each test run starts its
# own private cluster on 127.0.0.1); systemd-analyze for the deploy-file tests;
# OpenSSH sshd for the Tart/Vetu simulators; a QEMU Linux guest (kernel + initramfs) for the
# Vetu test that boots a real guest.
system-deps:
	sh scripts/setup-podman.sh
	sh scripts/setup-postgres.sh
	sh scripts/setup-ops-tools.sh
	sh scripts/setup-sshd.sh
	sh scripts/build-qemu-guest.sh .cache/qemu-guest

pytest: $(STAMP) system-deps
	$(BIN)/pytest

test: gates pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
