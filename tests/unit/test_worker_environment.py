"""The ``CIRRUS_WORKER_*`` variables, read through pydantic-settings from a given mapping."""

from __future__ import annotations

import subprocess
import sys

import pytest

from adapters.config.environment import read_worker_environment
from adapters.config.environment_settings import WorkerEnvironment


def test_the_three_worker_variables_are_read() -> None:
    env = WorkerEnvironment.from_environ(
        {
            "CIRRUS_WORKER_NAME": "mac-mini-1",
            "CIRRUS_WORKER_TOKEN": "secret",
            "CIRRUS_WORKER_RPC_ENDPOINT": "https://ci.example.com",
        }
    )
    assert (env.name, env.token, env.rpc_endpoint) == (
        "mac-mini-1",
        "secret",
        "https://ci.example.com",
    )


def test_an_empty_variable_counts_as_not_given() -> None:
    assert WorkerEnvironment.from_environ({"CIRRUS_WORKER_TOKEN": ""}).token is None


def test_unrelated_and_lower_case_variables_are_ignored() -> None:
    env = WorkerEnvironment.from_environ(
        {"cirrus_worker_name": "lower", "CIRRUS_NAME": "other", "NAME": "plain", "HOME": "/root"}
    )
    assert (env.name, env.token, env.rpc_endpoint) == (None, None, None)


def test_the_process_environment_is_not_consulted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRRUS_WORKER_NAME", "from-process")
    assert WorkerEnvironment.from_environ({}).name is None


def test_without_worker_variables_pydantic_settings_is_not_needed() -> None:
    values = read_worker_environment({"HOME": "/root", "CIRRUS_WORKER_TOKEN": ""})
    assert (values.name, values.token, values.rpc_endpoint) == (None, None, None)


def test_with_worker_variables_they_are_read_through_the_settings() -> None:
    values = read_worker_environment({"CIRRUS_WORKER_NAME": "w", "HOME": "/root"})
    assert (values.name, values.token) == ("w", None)


def test_a_worker_without_worker_variables_never_loads_pydantic_settings() -> None:
    probe = (
        "import sys\n"
        "from adapters.config import WorkerFlags, load_worker_config\n"
        "load_worker_config(WorkerFlags(token='t'), {'HOME': '/root'}, 'host')\n"
        "print('pydantic_settings' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"
