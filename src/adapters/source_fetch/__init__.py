"""Fetching a task's source on the worker host: a snapshot download or a real git clone."""

from adapters.source_fetch.fetch import fetch_source, task_workspace
from adapters.source_fetch.git_fetch import fetch_git
from adapters.source_fetch.snapshot_fetch import fetch_snapshot

__all__ = ["fetch_git", "fetch_snapshot", "fetch_source", "task_workspace"]
