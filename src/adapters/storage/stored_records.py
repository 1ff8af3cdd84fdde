"""What the SQLite and PostgreSQL stores share about their rows, whatever the SQL dialect.

Ids are the decimal text of integer row keys; the final statuses are one SQL list for
``status IN …`` guards; task secrets are random; and a row (a ``sqlite3.Row`` or a psycopg
``dict_row``, both read by column name) becomes the same ``TaskRecord`` or ``WorkerRecord``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any, Protocol

from adapters.storage.policy_json import loads_policy
from adapters.storage.spec_json import (
    loads_float_map,
    loads_str_list,
    loads_str_map,
    loads_task_spec,
)
from domain.build import FINAL_STATUSES, TaskStatus
from domain.protocol import CommandResult, CommandStatus
from domain.store import StoreError, TaskAssignment, TaskCredentials, TaskRecord, WorkerRecord

_MAX_ID = 2**63 - 1

FINAL_SQL = "(" + ", ".join(f"'{status.value}'" for status in sorted(FINAL_STATUSES)) + ")"
"""The final statuses as an SQL list, for ``status IN …`` guards."""


class Row(Protocol):
    """A database row whose columns are read by name."""

    def __getitem__(self, column: str, /) -> Any:
        """Return the value of a column."""
        ...


def row_key(text: str) -> int | None:
    """Return the integer key of an id, or ``None`` if no row can have that id."""
    if not (text.isascii() and text.isdecimal()):
        return None
    key = int(text)
    return key if 0 < key <= _MAX_ID else None


def dumps_int_list(task_ids: Sequence[str]) -> str:
    """Return the keys of the valid ids of ``task_ids`` as a JSON array (others left out)."""
    return json.dumps([key for key in map(row_key, task_ids) if key is not None])


def new_secret() -> str:
    """Return a fresh random task secret (client or server)."""
    return secrets.token_urlsafe(32)


def _status(value: str) -> TaskStatus:
    try:
        return TaskStatus(value)
    except ValueError as error:
        raise StoreError(f"stored task status {value!r} is unknown") from error


def command_result_from_row(row: Row) -> CommandResult:
    """Return the command result a ``command_results`` row holds."""
    try:
        status = CommandStatus[row["status"]]
    except KeyError as error:
        raise StoreError(f"stored command status {row['status']!r} is unknown") from error
    return CommandResult(
        name=row["name"],
        status=status,
        duration_in_nanos=int(row["duration_in_nanos"]),
        signaled_to_exit=bool(row["signaled_to_exit"]),
    )


def task_from_row(row: Row, results: Sequence[CommandResult]) -> TaskRecord:
    """Return the task a ``tasks`` row holds, with its command results in order."""
    return TaskRecord(
        id=str(row["id"]),
        build_id=str(row["build_id"]),
        name=row["name"],
        status=_status(row["status"]),
        spec=loads_task_spec(row["spec"]),
        sequence=int(row["id"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        worker=row["worker"],
        client_secret=row["client_secret"],
        server_secret=row["server_secret"],
        cancel_requested=bool(row["cancel_requested"]),
        failure_message=row["failure_message"],
        command_results=tuple(results),
        started_at=row["started_at"],
        stopped_at=row["stopped_at"],
        awaiting_trigger=bool(row["awaiting_trigger"]),
        attempt=int(row["attempt"]),
        rerun_of=None if row["rerun_of"] is None else str(row["rerun_of"]),
    )


def disabled_update(
    mark: str, disabled: bool, *, until_register: bool
) -> tuple[str, tuple[bool, ...]]:
    """The ``UPDATE`` of ``ControllerStore.set_disabled`` and its parameters, the worker's name
    to be added last (``mark`` is the driver's parameter placeholder).

    A drain (``until_register``) of a worker an operator paused leaves that pause as it is.
    """
    if disabled and until_register:
        return (
            "UPDATE workers SET disabled_until_register = CASE WHEN disabled "
            f"THEN disabled_until_register ELSE {mark} END, disabled = {mark} "
            f"WHERE name = {mark}",
            (True, True),
        )
    return (
        f"UPDATE workers SET disabled = {mark}, disabled_until_register = {mark} "
        f"WHERE name = {mark}",
        (disabled, False),
    )


def credentials_query(mark: str) -> str:
    """Return the one-row query ``credentials_from_row`` reads: the session hash of the worker
    named by the first parameter and the assignment of the task keyed by the second (``mark``
    is the driver's parameter placeholder). The task's spec and results are not read."""
    return (
        f"SELECT (SELECT session_token_hash FROM workers WHERE name = {mark}) AS session, "
        "t.id, t.build_id, t.worker, t.client_secret, t.stopped_at "
        f"FROM (SELECT 1) AS one LEFT JOIN tasks AS t ON t.id = {mark}"
    )


def assignment_from_row(row: Row) -> TaskAssignment:
    """Return the assignment in a row of ``credentials_query``."""
    return TaskAssignment(
        id=str(row["id"]),
        build_id=str(row["build_id"]),
        worker=row["worker"],
        client_secret=row["client_secret"],
        stopped=row["stopped_at"] is not None,
    )


def credentials_from_row(row: Row) -> TaskCredentials:
    """Return the credentials in the row of ``credentials_query`` (``id`` is NULL when there is
    no such task)."""
    session = row["session"]
    return TaskCredentials(
        session_token_hash=None if session is None else str(session),
        assignment=None if row["id"] is None else assignment_from_row(row),
    )


def worker_from_row(row: Row) -> WorkerRecord:
    """Return the worker a ``workers`` row holds."""
    return WorkerRecord(
        name=row["name"],
        session_token_hash=row["session_token_hash"],
        registered_at=float(row["registered_at"]),
        last_seen=float(row["last_seen"]),
        labels=loads_str_map(row["labels"]),
        resources_total=loads_float_map(row["resources_total"]),
        resources_in_use=loads_float_map(row["resources_in_use"]),
        running_task_ids=loads_str_list(row["running_task_ids"]),
        disabled=bool(row["disabled"]),
        security_policy=loads_policy(row["security_policy"]),
    )
