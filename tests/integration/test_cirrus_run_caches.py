"""``cirrus run`` end to end with caches and artifacts: the embedded controller keeps caches in
``$XDG_CACHE_HOME/cirrus/run-blobs`` (a second run hits) and ``--artifacts-dir`` copies each
task's artifacts to ``DIR/<task name>/<artifact name>/<path>``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_local_run import cirrus_run

pytestmark = pytest.mark.integration

BUILD = """\
build_task:
  deps_cache:
    folder: deps
    fingerprint_script: echo v1
    populate_script: mkdir -p deps && echo populated > deps/x && echo POPULATE-RAN
  script: cat deps/x && mkdir -p out/sub && echo report > out/sub/r.txt
  always:
    out_artifacts:
      path: out/**/*.txt
"""


def test_a_second_cirrus_run_hits_the_cache_and_artifacts_are_copied_out(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".cirrus.yml").write_text(BUILD)
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    artifacts = tmp_path / "artifacts"

    first = cirrus_run(project, "-o", "simple", extra_env=env)
    second = cirrus_run(project, "-o", "simple", "--artifacts-dir", str(artifacts), extra_env=env)

    assert first.returncode == 0, first.stdout + first.stderr
    assert "POPULATE-RAN" in first.stdout
    assert any((tmp_path / "cache" / "cirrus" / "run-blobs").rglob("*"))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "POPULATE-RAN" not in second.stdout
    assert "Cache hit for deps-" in second.stdout
    copied = artifacts / "build" / "out" / "out" / "sub" / "r.txt"
    assert copied.read_text() == "report\n"
