"""Which commit statuses a build shows: one per task and one for the build, each posted once
per change, with links to the web pages."""

from __future__ import annotations

from dataclasses import replace

from domain.build import TaskSpec, TaskStatus
from domain.commit_statuses import BUILD_CONTEXT, changed_reports
from domain.store import BuildRecord, TaskRecord

URL = "https://ci.example"


def task(task_id: str, name: str, status: TaskStatus) -> TaskRecord:
    """A stored task."""
    return TaskRecord(task_id, "1", name, status, TaskSpec(name=name), int(task_id), 0.0, 0.0)


def test_a_queued_build_is_pending_with_links_to_its_pages() -> None:
    build = BuildRecord("1", {}, 0.0, (task("2", "unit", TaskStatus.SCHEDULED),))
    report = changed_reports(build, "acme/app", "abc", {}, URL)
    assert [(p.context, p.state, p.target_url) for p in report.posts] == [
        ("cirrus-ci/unit", "pending", f"{URL}/tasks/2"),
        (BUILD_CONTEXT, "pending", f"{URL}/builds/1"),
    ]
    assert not report.finished


def test_an_unchanged_status_is_not_posted_again() -> None:
    build = BuildRecord("1", {}, 0.0, (task("2", "unit", TaskStatus.SCHEDULED),))
    first = changed_reports(build, "acme/app", "abc", {}, URL)
    executing = replace(build, tasks=(task("2", "unit", TaskStatus.EXECUTING),))
    again = changed_reports(executing, "acme/app", "abc", first.reported, URL)
    assert [p.description for p in again.posts] == ["unit: running"]


def test_a_finished_build_reports_success_and_failure_and_is_finished() -> None:
    tasks = (task("2", "a", TaskStatus.COMPLETED), task("3", "b", TaskStatus.FAILED))
    report = changed_reports(BuildRecord("1", {}, 0.0, tasks), "acme/app", "abc", {}, URL)
    assert [p.state for p in report.posts] == ["success", "failure", "failure"]
    assert report.finished


def test_tasks_of_one_name_get_contexts_of_their_own() -> None:
    tasks = (task("2", "a", TaskStatus.CREATED), task("3", "a", TaskStatus.CREATED))
    report = changed_reports(BuildRecord("1", {}, 0.0, tasks), "acme/app", "abc", {}, URL)
    assert [p.context for p in report.posts][:2] == ["cirrus-ci/a #2", "cirrus-ci/a #3"]


def test_a_build_waiting_for_approval_says_why() -> None:
    build = BuildRecord("1", {}, 0.0, (task("2", "unit", TaskStatus.CREATED),))
    report = changed_reports(build, "acme/app", "abc", {}, URL, "waiting for approval")
    assert report.posts[0].description == "unit: waiting for approval"
