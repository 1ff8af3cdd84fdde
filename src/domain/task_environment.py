"""A task's environment, from both ends of the wire, in one place.

* ``sent_environment``: what the controller puts in ``CommandsResponse.environment``: the CI
  flags, the build's environment, the task's own, then the task's identity (which a build
  cannot override).
* ``task_variables``: what the worker adds on its side before the commands run: the CI flags,
  the task id and working directory, the trace context, then the response's environment, which
  wins (so a ``TRACEPARENT`` set by the build still wins over the worker's own).

The base environment of the instance comes before both; ``app/worker/task_env.py`` expands
them as the Cirrus agent did.
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.store import TaskRecord

CI_FLAGS: Mapping[str, str] = {"CI": "true", "CIRRUS_CI": "true"}


def sent_environment(task: TaskRecord, build_environment: Mapping[str, str]) -> dict[str, str]:
    """Return a task's environment as the controller sends it: CI flags, the build's and the
    task's, then its identity (``CIRRUS_TASK_NAME_ALIAS`` only for a task with an ``alias``, as
    in Cirrus)."""
    return {
        **CI_FLAGS,
        **build_environment,
        **task.spec.environment,
        "CIRRUS_BUILD_ID": task.build_id,
        "CIRRUS_TASK_ID": task.id,
        "CIRRUS_TASK_NAME": task.name,
        **({"CIRRUS_TASK_NAME_ALIAS": task.spec.alias} if task.spec.alias else {}),
    }


def task_variables(
    task_id: str,
    working_directory: str,
    response_environment: Mapping[str, str],
    trace_context: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the task's own variables on the worker: CI variables, trace context, then the
    response's environment (last wins)."""
    return {
        **CI_FLAGS,
        "CIRRUS_TASK_ID": task_id,
        "CIRRUS_WORKING_DIR": working_directory,
        **(trace_context or {}),
        **response_environment,
    }
