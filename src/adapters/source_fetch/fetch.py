"""The ``clone`` instruction's fetch on the worker host: a per-task workspace, then the source.

The workspace is a private temporary directory of the worker; the instance gets its files with
``Instance.copy_in`` afterwards, so neither git nor network access is needed inside it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from adapters.source_fetch.git_fetch import fetch_git
from adapters.source_fetch.snapshot_fetch import fetch_snapshot
from domain.clone import TOKEN_VARIABLE, git_source, snapshot_source, source_kind
from domain.ports import OutputSink

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


@asynccontextmanager
async def task_workspace(task_id: str) -> AsyncIterator[str]:
    """A new private directory for one task's source, removed when the block ends."""
    name = _UNSAFE_NAME_CHARS.sub("_", task_id)[:64] or "task"
    root = await asyncio.to_thread(tempfile.mkdtemp, prefix=f"cirrus-source-{name}-")
    try:
        yield root
    finally:
        await asyncio.shield(asyncio.to_thread(shutil.rmtree, root, True))


async def fetch_source(
    env: Mapping[str, str],
    directory: str,
    output: OutputSink,
    *,
    endpoint: str,
    headers: Mapping[str, str],
) -> bool:
    """Fetch the task's snapshot or git source into ``directory`` (new); False if it has none.

    ``CloneError`` says why the fetch failed.
    """
    kind = source_kind(env)
    target = Path(directory)
    if kind == "snapshot":
        await fetch_snapshot(snapshot_source(env), endpoint, headers, target, output)
        return True
    if kind == "git":
        await fetch_git(git_source(env), target, env.get(TOKEN_VARIABLE, ""), output)
        return True
    return False
