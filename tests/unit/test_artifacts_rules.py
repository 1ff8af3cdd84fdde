"""Pure rules of caches and artifacts: scopes, eviction, merging, summaries, and the JUnit
reader on small files."""

from __future__ import annotations

from pathlib import Path

from adapters.junit_results import parse_junit
from domain.artifacts import (
    MAX_FAILURES,
    CacheEntry,
    CacheLimits,
    cache_scopes,
    eviction_victims,
    merge_results,
    scope_repository,
)
from domain.artifacts import TestFailure as Failure
from domain.artifacts import TestResults as Results


def test_a_pull_request_reads_its_own_scope_then_the_repository_and_writes_its_own() -> None:
    scopes = cache_scopes({"CIRRUS_REPO_FULL_NAME": "Octo/App", "CIRRUS_PR": "12"})
    assert (scopes.repository, scopes.write, scopes.read) == (
        "octo/app",
        "octo/app/pull/12",
        ("octo/app/pull/12", "octo/app"),
    )
    branch = cache_scopes({"CIRRUS_REPO_FULL_NAME": "octo/app"})
    assert (branch.write, branch.read) == ("octo/app", ("octo/app",))
    assert cache_scopes({}).write == "_"
    assert scope_repository("octo/app/pull/12") == "octo/app"
    assert scope_repository("octo/app") == "octo/app"


def entry(key: str, size: int, used: float) -> CacheEntry:
    return CacheEntry("octo/app", key, size, 0.0, used)


def test_eviction_drops_oversized_entries_then_the_least_recently_used_until_it_fits() -> None:
    entries = [entry("old", 100, 1.0), entry("new", 100, 3.0), entry("mid", 100, 2.0)]
    victims = eviction_victims([*entries, entry("huge", 500, 9.0)], CacheLimits(400, 250))
    assert [v.key for v in victims] == ["huge", "old"]
    assert eviction_victims(entries, CacheLimits(400, 300)) == []


def test_merged_results_add_up_and_keep_a_bounded_list_of_failures() -> None:
    many = Results(failed=MAX_FAILURES, failures=(Failure("t", "m"),) * MAX_FAILURES)
    merged = merge_results(merge_results(None, many), Results(1, 1, 1, (Failure("u"),), ("n",)))
    assert (merged.passed, merged.failed, merged.skipped) == (1, MAX_FAILURES + 1, 1)
    assert len(merged.failures) == MAX_FAILURES
    assert merged.notices == ("n",)


def test_the_summary_names_the_first_failing_tests() -> None:
    results = Results(12, 1, 0, (Failure("mod.test_x", "boom"),))
    assert results.summary() == "12 passed, 1 failed (mod.test_x), 0 skipped"


JUNIT = """<?xml version="1.0"?>
<testsuites>
  <testsuite name="a">
    <testcase classname="pkg.mod" name="test_ok"/>
    <testcase classname="pkg.mod" name="test_bad">
      <failure message="expected 1">trace</failure>
    </testcase>
    <testcase classname="pkg.mod" name="test_crash"><error>Traceback\nline two</error></testcase>
    <testcase classname="pkg.mod" name="test_later"><skipped/></testcase>
  </testsuite>
  <testsuite name="b"><testcase name="bare"/></testsuite>
</testsuites>
"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<testsuite><testcase name="&lol2;"/></testsuite>
"""


def test_a_junit_file_gives_counts_and_failures_with_their_first_message_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    assert parse_junit(path, "junit/junit.xml") == Results(
        passed=2,
        failed=2,
        skipped=1,
        failures=(
            Failure("pkg.mod.test_bad", "expected 1"),
            Failure("pkg.mod.test_crash", "Traceback"),
        ),
    )


def test_a_file_with_entities_or_broken_xml_gives_a_notice_and_no_counts(tmp_path: Path) -> None:
    for name, text in (("laughs.xml", BILLION_LAUGHS), ("broken.xml", "<testsuite><oops")):
        path = tmp_path / name
        path.write_text(text)
        results = parse_junit(path, name)
        assert (results.passed, results.failed, results.skipped) == (0, 0, 0)
        [notice] = results.notices
        assert notice.startswith(f"{name}: unparseable JUnit XML")
