"""The user commands: ``cirrus build submit|status|cancel`` and
``cirrus workers list``, all speaking the controller's HTTP API (PROTOCOL.md).

Exit codes (CLI.md): 0 success; 1 the build failed, or the controller refused the command or
cannot be reached (one line on stderr); 2 a usage error. ``build submit`` counts what stops it
from reading its source as a usage error (exit 2): not a repository with ``--remote``, an
unknown remote or ``--changed-since`` revision, a commit not pushed yet, an unreadable file.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console

from adapters.controller_access import BuildRerun, TaskRerun
from adapters.controller_api import (
    BuildInfo,
    CancelInfo,
    ControllerApiClient,
    ControllerApiError,
    dumps,
)
from adapters.workspace import LocalWorkspace, WorkspaceError
from app.build_view import (
    BuildView,
    cancel_line,
    follow_build,
    is_final,
    stopped_following_line,
    submitted_lines,
    task_tests,
)
from app.controller_commands import OneLineUsageCommand
from app.submit_source import PreparedSource, prepare_source, send_source, snapshot_line
from domain.controller_answers import TestsAnswer

DEFAULT_CONTROLLER = "http://127.0.0.1:8080"
ENV_CONTROLLER = "CIRRUS_CONTROLLER"
ENV_TOKEN = "CIRRUS_TOKEN"
FAILURE_EXIT_CODE = 1
USAGE_EXIT_CODE = 2
LOG_POLL_SECONDS = 0.5

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def _check_url(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
        raise click.BadParameter(f"{value!r} is not an http:// or https:// URL")
    return value.rstrip("/")


def api_options(command: F) -> F:
    """Add ``--controller`` (default ``$CIRRUS_CONTROLLER``), ``--token`` (``$CIRRUS_TOKEN``)
    and ``--json``."""
    decorators = [
        click.option(
            "--controller",
            metavar="URL",
            envvar=ENV_CONTROLLER,
            default=DEFAULT_CONTROLLER,
            show_default=True,
            callback=_check_url,
            help=f"Controller URL (environment: {ENV_CONTROLLER}).",
        ),
        click.option(
            "--token",
            metavar="TOKEN",
            envvar=ENV_TOKEN,
            default=None,
            help=f"Admin token or user token of the controller (environment: {ENV_TOKEN}).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def fail(message: str, code: int = FAILURE_EXIT_CODE) -> NoReturn:
    """Print ``cirrus: message`` as one line on stderr and exit with ``code``."""
    click.echo("cirrus: " + " ".join(message.split()), err=True)
    sys.exit(code)


def call_controller(
    controller: str, token: str | None, work: Callable[[ControllerApiClient], Awaitable[T]]
) -> T:
    """Run ``work`` with a client of ``controller``; an API error is one line and exit 1."""

    async def main() -> T:
        async with ControllerApiClient(controller, token) as client:
            return await work(client)

    try:
        return asyncio.run(main())
    except ControllerApiError as error:
        fail(str(error))


def parse_environment(pairs: Iterable[str]) -> dict[str, str]:
    """Turn repeated ``--env K=V`` values into a map (exit 2 on a value without ``=``)."""
    environment: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            fail(f"--env: {pair!r} is not KEY=VALUE", USAGE_EXIT_CODE)
        environment[key] = value
    return environment


def read_config(path: str) -> str:
    """Return the text of a ``.cirrus.yml`` (exit 2 when it cannot be read)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read {path}: {getattr(error, 'strerror', None) or error}", USAGE_EXIT_CODE)


def read_starlark(config_path: str) -> str:
    """Return the text of the ``.cirrus.star`` next to ``config_path``, or "" when there is none
    (exit 2 when it exists but cannot be read)."""
    path = Path(config_path).parent / ".cirrus.star"
    if not path.is_file():
        return ""
    return read_config(str(path))


def build_exit_code(build: BuildInfo) -> int:
    """0 iff the build completed."""
    return 0 if build.status == "COMPLETED" else FAILURE_EXIT_CODE


# --- build ----------------------------------------------------------------------------------


@click.group()
def build() -> None:
    """Submit builds and look at them."""


@build.command(cls=OneLineUsageCommand)
@click.argument("file", default=".cirrus.yml", metavar="[FILE]")
@api_options
@click.option("--follow", is_flag=True, help="Show progress and logs until the build ends.")
@click.option("-e", "--env", "env", multiple=True, metavar="K=V", help="Build environment.")
@click.option(
    "--remote",
    is_flag=False,
    flag_value="origin",
    default=None,
    metavar="[NAME]",
    help="Build the pushed commit of remote NAME (default origin) instead of a snapshot.",
)
@click.option("--changed-since", metavar="REV", help="Compute the changed files since REV.")
def submit(
    file: str,
    controller: str,
    token: str | None,
    as_json: bool,
    follow: bool,
    env: tuple[str, ...],
    remote: str | None,
    changed_since: str | None,
) -> None:
    """Submit a .cirrus.yml (default: the one in the current directory) with a snapshot of
    its project, or with --remote the pushed commit."""
    starlark = read_starlark(file)
    # As the original, a .cirrus.star alone is a whole configuration.
    config = "" if starlark and not Path(file).exists() else read_config(file)
    environment = parse_environment(env)
    with tempfile.TemporaryDirectory(prefix="cirrus-submit-") as workdir:
        try:
            prepared = prepare_source(
                LocalWorkspace(),
                Path(file),
                Path(workdir),
                remote=remote,
                changed_since=changed_since,
            )
        except WorkspaceError as error:
            fail(str(error), USAGE_EXIT_CODE)
        _submit(prepared, config, environment, starlark, controller, token, as_json, follow)


def _submit(
    prepared: PreparedSource,
    config: str,
    environment: dict[str, str],
    starlark: str,
    controller: str,
    token: str | None,
    as_json: bool,
    follow: bool,
) -> None:
    """Send the source and the build; print and follow it as asked; exit."""
    followed: list[str] = []

    async def work(client: ControllerApiClient) -> int:
        source = await send_source(client, prepared)
        submitted = await client.submit_build(config, environment, starlark, source)
        if as_json and not follow:
            click.echo(dumps(submitted.document()))
            return 0
        # With --json the progress goes to stderr and stdout keeps only the final JSON.
        view = BuildView(_console(stderr=as_json))
        if source.snapshot:
            view.line(snapshot_line(prepared, source))
        for line in submitted_lines(submitted):
            view.line(line)
        if not follow:
            return 0
        followed.append(submitted.id)
        final = await follow_build(client, submitted.id, view)
        if as_json:
            click.echo(dumps(final.document()))
        return build_exit_code(final)

    try:
        code = call_controller(controller, token, work)
    except KeyboardInterrupt:
        if not followed:
            raise
        # Ctrl-C ends the following, not the build: say so, and how to cancel it. Exit 1, as
        # click's "Aborted!" did (CLI.md allows no other code).
        fail(stopped_following_line(followed[0]))
    sys.exit(code)


@build.command(cls=OneLineUsageCommand)
@click.argument("build_id", metavar="ID")
@api_options
def status(build_id: str, controller: str, token: str | None, as_json: bool) -> None:
    """Show a build's status and its tasks."""
    if as_json:
        found = call_controller(controller, token, lambda client: client.get_build(build_id))
        click.echo(dumps(found.document()))
        return

    async def work(client: ControllerApiClient) -> tuple[BuildInfo, dict[str, TestsAnswer]]:
        found = await client.get_build(build_id)
        final = [task.id for task in found.tasks if is_final(task.status)]
        results = {task_id: await task_tests(client, task_id) for task_id in final}
        return found, {key: value for key, value in results.items() if value is not None}

    found, tests = call_controller(controller, token, work)
    for line in submitted_lines(found, tests):
        click.echo(line)


@build.command(name="cancel", cls=OneLineUsageCommand)
@click.argument("build_id", metavar="ID")
@api_options
def cancel_build(build_id: str, controller: str, token: str | None, as_json: bool) -> None:
    """Cancel every task of a build that has not ended yet."""

    async def work(client: ControllerApiClient) -> tuple[CancelInfo, ...]:
        found = await client.get_build(build_id)
        # No build-wide cancel in the API (PROTOCOL.md): each unfinished task is cancelled.
        # The waiting ones first: cancelling a running task first could let a task waiting for
        # it be skipped (or another one start) before its own cancel arrives.
        unfinished = [t for t in found.tasks if not is_final(t.status)]
        order = sorted(unfinished, key=lambda t: t.status == "EXECUTING")
        answers = {t.id: await client.cancel_task(t.id) for t in order}
        return tuple(answers[t.id] for t in unfinished)

    answers = call_controller(controller, token, work)
    if as_json:
        click.echo(dumps({"id": build_id, "tasks": [a.document() for a in answers]}))
        return
    if not answers:
        click.echo(f"build {build_id}: nothing to cancel, every task has ended")
    for answer in answers:
        click.echo(cancel_line(answer))


@build.command(name="rerun", cls=OneLineUsageCommand)
@click.argument("build_id", metavar="ID")
@click.option("--failed", is_flag=True, help="Re-run only failed and aborted tasks.")
@api_options
def rerun_build(
    build_id: str, failed: bool, controller: str, token: str | None, as_json: bool
) -> None:
    """Re-run a build's final tasks (new attempts), and the tasks that depend on them."""
    answer = call_controller(
        controller, token, lambda client: client.rerun_build(build_id, failed_only=failed)
    )
    print_attempts(answer, as_json)


def print_attempts(answer: TaskRerun | BuildRerun, as_json: bool) -> None:
    """Print the new attempts a re-run (of a task or a build) created, a line each."""
    if as_json:
        click.echo(dumps(answer.document()))
        return
    for attempt in answer.attempts:
        click.echo(
            f"task {attempt.id}: {attempt.name} attempt {attempt.attempt} "
            f"(re-runs task {attempt.rerun_of}): {attempt.status}"
        )


@build.command(name="approve", cls=OneLineUsageCommand)
@click.argument("build_id", metavar="ID")
@api_options
def approve_build(build_id: str, controller: str, token: str | None, as_json: bool) -> None:
    """Approve a build of a pull request from a fork: its tasks start, with their secrets."""
    answer = call_controller(controller, token, lambda client: client.approve_build(build_id))
    if as_json:
        click.echo(dumps(answer.document()))
        return
    click.echo(f"build {answer.id} approved: {answer.status}")


# --- task -----------------------------------------------------------------------------------


# --- workers --------------------------------------------------------------------------------


@click.group()
def workers() -> None:
    """Look at the workers of the controller."""


@workers.command(name="list", cls=OneLineUsageCommand)
@api_options
def list_workers(controller: str, token: str | None, as_json: bool) -> None:
    """List the workers the controller knows."""
    found = call_controller(controller, token, lambda client: client.list_workers())
    if as_json:
        click.echo(dumps([worker.document() for worker in found]))
        return
    if not found:
        click.echo("no workers")
    for worker in found:
        state = "online" if worker.online else "offline"
        if worker.disabled:
            state += ", paused"
        running = worker.running_tasks if isinstance(worker.running_tasks, list) else []
        resources = " ".join(f"{k}={v:g}" for k, v in sorted(worker.resources_total.items()))
        click.echo(
            f"{worker.name}: {state}; running {len(running)} task(s); "
            f"resources {resources or '-'}; last seen {worker.last_seen}"
        )


# --- helpers --------------------------------------------------------------------------------


def _console(*, stderr: bool) -> Console:
    return Console(stderr=stderr, highlight=False)
