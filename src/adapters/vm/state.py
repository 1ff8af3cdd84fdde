"""The VMs this worker created, in a small JSON file, so that orphan cleanup removes only ours.

The original deletes every ``cirrus-cli-*`` VM at start (spec §2.9, §12.6), including those of
another worker process on the same host. Here a VM is recorded (tool, name, owner pid) before it
is cloned and forgotten once deleted; cleanup only considers recorded VMs whose owner process is
gone. Updates hold an exclusive ``flock`` on a side lock file and replace the file atomically,
so several workers may share one state file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from domain.errors import InstanceError


@dataclass(frozen=True, slots=True)
class VmRecord:
    """One VM this worker (process ``owner_pid``) created with ``tool``."""

    tool: str
    name: str
    owner_pid: int


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (a zombie counts as gone only once reaped)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class VmStateFile:
    """A JSON file listing VM records; every call reads it afresh under the lock."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._lock_path = self._path.with_name(self._path.name + ".lock")

    @property
    def path(self) -> Path:
        """Where the records are kept."""
        return self._path

    def records(self) -> list[VmRecord]:
        """Every recorded VM."""
        with self._locked():
            return self._read()

    def add(self, record: VmRecord) -> None:
        """Record a VM (before it is created, so that a crash cannot hide it)."""
        with self._locked():
            records = [r for r in self._read() if (r.tool, r.name) != (record.tool, record.name)]
            self._write([*records, record])

    def remove(self, tool: str, name: str) -> None:
        """Forget a VM (once it is deleted); forgetting an unknown one does nothing."""
        with self._locked():
            records = self._read()
            kept = [r for r in records if (r.tool, r.name) != (tool, name)]
            if kept != records:
                self._write(kept)

    def orphans(self, tool: str, alive: Callable[[int], bool] = pid_alive) -> list[VmRecord]:
        """The recorded VMs of ``tool`` whose owner is neither alive nor this process."""
        me = os.getpid()
        return [
            r
            for r in self.records()
            if r.tool == tool and (r.owner_pid == me or not alive(r.owner_pid))
        ]

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise InstanceError(f"cannot open the VM state file {self._path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self) -> list[VmRecord]:
        try:
            text = self._path.read_text()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise InstanceError(f"cannot read the VM state file {self._path}: {exc}") from exc
        try:
            entries = json.loads(text).get("vms", [])
            return [
                VmRecord(str(e["tool"]), str(e["name"]), int(e["owner_pid"]))
                for e in entries
                if isinstance(e, dict)
            ]
        except (ValueError, AttributeError, KeyError, TypeError) as exc:
            raise InstanceError(f"unreadable VM state file {self._path}: {exc}") from exc

    def _write(self, records: list[VmRecord]) -> None:
        document = {
            "vms": [{"tool": r.tool, "name": r.name, "owner_pid": r.owner_pid} for r in records]
        }
        try:
            fd, temporary = tempfile.mkstemp(prefix=".vm-state-", dir=self._path.parent)
            try:
                with os.fdopen(fd, "w") as handle:
                    json.dump(document, handle, indent=1)
                    handle.write("\n")
                os.replace(temporary, self._path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            raise InstanceError(f"cannot write the VM state file {self._path}: {exc}") from exc
