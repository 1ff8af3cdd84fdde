"""What the pages compute: log windows, ANSI to HTML, stages and badges."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.web.badges import badge_svg
from app.web.log_view import LOG_PAGE_BYTES, ansi_to_html, log_window
from app.web.views import format_duration, stages
from domain.build import BuildSpec, TaskSpec, TaskStatus
from domain.store import BuildRecord, TaskRecord


def test_a_log_opens_at_its_tail_and_pages_back_to_its_start() -> None:
    size = 10 * LOG_PAGE_BYTES + 5
    tail = log_window(size, None)
    assert (tail.start, tail.end, tail.later) == (size - LOG_PAGE_BYTES, size, None)
    assert tail.at_tail
    first = log_window(size, 0)
    assert (first.start, first.end, first.earlier) == (0, LOG_PAGE_BYTES, None)
    assert first.later == LOG_PAGE_BYTES
    assert not first.at_tail


@given(st.integers(0, 10**9), st.one_of(st.none(), st.integers(-5, 10**9)))
def test_a_window_stays_inside_the_log_and_is_at_most_a_page(size: int, offset: int | None) -> None:
    window = log_window(size, offset)
    assert 0 <= window.start <= window.end <= size
    assert window.end - window.start <= LOG_PAGE_BYTES


def test_ansi_colours_become_spans_and_the_text_is_escaped() -> None:
    html = str(ansi_to_html(b"\x1b[31m<b>red</b>\x1b[0m plain\n"))
    assert "<span style=" in html
    assert "&lt;b&gt;red&lt;/b&gt;" in html
    assert html.endswith(" plain\n")


def test_a_log_without_escapes_is_escaped_text() -> None:
    assert str(ansi_to_html(b"a < b & c\n")) == "a &lt; b &amp; c\n"


def _task(position: int, name: str, depends_on: tuple[str, ...] = ()) -> TaskRecord:
    spec = TaskSpec(name=name, depends_on=depends_on)
    return TaskRecord(str(position), "1", name, TaskStatus.CREATED, spec, position, 0.0, 0.0)


def test_tasks_are_grouped_by_the_depth_of_their_dependencies() -> None:
    tasks = (_task(1, "pack", ("test", "lint")), _task(2, "lint"), _task(3, "test", ("lint",)))
    build = BuildRecord("1", {}, 0.0, tasks)
    assert [[t.name for t in stage] for stage in stages(build)] == [["lint"], ["test"], ["pack"]]
    assert BuildSpec(tasks=tuple(t.spec for t in tasks)).dependency_indices()


def test_durations_read_as_people_say_them() -> None:
    assert [format_duration(s) for s in (None, 5.24, 65, 3725)] == ["", "5.2s", "1m 05s", "1h 02m"]


def test_a_badge_names_the_status_and_escapes_its_label() -> None:
    svg = badge_svg("a<b", "FAILED")
    assert "failing" in svg
    assert "a&lt;b" in svg
    assert svg.startswith("<svg")
    assert "unknown" in badge_svg("build", None)
