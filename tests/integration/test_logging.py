"""The ``log`` config section against real files: rotation limits, levels and secret masking."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.logging import (
    TRACE,
    add_secret,
    configure_logging,
    secret_registry,
    shutdown_logging,
)
from domain.errors import ConfigError

pytestmark = pytest.mark.integration

LINE_PADDING = "x" * 80


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "httpx", "httpcore")}
    yield
    shutdown_logging()
    secret_registry().clear()
    root.setLevel(levels[""])
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(levels[name])


def write_lines(count: int) -> None:
    log = logging.getLogger("cirrus.test")
    for number in range(count):
        log.info("line %05d %s", number, LINE_PADDING)


def rotated_files(log_file: Path) -> list[Path]:
    return sorted(
        (p for p in log_file.parent.iterdir() if p.name.startswith(log_file.name + ".")),
        key=lambda p: int(p.name.rsplit(".", 1)[1]),
    )


def line_numbers(path: Path) -> list[int]:
    return [int(line.split("line ")[1].split()[0]) for line in path.read_text().splitlines()]


def test_rotation_keeps_at_most_max_rotations_files_each_within_the_size(tmp_path: Path) -> None:
    log_file = tmp_path / "worker.log"
    configure_logging("info", str(log_file), rotate_size_bytes=1000, max_rotations=3)
    write_lines(300)
    shutdown_logging()

    rotated = rotated_files(log_file)
    assert [p.name for p in rotated] == ["worker.log.1", "worker.log.2", "worker.log.3"]
    for path in [log_file, *rotated]:
        assert 0 < path.stat().st_size <= 1000
    # FILE.1 is the newest rotation: its lines come right before the live file's.
    newest, older, oldest = (line_numbers(p) for p in rotated)
    assert max(oldest) < min(older)
    assert max(older) < min(newest)
    assert max(newest) + 1 == min(line_numbers(log_file))
    assert line_numbers(log_file)[-1] == 299


def test_zero_max_rotations_keeps_every_rotated_file_and_loses_no_line(tmp_path: Path) -> None:
    log_file = tmp_path / "worker.log"
    configure_logging("info", str(log_file), rotate_size_bytes=1000, max_rotations=0)
    write_lines(300)
    shutdown_logging()

    rotated = rotated_files(log_file)
    assert len(rotated) >= 20
    every_line = [n for p in reversed(rotated) for n in line_numbers(p)] + line_numbers(log_file)
    assert every_line == list(range(300))


def test_no_rotate_size_never_rotates(tmp_path: Path) -> None:
    log_file = tmp_path / "worker.log"
    configure_logging("info", str(log_file), rotate_size_bytes=None, max_rotations=2)
    write_lines(300)
    shutdown_logging()

    assert rotated_files(log_file) == []
    assert line_numbers(log_file) == list(range(300))
    assert log_file.stat().st_size > 30_000


def test_a_record_larger_than_the_rotate_size_is_still_written(tmp_path: Path) -> None:
    log_file = tmp_path / "worker.log"
    configure_logging("info", str(log_file), rotate_size_bytes=50, max_rotations=1)
    logging.getLogger("cirrus.test").info("big %s", "y" * 500)
    logging.getLogger("cirrus.test").info("next")
    shutdown_logging()

    assert "y" * 500 in (tmp_path / "worker.log.1").read_text()
    assert "next" in log_file.read_text()


def test_registered_secrets_never_reach_the_log_file(tmp_path: Path) -> None:
    log_file = tmp_path / "worker.log"
    configure_logging("debug", str(log_file), None, 0, secrets=["reg-token-123", "session-abc-XYZ"])
    add_secret("task-secret-987")
    log = logging.getLogger("cirrus.test")
    log.info("registering with token reg-token-123")
    log.debug("headers: %s", {"session-token": "session-abc-XYZ"})
    log.warning("secret in %s and %s", "task-secret-987", "task-secret-987!")
    try:
        raise RuntimeError("call failed with token reg-token-123")
    except RuntimeError:
        log.exception("poll failed")
    shutdown_logging()

    text = log_file.read_text()
    for secret in ("reg-token-123", "session-abc-XYZ", "task-secret-987"):
        assert secret not in text
    assert text.count("***") >= 6
    assert "RuntimeError: call failed with token ***" in text


def test_a_secret_containing_another_secret_is_masked_whole(tmp_path: Path) -> None:
    log_file = tmp_path / "worker.log"
    configure_logging("info", str(log_file), None, 0, secrets=["abc", "abcdef"])
    logging.getLogger("cirrus.test").info("value abcdef")
    shutdown_logging()

    assert log_file.read_text().rstrip().endswith("value ***")


def test_levels_filter_records_and_trace_is_below_debug(tmp_path: Path) -> None:
    log_file = tmp_path / "worker.log"
    configure_logging("debug", str(log_file), None, 0)
    log = logging.getLogger("cirrus.test")
    log.log(TRACE, "trace-record")
    log.debug("debug-record")
    configure_logging("warn", str(log_file), None, 0)
    log.info("info-record")
    log.warning("warning-record")
    configure_logging("trace", str(log_file), None, 0)
    log.log(TRACE, "second-trace-record")
    configure_logging("fatal", str(log_file), None, 0)
    log.error("error-record")
    log.critical("critical-record")
    shutdown_logging()

    messages = [line.split(": ", 1)[1] for line in log_file.read_text().splitlines()]
    assert messages == ["debug-record", "warning-record", "second-trace-record", "critical-record"]
    assert "TRACE cirrus.test: second-trace-record" in log_file.read_text()


def test_an_unknown_level_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        configure_logging("verbose", str(tmp_path / "worker.log"), None, 0)
    assert caught.value.key == "log.level"


def test_with_a_file_nothing_goes_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info", str(tmp_path / "worker.log"), None, 0)
    logging.getLogger("cirrus.test").warning("only in the file")
    shutdown_logging()

    assert capsys.readouterr().err == ""
    assert "only in the file" in (tmp_path / "worker.log").read_text()


def test_off_a_terminal_the_console_gets_plain_masked_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info", None, None, 0, secrets=["hunter2"])
    logging.getLogger("cirrus.test").warning("password is hunter2")
    shutdown_logging()

    err = capsys.readouterr().err
    assert "WARNING cirrus.test: password is ***" in err
    assert "hunter2" not in err
    assert "\x1b[" not in err
