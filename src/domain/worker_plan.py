"""What the worker does with a poll answer: a pure plan, carried out by the poll loop.

The worker's mode (accepting, draining, stopped polling) used to be four mutable flags spread
over the poll loop. Here it is one value, and every transition is a function of it:
``plan(mode, answer, running)`` says what to stop, start, refuse and whether to shut down, and
``drain(mode)`` what a drain changes. The shell (``app/worker/poll_loop.py``) only carries out
the actions, in the order given.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from domain.protocol import AgentAwareTask, PollResponse, StandbyParameters


@dataclass(frozen=True, slots=True)
class WorkerMode:
    """Where the worker is in its life: accepting tasks, draining, or told to shut down."""

    ephemeral: bool = False
    refusing: bool = False
    """New tasks are refused (reported failed without running)."""
    finish_when_idle: bool = False
    """The worker stops once no task runs."""
    polling: bool = True
    """Poll loops go on; false once a controller asked the worker to shut down."""
    paused: bool = False
    """A drain began: controllers were (or will be) told the worker is disabled."""


@dataclass(frozen=True, slots=True)
class StopTask:
    """Cancel a task this worker runs (a controller listed it in ``tasksToStop``)."""

    task_id: str


@dataclass(frozen=True, slots=True)
class StartTask:
    """Run a task that was offered."""

    task: AgentAwareTask


@dataclass(frozen=True, slots=True)
class RefuseTask:
    """Report an offered task failed without running it: the worker drains or is done."""

    task: AgentAwareTask


@dataclass(frozen=True, slots=True)
class IgnoreTask:
    """An offered task that already runs here: nothing to do but say so."""

    task_id: str


@dataclass(frozen=True, slots=True)
class ShutDown:
    """A controller asked the worker to shut down: stop polling, finish, leave."""


@dataclass(frozen=True, slots=True)
class UpdateStandby:
    """A controller pushed new standby parameters."""

    parameters: StandbyParameters


Action = StopTask | StartTask | RefuseTask | IgnoreTask | ShutDown | UpdateStandby


def plan(
    mode: WorkerMode, answer: PollResponse, running: frozenset[str]
) -> tuple[WorkerMode, tuple[Action, ...]]:
    """Decide what a poll answer means: stops first, then starts, then shutdown or standby."""
    actions: list[Action] = [StopTask(task_id) for task_id in answer.tasks_to_stop]
    seen = set(running)
    for task in answer.tasks_to_start:
        if task.task_id in seen:
            actions.append(IgnoreTask(task.task_id))
            continue
        seen.add(task.task_id)
        if mode.refusing:
            actions.append(RefuseTask(task))
            continue
        actions.append(StartTask(task))
        if mode.ephemeral:
            # The one task of an ephemeral worker: every later one is refused, and the worker
            # stops after it.
            mode = replace(mode, refusing=True, finish_when_idle=True)
    if answer.shutdown:
        mode = replace(mode, polling=False, refusing=True, finish_when_idle=True)
        actions.append(ShutDown())
    elif answer.updated_standby_instances:
        actions.append(UpdateStandby(answer.updated_standby_instances[0]))
    return mode, tuple(actions)


def drain(mode: WorkerMode) -> WorkerMode:
    """Stop accepting tasks and finish once the running ones are done (idempotent)."""
    return replace(mode, refusing=True, finish_when_idle=True, paused=True)


def accepts_standby(mode: WorkerMode) -> bool:
    """Whether a standby instance may be warmed: not while refusing tasks."""
    return not mode.refusing


def finished(mode: WorkerMode, running: int) -> bool:
    """Whether the worker may leave: it was told to finish and no task runs."""
    return mode.finish_when_idle and running == 0
