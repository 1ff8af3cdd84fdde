# The project's two entry points: `make run` (the main job) and `make test` (every gate and test).
PYTHON ?= python3
# pipefail: a failing pip is not hidden by the filter of its output below.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The locked dependency sets (requirements/README.md): every package pinned with its hashes.
LOCKS := requirements/runtime.txt requirements/build.txt requirements/dev.txt
UV ?= $(BIN)/uv
UV_COMPILE = $(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes
# pytest-xdist workers. The suite mostly waits (on the processes, servers, containers and VMs
# it starts): at one worker per core the two cores of CI machines are a third busy, so four
# workers share them.
PYTEST_WORKERS ?= 4

.PHONY: run test gates lint format typecheck imports deadcode pytest fuzz system-deps bench clean lock upgrade proto

# Exactly the locked set, nothing resolved anew: --require-hashes refuses any package that is
# not pinned with a matching hash, and --no-deps keeps pip from adding one. The project itself
# is installed without a build environment of its own (its backend, hatchling, is in dev.txt).
$(STAMP): pyproject.toml requirements/dev.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
		--requirement requirements/dev.txt 2>&1 | { grep -v '^WARNING: Location' || true; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation \
		--editable . 2>&1 | { grep -v '^WARNING: Location' || true; }
	$(BIN)/python -m pip check
	$(BIN)/python -c 'import domain, adapters, app, pydantic, httpx, pytest'
	touch $(STAMP)

# Refresh the locks after a change of pyproject.toml: new packages are added, the pins of the
# others are kept. `make upgrade` moves every package to its newest allowed release. Either way,
# run `make test` (the whole suite) before committing the new locks.
# The venv's uv (from dev.txt); without a venv: `pip install uv` then `make lock UV=uv`.
lock:
	$(UV_COMPILE) $(UV_FLAGS) pyproject.toml -o requirements/runtime.txt
	$(UV_COMPILE) $(UV_FLAGS) requirements/build.in -o requirements/build.txt
	$(UV_COMPILE) $(UV_FLAGS) pyproject.toml requirements/build.in --extra dev \
		--constraint requirements/runtime.txt --constraint requirements/build.txt \
		-o requirements/dev.txt

upgrade:
	$(MAKE) lock UV_FLAGS=--upgrade

# Regenerate the wire model src/adapters/wire/ from proto/ (the generated files are checked in;
# tests/unit/test_wire_generated.py checks that they are what this target writes).
proto: $(STAMP)
	sh scripts/generate-wire.sh src

run: $(STAMP)
	$(BIN)/cirrus run --config examples/.cirrus.yml

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/hadolint Dockerfile

format: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

# Dead code: every name vulture finds unused is deleted or justified in vulture_whitelist.py.
# The generated wire model is left out (protobuf/gRPC stubs define what the proto defines).
deadcode: $(STAMP)
	$(BIN)/vulture src vulture_whitelist.py --min-confidence 60 --exclude src/adapters/wire

gates: lint format typecheck imports deadcode

# Debian packages and local images the integration tests use: podman, runc and a busybox
# image for the container isolation; PostgreSQL for the store tests (each test run starts its
# own private cluster on 127.0.0.1); systemd-analyze for the deploy-file tests; git-lfs for
# the CIRRUS_CLONE_LFS tests;
# OpenSSH sshd for the Tart/Vetu simulators; Chromium and chromedriver for the web tests;
# a QEMU Linux guest (kernel + initramfs) for the Vetu test that boots a real guest.
system-deps:
	sh scripts/setup-podman.sh
	sh scripts/setup-postgres.sh
	sh scripts/setup-ops-tools.sh
	sh scripts/setup-sshd.sh
	sh scripts/setup-chromium.sh
	sh scripts/build-qemu-guest.sh .cache/qemu-guest

# Parallel on every core (pytest-xdist); --durations shows where the time goes.
pytest: $(STAMP) system-deps
	$(BIN)/pytest -n $(PYTEST_WORKERS) --durations=25 --hypothesis-profile=ci

# The unit tests, with fresh random examples for the property tests, twenty times as many as in
# `make test`.
fuzz: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) -q tests/unit --hypothesis-profile=fuzz

test: gates pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
