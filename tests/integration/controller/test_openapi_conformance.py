"""A bounded schemathesis run against a real controller: every operation of /openapi.json, with
requests that match the document and requests that break it.

Clean means: no server error, every status code and answer body as the document says. The run
is derandomized (the same cases every time) and bounded: at most 25 requests per operation
and mode, about 400 in all.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation
from schemathesis.core.result import Ok

from tests.integration.test_controller_cli import Process, start_controller

pytestmark = pytest.mark.integration

ADMIN = "admin-token-for-schemathesis"
EXAMPLES_PER_OPERATION_AND_MODE = 25
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
# A `config` the schema allows may still be a configuration the controller refuses (400): its
# validity is a language, not a JSON type. Every other check stays on.
EXCLUDED_CHECKS = [schemathesis.checks.positive_data_acceptance]


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Process, str]]:
    """A controller with a known admin token."""
    tmp_path: Path = tmp_path_factory.mktemp("schemathesis")
    process, url = start_controller(
        tmp_path,
        tmp_path / "controller.db",
        "--registration-token",
        "registration-token-for-schemathesis",
        "--admin-token",
        ADMIN,
    )
    try:
        yield process, url
    finally:
        process.terminate()


def failures_of(operation: APIOperation[Any, Any, Any, Any], url: str) -> list[str]:
    """Run the bounded cases of one operation in both modes; return what failed."""
    failures: list[str] = []
    for mode in MODES:
        # No request can break the schema of some operations (GET /healthz): none to run.
        with contextlib.suppress(Unsatisfiable):
            run_mode(operation, mode, url, failures)
    return failures


def run_mode(
    operation: APIOperation[Any, Any, Any, Any],
    mode: schemathesis.GenerationMode,
    url: str,
    failures: list[str],
) -> None:
    """Call ``operation`` with the bounded cases of ``mode``; add each failure to ``failures``."""

    @settings(
        max_examples=EXAMPLES_PER_OPERATION_AND_MODE,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        try:
            case.call_and_validate(
                base_url=url,
                headers={"Authorization": f"Bearer {ADMIN}"},
                excluded_checks=EXCLUDED_CHECKS,
                timeout=30,
            )
        except BaseException as error:  # a FailureGroup: keep going, report them all
            failures.append(f"{operation.label} ({mode.value}): {error}")

    run()


def test_every_documented_operation_passes_a_bounded_schemathesis_run(
    controller: tuple[Process, str],
) -> None:
    process, url = controller
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) >= 9
    failures = [failure for operation in operations for failure in failures_of(operation, url)]
    assert not failures, "\n\n".join(failures[:5])
    assert "Traceback" not in process.stderr()
