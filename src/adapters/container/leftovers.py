"""Removal of containers that a dead worker left behind (orphans after a crash or a SIGKILL)."""

from __future__ import annotations

from collections.abc import Callable

from adapters.container.additional import ADDITIONAL_LABEL
from adapters.container.engine import ContainerEngine
from adapters.container.instance import PID_LABEL, TASK_LABEL


async def remove_leftovers(
    engine: ContainerEngine | str | None, worker_pid_alive: Callable[[int], bool]
) -> list[str]:
    """Remove the containers labelled by this program whose worker pid is dead; return their ids.

    Containers without our task label, or whose pid label is missing or not a number, are never
    touched, nor are those of a worker that is still alive.
    """
    if not isinstance(engine, ContainerEngine):
        engine = ContainerEngine(engine)
    listed = await engine.run(
        ["ps", "--all", "--quiet", "--no-trunc", "--filter", f"label={TASK_LABEL}"]
    )
    containers = listed.stdout.split()
    if not containers:
        return []
    # A container removed meanwhile makes inspect fail for it only: the others are still printed.
    pid_format = (
        f'{{{{.Id}}}} {{{{index .Config.Labels "{PID_LABEL}"}}}} '
        f'{{{{index .Config.Labels "{ADDITIONAL_LABEL}"}}}}'
    )
    inspected = await engine.run(["inspect", "--format", pid_format, *containers], check=False)
    additional: list[str] = []
    main: list[str] = []
    for line in inspected.stdout.splitlines():
        container, pid_text, additional_name = [*line.split(" ", 2), "", ""][:3]
        if container and pid_text.isdigit() and not worker_pid_alive(int(pid_text)):
            # "<no value>" (podman) or "" (docker) when the label is missing.
            is_additional = additional_name.strip() not in ("", "<no value>")
            (additional if is_additional else main).append(container)
    # Additional containers first: the engine refuses to remove a container whose network
    # namespace another one still shares.
    await engine.remove_containers(additional)
    await engine.remove_containers(main)
    return additional + main
