"""The newcomer path of ``docs/quick-start.md``: cd into a repository and run ``cirrus run``.

The sample repository is a small Python package (code in ``src/``, tests in ``tests/``) whose
``.cirrus.yml`` has a ``lint`` task, a ``test`` task that depends on it and runs ``pytest``,
and a ``docs`` task. A ``.gitignore``d directory exists in the checkout and must not reach the
tasks. ``cirrus run`` is a real process started in the repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_local_run import cirrus_run

pytestmark = pytest.mark.integration

QUICK_START = Path(__file__).resolve().parents[2] / "docs" / "quick-start.md"


def quick_start_yaml() -> str:
    """The ``.cirrus.yml`` of ``docs/quick-start.md`` (its first yaml block), as written."""
    text = QUICK_START.read_text()
    return text.split("```yaml\n", 1)[1].split("```", 1)[0]


PACKAGE = '''\
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b
'''

TESTS = """\
from pathlib import Path

from calc import add


def test_add():
    assert add(2, 3) == 5


def test_the_ignored_directory_is_not_in_the_task():
    assert Path("src").is_dir()
    assert not Path("build-output").exists()
"""

PYPROJECT = """\
[tool.pytest.ini_options]
pythonpath = ["src"]
"""


def git(repo: Path, *args: str) -> str:
    """Run git in the sample repository (a throw-away one in tmp_path)."""
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


@pytest.fixture
def sample_repository(tmp_path: Path) -> Path:
    """A committed Python package with tests, a .cirrus.yml and an ignored directory."""
    repo = tmp_path / "calc"
    (repo / "src" / "calc").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "src" / "calc" / "__init__.py").write_text(PACKAGE)
    (repo / "tests" / "test_calc.py").write_text(TESTS)
    (repo / "pyproject.toml").write_text(PYPROJECT)
    (repo / ".cirrus.yml").write_text(quick_start_yaml())
    (repo / ".gitignore").write_text("build-output/\n")
    git(repo, "init", "--quiet", "--initial-branch", "feature")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@example.com", "add", "--all")
    git(repo, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-qm", "calc")
    (repo / "build-output").mkdir()
    (repo / "build-output" / "stale.bin").write_text("left over from a local build\n")
    return repo


def python_first_path() -> dict[str, str]:
    """``PATH`` with this interpreter's directory first: its ``python`` has ``pytest``."""
    return {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_cirrus_run_test_runs_pytest_on_the_repository_and_only_test_and_its_dependency(
    sample_repository: Path,
) -> None:
    commit = git(sample_repository, "rev-parse", "HEAD")

    result = cirrus_run(sample_repository, "test", extra_env=python_first_path())

    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert f"lint:main | linting feature at {commit}" in out
    assert "test:main | 2 passed" in out
    assert "the docs were built" not in out
    assert out.splitlines()[0] == "build 1: 2 task(s), EXECUTING"
    assert out.rstrip().splitlines()[-1] == "build 1: COMPLETED"
    assert (sample_repository / "build-output" / "stale.bin").exists()  # a copy ran, not this


def test_an_uncommitted_change_is_what_the_tests_run_against(sample_repository: Path) -> None:
    (sample_repository / "src" / "calc" / "__init__.py").write_text(
        PACKAGE.replace("a + b", "a - b")
    )

    result = cirrus_run(sample_repository, "test", extra_env=python_first_path())

    assert result.returncode == 1, result.stdout + result.stderr
    assert "test:main | FAILED tests/test_calc.py::test_add" in result.stdout
    assert "test (task 2): FAILED" in result.stdout


def test_without_a_task_every_task_runs(sample_repository: Path) -> None:
    result = cirrus_run(sample_repository, extra_env=python_first_path())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "docs:main | the docs were built" in result.stdout
    assert "test:main | 2 passed" in result.stdout


def test_an_unknown_task_is_exit_2_naming_the_tasks_there_are(sample_repository: Path) -> None:
    result = cirrus_run(sample_repository, "deploy")

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        'cirrus: task "deploy": no such task; the tasks are: lint, test, docs\n'
    )
