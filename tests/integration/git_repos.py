"""Real git repositories for tests: an isolated git configuration, and small helpers to make
repositories and commits in tmp_path."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

GIT_CONFIG = (
    "[user]\n\tname = Ada Lovelace\n\temail = ada@example.com\n"
    '[init]\n\tdefaultBranch = main\n[protocol "file"]\n\tallow = always\n'
)


def isolate_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Give git (of this process and its children) an identity and none of the machine's
    settings (no global excludes file, no system configuration)."""
    config = tmp_path / "gitconfig"
    config.write_text(GIT_CONFIG)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo``; return its output without surrounding whitespace."""
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def write(path: Path, text: str = "x\n") -> Path:
    """Write a file, creating its directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def new_repository(path: Path) -> Path:
    """A repository on branch ``main`` with one commit of ``README.md``."""
    path.mkdir(parents=True)
    git(path, "init", "-q")
    write(path / "README.md", "hello\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "Add the readme\n\nWith a body.")
    return path


def commit_all(repo: Path, message: str) -> str:
    """Commit every change of ``repo``; return the new commit."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")
