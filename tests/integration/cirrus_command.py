"""The ``cirrus`` CLI as a child process of an async test: the controller the command talks to
may be served on the test's own event loop, so the command must not block that loop."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.integration.child_environment import child_environment

CIRRUS = Path(sys.executable).with_name("cirrus")
CLI_DEADLINE = 60.0
"""The longest one command may run before the test kills it and fails."""


async def run_cirrus(
    *args: str, environment: Mapping[str, str] | None = None, deadline: float = CLI_DEADLINE
) -> tuple[int, str, str]:
    """Run ``cirrus ARGS`` (stdin closed, the child environment plus ``environment``) to its
    end; return its exit code, stdout and stderr."""
    env = child_environment()
    env.update(environment or {})
    process = await asyncio.create_subprocess_exec(
        str(CIRRUS),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        async with asyncio.timeout(deadline):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
