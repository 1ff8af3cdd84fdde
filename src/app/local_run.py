"""``cirrus run [TASK]``: run the project's ``.cirrus.yml`` here, with an embedded controller and
worker (``app.local_embedded``), as the original ``cirrus run`` did.

The project is the current directory. Unless ``--dirty``, its files (tracked and untracked,
not ignored by ``.gitignore``) are packed into a snapshot, uploaded to the embedded controller
and unpacked by each task's ``clone`` command; the ``CIRRUS_*`` source variables come from the
local git repository when there is one. ``TASK`` keeps that task and its dependencies (the
embedded controller filters the parsed build: ``domain.local_build``).

Exit codes: 0 every task that ran completed; 1 one did not, or a task can never run on this
machine (its pending reason is printed); 2 the ``.cirrus.yml``, a flag or the worker file is
wrong, or no task has the name ``TASK``. The first SIGINT/SIGTERM cancels the running tasks (the
build ends aborted, their containers removed), a second one exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import click
from rich.console import Console

from adapters.artifact_download import ArtifactDownloadError, download_task_artifacts
from adapters.controller_api import (
    BuildInfo,
    ControllerApiClient,
    ControllerApiError,
    ControllerRefused,
    TaskInfo,
)
from adapters.host.child_watcher import watch_children_with_pidfds
from adapters.logging import configure_logging, shutdown_logging
from adapters.workspace import (
    WorkspaceError,
    find_repository,
    local_source,
    project_files,
    write_snapshot,
)
from app.build_view import BuildView, TaskCannotRun, follow_build, submitted_lines
from app.controller_commands import OneLineUsageCommand
from app.github_actions_view import GithubActionsView
from app.local_embedded import (
    EmbeddedController,
    embedded_controller,
    embedded_worker,
    local_worker_config,
)
from app.local_run_options import (
    LocalRunError,
    OutputFormat,
    RunOptions,
    affected_files,
    env_arguments,
    env_file,
    resolve_output,
)
from app.user_commands import read_config, read_starlark
from app.worker.poll_loop import Worker
from app.worker_options import config_error_line
from domain.build import BuildSpec
from domain.errors import ConfigError
from domain.local_build import in_project_directory, select_tasks
from domain.scheduling import FIXED_BY_THE_WORKERS
from domain.source import BuildSource

FAILURE_EXIT_CODE = 1
USAGE_EXIT_CODE = 2
REGISTRATION_TIMEOUT_SECONDS = 30.0


def can_never_run(task: TaskInfo) -> bool:
    """Whether a waiting task's reason means the embedded worker will never take it: its
    labels, policy and total resources are fixed for the run."""
    return task.pending_reason_kind in FIXED_BY_THE_WORKERS


@dataclass(frozen=True, slots=True)
class LocalProject:
    """What ``cirrus run`` runs: the configuration texts and the project directory."""

    config_text: str
    starlark: str
    directory: Path


def build_filter(options: RunOptions, project: Path) -> Callable[[BuildSpec], BuildSpec] | None:
    """The embedded controller's change to the parsed build: ``TASK`` and ``--dirty``."""
    if options.task is None and not options.dirty:
        return None

    def change(spec: BuildSpec) -> BuildSpec:
        if options.task is not None:
            spec = select_tasks(spec, options.task)
        return in_project_directory(spec, str(project)) if options.dirty else spec

    return change


def project_source(project: Path, options: RunOptions, archive: Path | None) -> BuildSource:
    """The build's source: git's view of the project, the affected files, and (unless dirty)
    a snapshot of its files written to ``archive`` (the id comes with the upload)."""
    try:
        if options.affected_files_git is not None and find_repository(project) is None:
            raise WorkspaceError(f"--affected-files-git needs a git repository: {project} is not")
        source = local_source(project, changed_since=options.affected_files_git)
        if archive is not None:
            with archive.open("wb") as out:
                write_snapshot(project, project_files(project), out)
    except WorkspaceError as error:
        message = str(error).replace("--changed-since", "--affected-files-git")
        raise LocalRunError(f"cirrus: {' '.join(message.split())}", USAGE_EXIT_CODE) from None
    if options.affected_files:
        changed = (*options.affected_files, *(source.changed_files or ()))
        source = dataclasses.replace(source, changed_files=tuple(dict.fromkeys(changed)))
    return source


async def wait_for_registration(client: ControllerApiClient) -> None:
    """Wait until the embedded worker is registered, so that no pending reason is early."""
    try:
        async with asyncio.timeout(REGISTRATION_TIMEOUT_SECONDS):
            while True:
                if await client.list_workers():
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise LocalRunError(
            f"cirrus: the embedded worker did not register in {REGISTRATION_TIMEOUT_SECONDS:.0f} s",
            FAILURE_EXIT_CODE,
        ) from None


def run_blobs_dir(environ: Mapping[str, str], project: Path) -> Path:
    """Where ``cirrus run`` keeps a project's caches between runs:
    ``$XDG_CACHE_HOME/cirrus/run-blobs/<project>`` (``~/.cache`` when unset), so that a second
    run hits the first one's caches. One directory per project directory: two projects with a
    task and a cache of the same names must not read each other's caches."""
    cache_home = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    project_key = hashlib.sha256(str(project.resolve()).encode("utf-8", "surrogateescape"))
    return Path(cache_home) / "cirrus" / "run-blobs" / project_key.hexdigest()[:16]


async def copy_artifacts(
    controller: EmbeddedController, build: BuildInfo, directory: Path, view: BuildView
) -> None:
    """``--artifacts-dir``: every task's artifacts to ``DIR/<task name>/<artifact name>/``."""
    copied = 0
    try:
        for task in build.tasks:
            copied += await download_task_artifacts(
                controller.url, controller.admin_token, task.id, task.name, directory
            )
    except ArtifactDownloadError as error:
        message = f"cirrus: --artifacts-dir {directory}: {error}"
        raise LocalRunError(message, FAILURE_EXIT_CODE) from None
    view.line(f"Copied {copied} artifact file(s) to {directory}")


async def run_locally(
    project: LocalProject,
    options: RunOptions,
    view: BuildView,
    environ: Mapping[str, str],
) -> int:
    """Run one build with an embedded controller and worker; return the exit code."""
    watch_children_with_pidfds()  # before the first script starts
    with tempfile.TemporaryDirectory(prefix="cirrus-run-") as temporary:
        base = Path(temporary)
        (base / "instances").mkdir()
        archive = None if options.dirty else base / "snapshot.tar.gz"
        source = await asyncio.to_thread(project_source, project.directory, options, archive)
        changes = build_filter(options, project.directory)
        blobs = run_blobs_dir(environ, project.directory)
        async with embedded_controller(
            base, project.directory, changes, blobs_dir=blobs
        ) as controller:
            try:
                worker_config = local_worker_config(options.worker_file, controller, environ)
            except ConfigError as error:
                raise LocalRunError(config_error_line(error), USAGE_EXIT_CODE) from None
            backend = None if options.container_backend == "auto" else options.container_backend
            async with (
                embedded_worker(worker_config, base / "instances", backend) as worker,
                ControllerApiClient(controller.url, controller.admin_token) as client,
            ):
                if archive is not None:
                    snapshot = await client.upload_snapshot(archive)
                    source = dataclasses.replace(
                        source, snapshot=snapshot.id, snapshot_sha256=snapshot.sha256
                    )
                await wait_for_registration(client)
                try:
                    submitted = await client.submit_build(
                        project.config_text,
                        dict(options.environment or {}),
                        project.starlark,
                        source if source != BuildSource() else None,
                    )
                except ControllerRefused as error:
                    raise LocalRunError(f"cirrus: {error.message}", USAGE_EXIT_CODE) from None
                for line in submitted_lines(submitted):
                    view.line(line)
                with _cancel_on_signal(worker):
                    try:
                        final = await follow_build(
                            client, submitted.id, view, hopeless=can_never_run
                        )
                    except TaskCannotRun as error:
                        worker.cancel_all()
                        message = f"cirrus: {error} (on this machine, with this worker file)"
                        raise LocalRunError(message, FAILURE_EXIT_CODE) from None
                if options.artifacts_dir is not None:
                    await copy_artifacts(controller, final, Path(options.artifacts_dir), view)
                return 0 if final.status == "COMPLETED" else FAILURE_EXIT_CODE


@contextlib.contextmanager
def _cancel_on_signal(worker: Worker) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    count = 0

    def on_signal(signum: int) -> None:
        nonlocal count
        count += 1
        if count == 1:
            click.echo(
                f"cirrus: {signal.Signals(signum).name}: cancelling the build "
                "(again to exit at once)",
                err=True,
            )
            worker.cancel_all()
        else:
            os._exit(128 + signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        yield
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def make_view(output: OutputFormat) -> BuildView:
    """The view of ``-o/--output`` (``auto`` already resolved)."""
    if output is OutputFormat.GITHUB_ACTIONS:
        return GithubActionsView(Console(highlight=False, force_terminal=False))
    terminal = output is OutputFormat.INTERACTIVE
    return BuildView(Console(highlight=False, force_terminal=terminal))


def read_project(config_file: str) -> LocalProject:
    """The ``.cirrus.yml`` (and its ``.cirrus.star``) and the project: the current directory."""
    starlark = read_starlark(config_file)
    # As the original, a .cirrus.star alone is a whole configuration.
    config_text = "" if starlark and not Path(config_file).exists() else read_config(config_file)
    return LocalProject(config_text, starlark, Path.cwd())


def run_options(
    task: str | None,
    *,
    env: Sequence[str],
    env_file_name: str | None,
    affected: Sequence[str],
    affected_git: str | None,
    environ: Mapping[str, str],
    **rest: object,
) -> RunOptions:
    """The ``RunOptions`` of the command line (exit 2 for a wrong value); ``rest`` holds the
    flags taken as they are (``worker_file``, ``dirty``, ``output``, ...)."""
    if task is not None and task.endswith((".yml", ".yaml", ".star")) and Path(task).is_file():
        raise LocalRunError(
            f"cirrus: {task!r} is a file, and `cirrus run` takes a task name: "
            f"use `cirrus run --config {task}`",
            USAGE_EXIT_CODE,
        )
    environment = env_file(env_file_name, environ) if env_file_name else {}
    environment.update(env_arguments(env, environ))
    output = resolve_output(str(rest.pop("output")), sys.stdout.isatty(), environ)
    return RunOptions(
        task=task,
        environment=environment,
        affected_files=affected_files(affected),
        affected_files_git=affected_git,
        output=output,
        **rest,  # type: ignore[arg-type]
    )


@click.command(name="run", cls=OneLineUsageCommand)
@click.argument("task", required=False, metavar="[TASK]")
@click.option(
    "--config",
    "config_file",
    default=".cirrus.yml",
    show_default=True,
    metavar="FILE",
    help="The configuration (a .cirrus.star beside it is read too).",
)
@click.option(
    "-f",
    "--file",
    "worker_file",
    metavar="WORKER_FILE",
    help=(
        "Worker configuration (default: no labels or resources); container: tasks run in the "
        "local podman or docker whatever its security section says."
    ),
)
@click.option(
    "-e", "--env", multiple=True, metavar="NAME[=VALUE]", help="Set (or pass) a variable."
)
@click.option("--env-file", "env_file_name", metavar="FILE", help="NAME=VALUE (or NAME) lines.")
@click.option(
    "--affected-files",
    "affected",
    multiple=True,
    metavar="A,B",
    help="Changed files, for changesInclude (comma-separated, repeatable).",
)
@click.option(
    "--affected-files-git",
    "affected_git",
    metavar="REV",
    help="Add the files changed since REV (uncommitted and untracked ones included).",
)
@click.option(
    "--artifacts-dir",
    metavar="DIR",
    help="Copy each task's artifacts to DIR/<task name>/<artifact name>/ at the end.",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice([f.value for f in OutputFormat]),
    default=OutputFormat.AUTO.value,
    show_default=True,
    help="auto: github-actions in a GitHub workflow, interactive on a terminal, else simple.",
)
@click.option(
    "--container-backend",
    type=click.Choice(["auto", "docker", "podman"]),
    default="auto",
    show_default=True,
    help="The engine of container: tasks (auto: $CIRRUS_CONTAINER_BACKEND, podman, docker).",
)
@click.option("--dirty", is_flag=True, help="Run in the project directory itself, not a copy.")
def run(task: str | None, config_file: str, **flags: object) -> None:
    """Run the .cirrus.yml here (TASK and its dependencies, or every task) with an embedded
    controller and worker; exit 0 iff every task that ran completed."""
    try:
        options = run_options(task, environ=os.environ, **flags)  # type: ignore[arg-type]
    except LocalRunError as error:
        click.echo(" ".join(str(error).split()), err=True)
        sys.exit(error.exit_code)
    project = read_project(config_file)
    configure_logging("warning", None, None, 0, console_rich=False)
    view = make_view(options.output)
    try:
        code = asyncio.run(run_locally(project, options, view, os.environ))
    except LocalRunError as error:
        click.echo(" ".join(str(error).split()), err=True)
        code = error.exit_code
    except ControllerApiError as error:
        click.echo(f"cirrus: {' '.join(str(error).split())}", err=True)
        code = FAILURE_EXIT_CODE
    finally:
        shutdown_logging()
    sys.exit(code)
