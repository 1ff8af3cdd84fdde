"""The task commands: ``cirrus task logs|cancel|trigger|artifacts``, over the controller's HTTP API
(PROTOCOL.md); exit codes as for the other user commands (``app.user_commands``)."""

from __future__ import annotations

import asyncio
import posixpath
from pathlib import Path

import click

from adapters.controller_api import CancelInfo, ControllerApiClient, TaskInfo, dumps
from adapters.controller_artifacts import TaskArtifacts
from app.build_view import LogLines, cancel_line, is_final
from app.controller_commands import OneLineUsageCommand
from app.user_commands import (
    LOG_POLL_SECONDS,
    api_options,
    call_controller,
    fail,
    print_attempts,
)


@click.group()
def task() -> None:
    """Read a task's logs and artifacts, cancel it, re-run it or trigger a manual one."""


async def _print_logs(
    client: ControllerApiClient, task_id: str, command: str | None, as_json: bool
) -> None:
    info = await client.get_task(task_id)
    names = [command] if command else [c.name for c in info.commands]
    logs = {name: await client.task_log(task_id, name) for name in names}
    if as_json:
        statuses = {c.name: c.status for c in info.commands}
        document = {
            "id": info.id,
            "status": info.status,
            "commands": [
                {
                    "name": name,
                    "status": statuses.get(name, ""),
                    "log": data.decode("utf-8", errors="replace"),
                }
                for name, data in logs.items()
            ],
        }
        click.echo(dumps(document))
    elif command:
        _write_bytes(logs[command])
    else:
        for name, data in logs.items():
            for text in _all_lines(data):
                click.echo(f"{name} | {text}")


async def _follow_logs(
    client: ControllerApiClient, task_id: str, command: str | None, as_json: bool
) -> TaskInfo:
    offsets: dict[str, int] = {}
    splitters: dict[str, LogLines] = {}
    while True:
        info = await client.get_task(task_id)
        final = is_final(info.status)
        names = [command] if command else [c.name for c in info.commands]
        for name in names:
            data = await client.task_log(task_id, name, offsets.get(name, 0))
            offsets[name] = offsets.get(name, 0) + len(data)
            if as_json:
                if data:
                    text = data.decode("utf-8", errors="replace")
                    click.echo(dumps({"command": name, "data": text}).replace("\n", " "))
            elif command:
                _write_bytes(data)
            else:
                lines = splitters.setdefault(name, LogLines())
                for text in lines.feed(data) + (lines.flush() if final else []):
                    click.echo(f"{name} | {text}")
        if final:
            return info
        await asyncio.sleep(LOG_POLL_SECONDS)


@task.command(cls=OneLineUsageCommand)
@click.argument("task_id", metavar="ID")
@click.argument("command", required=False, metavar="[COMMAND]")
@api_options
@click.option("--follow", is_flag=True, help="Keep printing until the task ends.")
def logs(
    task_id: str,
    command: str | None,
    controller: str,
    token: str | None,
    as_json: bool,
    follow: bool,
) -> None:
    """Print a task's logs: one command's raw log, or every command's lines prefixed."""
    if not follow:
        call_controller(
            controller, token, lambda client: _print_logs(client, task_id, command, as_json)
        )
        return
    call_controller(
        controller, token, lambda client: _follow_logs(client, task_id, command, as_json)
    )


def _print_task_status(answer: CancelInfo, as_json: bool) -> None:
    """Print the ``{id, status}`` answer to a cancel or a trigger."""
    if as_json:
        click.echo(dumps(answer.document()))
    else:
        click.echo(f"task {answer.id}: {answer.status}")


@task.command(cls=OneLineUsageCommand)
@click.argument("task_id", metavar="ID")
@api_options
def cancel(task_id: str, controller: str, token: str | None, as_json: bool) -> None:
    """Cancel a task (a running one stops once its worker confirms)."""
    answer = call_controller(controller, token, lambda client: client.cancel_task(task_id))
    if as_json:
        click.echo(dumps(answer.document()))
    else:
        click.echo(cancel_line(answer))


@task.command(cls=OneLineUsageCommand)
@click.argument("task_id", metavar="ID")
@api_options
def trigger(task_id: str, controller: str, token: str | None, as_json: bool) -> None:
    """Start a `trigger_type: manual` task (it still waits for its dependencies)."""
    answer = call_controller(controller, token, lambda client: client.trigger_task(task_id))
    _print_task_status(answer, as_json)


@task.command(cls=OneLineUsageCommand)
@click.argument("task_id", metavar="ID")
@api_options
def rerun(task_id: str, controller: str, token: str | None, as_json: bool) -> None:
    """Re-run a final task as a new attempt (the tasks that depend on it run again too)."""
    answer = call_controller(controller, token, lambda client: client.rerun_task(task_id))
    print_attempts(answer, as_json)


def _target(directory: Path, name: str, path: str) -> Path | None:
    """Where an artifact file lands under ``directory``; None if it would leave it."""
    relative = posixpath.normpath(f"{name}/{path}")
    if relative.startswith(("/", "../")) or relative in (".", "..") or "/" not in relative:
        return None
    return directory / relative


async def _artifacts(
    client: ControllerApiClient, task_id: str, directory: Path | None
) -> tuple[TaskArtifacts, list[Path]]:
    listing = await client.task_artifacts(task_id)
    written: list[Path] = []
    if directory is None:
        return listing, written
    for entry in listing.artifacts:
        target = _target(directory, entry.name, entry.path)
        if target is None:
            click.echo(
                f"skipped {entry.name}/{entry.path}: not a path inside {directory}", err=True
            )
            continue
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        await client.download_artifact(task_id, entry.name, entry.path, target)
        written.append(target)
    return listing, written


@task.command(cls=OneLineUsageCommand)
@click.argument("task_id", metavar="ID")
@click.option(
    "--download",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Copy every file to DIR/<artifact name>/<path>.",
)
@api_options
def artifacts(
    task_id: str, directory: Path | None, controller: str, token: str | None, as_json: bool
) -> None:
    """List a task's artifacts and test results; download them with --download."""
    try:
        listing, written = call_controller(
            controller, token, lambda client: _artifacts(client, task_id, directory)
        )
    except OSError as error:
        fail(f"--download {directory}: {error.strerror or error}")
    if as_json:
        document = listing.document()
        if directory is not None:
            document["downloaded"] = [str(path) for path in written]
        click.echo(dumps(document))
        return
    if not listing.artifacts:
        click.echo(f"task {task_id} has no artifacts")
    for entry in listing.artifacts:
        kind = " ".join(part for part in (entry.type, entry.format) if part)
        click.echo(f"{entry.name}/{entry.path}  {entry.size} bytes" + (f"  {kind}" if kind else ""))
    if listing.tests is not None:
        click.echo(f"tests: {listing.tests.line()}")
    if directory is not None:
        click.echo(f"downloaded {len(written)} files to {directory}")


def _write_bytes(data: bytes) -> None:
    if data:
        click.echo(data, nl=False)


def _all_lines(data: bytes) -> list[str]:
    lines = LogLines()
    return lines.feed(data) + lines.flush()
