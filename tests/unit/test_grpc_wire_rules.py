"""The rules of the gRPC services that need no server: status codes, the old in-body task
identification, the Go agent's clone step and the ``grpc`` section of the controller file."""

from __future__ import annotations

import grpc
import pytest

from adapters.grpc_server.calls import grpc_status
from adapters.grpc_server.log_streams import PIECE_BYTES, pieces
from adapters.grpc_server.metadata import with_old_identification
from app.controller.grpc_bridge import for_go_agent
from app.controller.grpc_serving import grpc_settings
from app.controller_tokens import ControllerSetupError

TASK = "org.cirruslabs.task-id"
SECRET = "org.cirruslabs.client-secret"


@pytest.mark.parametrize(
    ("twirp", "expected"),
    [
        ("unauthenticated", grpc.StatusCode.UNAUTHENTICATED),
        ("permission_denied", grpc.StatusCode.PERMISSION_DENIED),
        ("not_found", grpc.StatusCode.NOT_FOUND),
        ("malformed", grpc.StatusCode.INVALID_ARGUMENT),
        ("bad_route", grpc.StatusCode.UNIMPLEMENTED),
        ("failed_precondition", grpc.StatusCode.FAILED_PRECONDITION),
        ("unavailable", grpc.StatusCode.UNAVAILABLE),
        ("no_such_code", grpc.StatusCode.UNKNOWN),
    ],
)
def test_a_twirp_code_becomes_its_grpc_status(twirp: str, expected: grpc.StatusCode) -> None:
    assert grpc_status(twirp) == expected


def test_the_metadata_wins_over_the_identification_in_the_body() -> None:
    metadata = {TASK: "7", SECRET: "meta"}
    body = {"taskIdentification": {"taskId": "8", "secret": "body"}}
    assert with_old_identification(metadata, body) == metadata


def test_an_old_identification_names_the_task_when_the_metadata_does_not() -> None:
    nested = {"taskIdentification": {"taskId": "8", "secret": "s"}}
    assert with_old_identification({}, nested) == {TASK: "8", SECRET: "s"}
    bare = {"taskId": "9", "secret": "t"}  # TaskStarted/TaskStopped take one bare
    assert with_old_identification({}, bare) == {TASK: "9", SECRET: "t"}


def test_an_empty_identification_names_no_task() -> None:
    assert with_old_identification({}, {"taskIdentification": {"taskId": "0"}}) == {}
    assert with_old_identification({}, {"message": "x"}) == {}


def test_log_data_is_cut_into_pieces_under_the_chunk_limit() -> None:
    data = bytes(range(256)) * (PIECE_BYTES // 128 + 3)
    parts = pieces(data)
    assert b"".join(parts) == data
    assert max(map(len, parts)) == PIECE_BYTES
    assert pieces(b"") == []


CLONE = {"name": "clone", "cloneInstruction": {}, "executionBehaviour": "ON_SUCCESS"}
SCRIPT = {"name": "main", "scriptInstruction": {"scripts": ["true"]}}


def test_a_task_without_a_source_gets_a_clone_step_that_says_so() -> None:
    commands = for_go_agent([CLONE, SCRIPT], {"environment": {}})
    assert commands[1] == SCRIPT
    assert commands[0]["name"] == "clone"
    assert commands[0]["executionBehaviour"] == "ON_SUCCESS"
    assert "cloneInstruction" not in commands[0]
    (line,) = commands[0]["scriptInstruction"]["scripts"]
    assert line.startswith("echo ")
    assert "no source to clone" in line


def test_a_snapshot_source_fails_the_go_agents_clone_step_and_a_git_one_is_kept() -> None:
    snapshot = for_go_agent([CLONE], {"environment": {"CIRRUS_SNAPSHOT": "3"}})
    assert snapshot[0]["scriptInstruction"]["scripts"][-1] == "exit 1"
    git = {"environment": {"CIRRUS_REPO_CLONE_URL": "https://example.com/r.git"}}
    assert for_go_agent([CLONE], git) == [CLONE]


def test_the_grpc_section_of_the_controller_file() -> None:
    assert grpc_settings({"listen": "0.0.0.0:9090"}) == {"grpc.listen": "0.0.0.0:9090"}
    assert grpc_settings(None) == {}
    with pytest.raises(ControllerSetupError, match=r"grpc\.port: unknown key"):
        grpc_settings({"port": 1})
    with pytest.raises(ControllerSetupError, match="must be a mapping"):
        grpc_settings("0.0.0.0:9090")
    with pytest.raises(ControllerSetupError, match=r"grpc\.listen: must be a string"):
        grpc_settings({"listen": 9090})
