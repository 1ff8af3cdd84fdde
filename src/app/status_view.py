"""What a running worker shows about itself: a rich live view on a terminal, log lines elsewhere.

Everything is rendered from a ``WorkerSnapshot`` (``app.worker.state``): controllers and whether
the worker is registered with them, poll state, running tasks with their isolation, elapsed time
and resources, and the resources still free.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from app.worker.state import TaskSnapshot, UpstreamSnapshot, WorkerSnapshot
from domain.errors import ControllerError
from domain.ports import ControllerClient

STATUS_LOGGER = "cirrus.worker.status"
# How often a running worker's view is redrawn: its ages are shown in whole seconds.
REFRESH_SECONDS = 1.0
# How often a live view asks the controllers whether they hold the worker paused: a pause
# (``cirrus worker pause``) is the controller's flag, which polls do not carry.
PAUSE_CHECK_SECONDS = 5.0


def format_elapsed(seconds: float) -> str:
    """A duration as ``42s``, ``3m05s`` or ``2h03m``."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_resources(resources: Mapping[str, float]) -> str:
    """A resource map as ``gpu=1 tart-vms=2`` (sorted; whole numbers without ``.0``)."""
    if not resources:
        return "-"
    return " ".join(f"{k}={v:g}" for k, v in sorted(resources.items()))


def worker_state(snapshot: WorkerSnapshot, paused_on: Collection[str] = ()) -> str:
    """One word for what the worker is doing: draining, paused or running (plus ephemeral).

    ``paused_on``: the controllers that hold this worker paused (``cirrus worker pause``).
    """
    paused = snapshot.paused or any(u.endpoint in paused_on for u in snapshot.upstreams)
    state = "draining" if snapshot.draining else "paused" if paused else "running"
    return f"{state}, ephemeral" if snapshot.ephemeral else state


def poll_state(upstream: UpstreamSnapshot, now: float | None) -> str:
    """How the last poll of one controller went, in words (``now`` None: without its age)."""
    if upstream.last_error and not upstream.last_poll_ok:
        return f"failing: {upstream.last_error}"
    if upstream.last_poll_time is None:
        return "not polled yet"
    if now is None:
        return "ok"
    return f"ok {format_elapsed(now - upstream.last_poll_time)} ago"


def render_status(
    snapshot: WorkerSnapshot, now: float, paused_on: Collection[str] = ()
) -> RenderableType:
    """The whole view of one snapshot as a rich renderable (``paused_on``: see worker_state)."""
    title = Text.assemble(
        ("cirrus worker ", "bold"),
        (snapshot.name, "bold cyan"),
        f" ({worker_state(snapshot, paused_on)})",
    )

    upstreams = Table(title="Controllers", title_justify="left", expand=True)
    for column in ("endpoint", "registered", "poll", "interval", "pending reports"):
        upstreams.add_column(column)
    for upstream in snapshot.upstreams:
        registered = Text("yes", "green") if upstream.registered else Text("no", "red")
        if upstream.endpoint in paused_on:
            registered.append(" (paused)", "yellow")
        upstreams.add_row(
            upstream.endpoint,
            registered,
            Text(poll_state(upstream, now), "red" if not upstream.last_poll_ok else ""),
            format_elapsed(upstream.poll_interval_seconds),
            str(upstream.pending_reports),
        )

    tasks: RenderableType = Text("No running tasks", "dim")
    if snapshot.tasks:
        tasks = _task_table(snapshot.tasks, now)

    resources = Table.grid(padding=(0, 2))
    resources.add_row("resources total", format_resources(snapshot.resources_total))
    resources.add_row("in use", format_resources(snapshot.resources_in_use))
    resources.add_row("free", format_resources(snapshot.resources_free))
    return Group(title, upstreams, tasks, resources)


def _task_table(running: Sequence[TaskSnapshot], now: float) -> Table:
    tasks = Table(title="Running tasks", title_justify="left", expand=True)
    for column in ("task", "isolation", "phase", "elapsed", "resources"):
        tasks.add_column(column)
    for task in running:
        tasks.add_row(
            task.task_id,
            task.isolation_kind,
            f"{task.phase} (cancelling)" if task.cancelling else task.phase,
            format_elapsed(now - task.started_at),
            format_resources(task.resources),
        )
    return tasks


def status_lines(snapshot: WorkerSnapshot, now: float | None) -> list[str]:
    """The same content as plain lines (``now`` None: without the ever-changing ages)."""
    lines = [
        f"worker {snapshot.name} {worker_state(snapshot)}; "
        f"registered: {'yes' if snapshot.registered else 'no'}; "
        f"free: {format_resources(snapshot.resources_free)}; "
        f"in use: {format_resources(snapshot.resources_in_use)}"
    ]
    lines.extend(_upstream_line(u, now) for u in snapshot.upstreams)
    lines.extend(_task_line(t, now) for t in snapshot.tasks)
    return lines


def _upstream_line(upstream: UpstreamSnapshot, now: float | None) -> str:
    registered = "registered" if upstream.registered else "not registered"
    return (
        f"controller {upstream.endpoint}: {registered}, {poll_state(upstream, now)}, "
        f"pending reports {upstream.pending_reports}"
    )


def _task_line(task: TaskSnapshot, now: float | None) -> str:
    cancelling = ", cancelling" if task.cancelling else ""
    elapsed = "" if now is None else f", {format_elapsed(now - task.started_at)}"
    return (
        f"task {task.task_id} ({task.isolation_kind}): {task.phase}{cancelling}{elapsed}, "
        f"resources {format_resources(task.resources)}"
    )


class StatusView:
    """Shows successive snapshots: a live rich view on a terminal, else changed lines as logs.

    On a terminal, ``console`` must be the one the log records are printed on: rich then prints
    them above the live view, which a second console writing to the same terminal would break
    (log lines inside the view, stale copies of its header left behind).
    """

    def __init__(
        self,
        console: Console | None = None,
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
    ) -> None:
        self._console = console if console is not None else Console(stderr=True)
        self._clock = clock
        self._logger = logger if logger is not None else logging.getLogger(STATUS_LOGGER)
        self._live: Live | None = None
        self._last_lines: list[str] = []
        self._paused_on: set[str] = set()

    @property
    def paused_on(self) -> frozenset[str]:
        """The controllers known to hold this worker paused (see ``watch_pauses``)."""
        return frozenset(self._paused_on)

    def set_paused(self, endpoint: str, paused: bool) -> None:
        """Remember whether the controller at ``endpoint`` holds this worker paused."""
        if paused:
            self._paused_on.add(endpoint)
        else:
            self._paused_on.discard(endpoint)

    @property
    def live(self) -> bool:
        """Whether snapshots are drawn as a live view (the console is a terminal)."""
        return self._console.is_terminal

    def start(self) -> None:
        """Begin showing (takes over the terminal when live)."""
        if self.live and self._live is None:
            self._live = Live(console=self._console, auto_refresh=False, transient=False)
            self._live.start()

    def show(self, snapshot: WorkerSnapshot) -> None:
        """Draw ``snapshot``; off a terminal, log only the lines that changed since last time."""
        now = self._clock()
        if self._live is not None:
            self._live.update(render_status(snapshot, now, self._paused_on), refresh=True)
            return
        # Ages change every second: log again only when something else changed.
        stable = status_lines(snapshot, None)
        if stable != self._last_lines:
            for line in status_lines(snapshot, now):
                self._logger.info("%s", line)
        self._last_lines = stable

    def stop(self) -> None:
        """Stop the live view and leave its last picture on the terminal."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __enter__(self) -> StatusView:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


async def show_until_cancelled(
    view: StatusView,
    snapshot: Callable[[], WorkerSnapshot],
    *,
    interval: float = REFRESH_SECONDS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Show a fresh snapshot every ``interval`` seconds until cancelled."""
    log = logging.getLogger(STATUS_LOGGER)
    while True:
        try:
            view.show(snapshot())
        except Exception:
            # A drawing problem must not stop the worker; say so once and stop drawing.
            log.exception("the status view failed; it is no longer updated")
            return
        await sleep(interval)


async def watch_pauses(
    view: StatusView,
    clients: Sequence[ControllerClient],
    *,
    interval: float = PAUSE_CHECK_SECONDS,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Ask every controller whether it holds the worker paused, every ``interval`` seconds."""
    log = logging.getLogger(STATUS_LOGGER)
    while True:
        for client in clients:
            try:
                status = await client.query_running_tasks()
            except ControllerError as error:
                # Not registered yet, or unreachable: the poll loop already says so.
                log.debug("asking %s whether it pauses us: %s", client.endpoint, error)
                continue
            view.set_paused(client.endpoint, status.disabled)
        await sleep(interval)
