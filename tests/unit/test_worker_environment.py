"""The ``CIRRUS_WORKER_*`` variables, read through pydantic-settings from a given mapping."""

from __future__ import annotations

import pytest

from adapters.config import WorkerEnvironment


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
