"""A size-rotated log file that can keep every rotated file (``RotatingFileHandler`` cannot)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from logging.handlers import BaseRotatingHandler
from pathlib import Path

from adapters.logging.write_failures import WriteFailureNotice


class SizeRotatingFileHandler(BaseRotatingHandler):
    """Writes to FILE; when a record would make FILE exceed ``max_bytes``, renames it to FILE.1.

    Older rotations move up (FILE.1 is always the newest). ``max_rotations`` 0 keeps every
    rotated file, N keeps FILE.1 … FILE.N. ``max_bytes`` None never rotates.
    """

    def __init__(
        self,
        filename: str | os.PathLike[str],
        max_bytes: int | None,
        max_rotations: int = 0,
        encoding: str | None = "utf-8",
        notice: WriteFailureNotice | None = None,
    ) -> None:
        if max_bytes is not None and max_bytes <= 0:
            raise ValueError(f"rotate size must be positive, got {max_bytes}")
        if max_rotations < 0:
            raise ValueError(f"max rotations must be 0 or more, got {max_rotations}")
        super().__init__(os.fspath(filename), "a", encoding=encoding, delay=False)
        self.max_bytes = max_bytes
        self.max_rotations = max_rotations
        self.notice = notice if notice is not None else WriteFailureNotice(self.baseFilename)
        self._failure: OSError | None = None

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record``; after lost records, first a line saying how many were lost."""
        if self.notice.failing:
            lost = logging.makeLogRecord(
                {
                    "name": record.name,
                    "levelno": logging.WARNING,
                    "levelname": logging.getLevelName(logging.WARNING),
                    "msg": self.notice.lost_line(),
                }
            )
            failure = self._write(lost)
            if failure is not None:
                self.notice.failed(failure)
                return
            self.notice.recovered()
        failure = self._write(record)
        if failure is not None:
            self.notice.failed(failure)

    def handleError(self, record: logging.LogRecord) -> None:
        """Remember a failed write (see ``emit``); anything else is a bug: the usual report."""
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)
            return
        self._failure = error
        # What the stream still buffers cannot be written either; the next record opens the
        # file afresh (a file replaced meanwhile, e.g. by log rotation, is then used too).
        stream, self.stream = self.stream, None
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.close()

    def _write(self, record: logging.LogRecord) -> OSError | None:
        """Write one record; the error that lost it, if any (set by ``handleError``)."""
        self._failure = None
        super().emit(record)
        return self._failure

    def shouldRollover(self, record: logging.LogRecord) -> int:
        """True when FILE is not empty and this record would push it past ``max_bytes``."""
        if self.max_bytes is None:
            return False
        if self.stream is None:  # closed by an earlier rollover that failed half-way
            self.stream = self._open()
        size = self.stream.tell()
        if size == 0:
            # A record bigger than the limit still has to be written somewhere.
            return False
        pending = len((self.format(record) + self.terminator).encode(self.encoding or "utf-8"))
        return size + pending > self.max_bytes

    def doRollover(self) -> None:
        """Shift FILE.n to FILE.n+1 (dropping what exceeds the limit), FILE to FILE.1, reopen."""
        if self.stream is not None:
            self.stream.close()
            self.stream = None
        base = Path(self.baseFilename)
        existing = sorted(self._rotated_numbers(base), reverse=True)
        for number in existing:
            source = base.with_name(f"{base.name}.{number}")
            if self.max_rotations and number >= self.max_rotations:
                source.unlink(missing_ok=True)
            else:
                os.replace(source, base.with_name(f"{base.name}.{number + 1}"))
        if base.exists():
            os.replace(base, base.with_name(f"{base.name}.1"))
        self.stream = self._open()

    @staticmethod
    def _rotated_numbers(base: Path) -> list[int]:
        pattern = re.compile(re.escape(base.name) + r"\.([1-9][0-9]*)")
        numbers = []
        for entry in base.parent.iterdir():
            match = pattern.fullmatch(entry.name)
            if match:
                numbers.append(int(match.group(1)))
        return numbers
