"""``WriteFailureNotice``: a log file that cannot be written is said once, then once a minute."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from adapters.logging.rotation import SizeRotatingFileHandler
from adapters.logging.write_failures import WriteFailureNotice

FULL = OSError(28, "No space left on device")


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def notice_with(clock: ManualClock) -> tuple[WriteFailureNotice, io.StringIO]:
    stderr = io.StringIO()
    return WriteFailureNotice("/var/log/w.log", clock=clock, stream=lambda: stderr), stderr


def test_the_first_failure_is_said_at_once_in_one_line_naming_the_file_and_the_error() -> None:
    notice, stderr = notice_with(ManualClock())
    notice.failed(FULL)
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 1
    assert "/var/log/w.log" in lines[0]
    assert "No space left on device" in lines[0]
    assert notice.failing


def test_failures_within_a_minute_are_counted_but_not_said_again() -> None:
    clock = ManualClock()
    notice, stderr = notice_with(clock)
    for _ in range(32):
        notice.failed(FULL)
        clock.now += 1.5
    assert len(stderr.getvalue().splitlines()) == 1
    assert notice.lost == 32


def test_a_failure_a_minute_after_the_last_message_is_said_again_with_the_count_lost() -> None:
    clock = ManualClock()
    notice, stderr = notice_with(clock)
    notice.failed(FULL)
    clock.now += 59.9
    notice.failed(FULL)
    clock.now += 0.1
    notice.failed(FULL)
    clock.now += 30
    notice.failed(FULL)
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 2
    assert "3 log record(s) lost so far" in lines[1]


def test_recovery_is_said_once_and_a_later_failure_is_said_at_once_again() -> None:
    clock = ManualClock()
    notice, stderr = notice_with(clock)
    notice.failed(FULL)
    notice.failed(FULL)
    notice.recovered()
    notice.recovered()
    clock.now += 1
    notice.failed(FULL)
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 3
    assert "written again; 2 log record(s) were lost" in lines[1]
    assert "cannot write the log file" in lines[2]


def test_nothing_is_said_while_writes_succeed() -> None:
    notice, stderr = notice_with(ManualClock())
    notice.recovered()
    assert stderr.getvalue() == ""
    assert not notice.failing


class FailingStream(io.StringIO):
    """A stream whose flushes fail while ``full`` is set, like a file on a full disk."""

    full = True

    def flush(self) -> None:
        if self.full:
            raise OSError(28, "No space left on device")


def test_the_handler_loses_a_record_without_a_traceback_and_says_so_in_the_file_after(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "w.log")
    stderr = io.StringIO()
    notice = WriteFailureNotice(path, clock=ManualClock(), stream=lambda: stderr)
    handler = SizeRotatingFileHandler(path, max_bytes=None, notice=notice)
    handler.setFormatter(logging.Formatter("%(message)s"))
    # The file is open; its writes now fail as on a full disk.
    handler.close()
    handler.stream = FailingStream()  # type: ignore[assignment]
    handler.handle(logging.makeLogRecord({"msg": "first", "levelno": logging.INFO}))
    assert notice.lost == 1
    # The failed stream is dropped: the next record opens the file again, which works.
    handler.handle(logging.makeLogRecord({"msg": "second", "levelno": logging.INFO}))
    handler.close()
    assert (tmp_path / "w.log").read_text().splitlines() == [
        f"1 log record(s) were lost while {path} could not be written",
        "second",
    ]
    assert "Traceback" not in stderr.getvalue()
    assert len(stderr.getvalue().splitlines()) == 2
