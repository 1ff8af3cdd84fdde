"""Blob round trip through a real controller's ``/blobs`` endpoints (filesystem store).

Starts ``cirrus controller run`` on a temporary SQLite database, PUTs a blob of ``--size``
bytes (default 2 GiB) through a signed URL, GETs it back, checks the SHA-256 both ways and
prints the throughput and the controller's RSS growth (sampled with psutil while it works).
The worker side of a 2 GB artifact is measured by the worker's upload benchmark.

    .venv/bin/python benchmarks/blob_roundtrip.py [--size 2G]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil

from adapters.blobs.signing import BLOB_SIGNING_KEY_SETTING, BlobSigner

CHUNK = 1024 * 1024
UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3}
RSS_LIMIT_MB = 50


def parse_size(text: str) -> int:
    """``2G``, ``512M``, ``100K`` or a number of bytes."""
    unit = UNITS.get(text[-1:].upper())
    return int(text[:-1]) * unit if unit else int(text)


class PeakRss:
    """Samples a process's RSS in a thread; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def stop(self) -> float:
        """Stop sampling; return the growth in MB."""
        self._stop.set()
        self._thread.join()
        return (self.peak - self.baseline) / 1e6


def start_controller(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``cirrus controller run`` on a free port; its process and URL."""
    cirrus = Path(sys.executable).parent / "cirrus"
    out = (workdir / "controller.out").open("wb")
    process = subprocess.Popen(
        [str(cirrus), "controller", "run", "--listen", "127.0.0.1:0",
         "--database", f"sqlite:///{workdir / 'controller.db'}"],
        stdout=out, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in (workdir / "controller.out").read_text(errors="replace").splitlines():
            if line.startswith("controller listening on "):
                return process, line.split()[-1]
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the controller did not start:\n{(workdir / 'controller.out').read_text()}")


def signer_of(database: Path) -> BlobSigner:
    """The controller's URL signer, from its database."""
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT value FROM settings WHERE key = ?", (BLOB_SIGNING_KEY_SETTING,))
        (value,) = row.fetchone()
    return BlobSigner(base64.urlsafe_b64decode(value))


def body(size: int, digest: hashlib._Hash) -> Iterator[bytes]:
    """``size`` pseudo-random bytes, hashed as they are produced."""
    block = os.urandom(CHUNK)
    sent = 0
    while sent < size:
        piece = block[: min(CHUNK, size - sent)]
        # Vary each block so that no layer can deduplicate it.
        piece = sent.to_bytes(8, "little") + piece[8:] if len(piece) >= 8 else piece
        digest.update(piece)
        sent += len(piece)
        yield piece


def main() -> int:
    """Run the round trip; exit 1 if a SHA-256 differs or RSS grew past the limit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2G", help="blob size (2G, 512M, ...) [2G]")
    size = parse_size(parser.parse_args().size)
    with tempfile.TemporaryDirectory(prefix="blob-bench-") as temporary:
        workdir = Path(temporary)
        process, url = start_controller(workdir)
        try:
            signer = signer_of(workdir / "controller.db")
            rss = PeakRss(process.pid)
            key = "artifacts/bench/blob/payload.bin"
            sent = hashlib.sha256()
            with httpx.Client(timeout=600) as http:
                started = time.monotonic()
                put = http.put(url + signer.url("PUT", key, 3600).url, content=body(size, sent))
                put_seconds = time.monotonic() - started
                put.raise_for_status()
                received = hashlib.sha256()
                started = time.monotonic()
                with http.stream("GET", url + signer.url("GET", key, 3600).url) as got:
                    got.raise_for_status()
                    for chunk in got.iter_bytes(CHUNK):
                        received.update(chunk)
                get_seconds = time.monotonic() - started
            growth = rss.stop()
        finally:
            process.terminate()
            process.wait(timeout=30)
    mib = size / 1024**2
    same = sent.hexdigest() == put.json()["sha256"] == received.hexdigest()
    print(f"size: {mib:.0f} MiB")
    print(f"PUT: {put_seconds:.1f} s, {mib / put_seconds:.0f} MiB/s")
    print(f"GET: {get_seconds:.1f} s, {mib / get_seconds:.0f} MiB/s")
    print(f"sha256: {'match' if same else 'MISMATCH'} ({sent.hexdigest()})")
    print(f"controller RSS growth: {growth:.1f} MB (limit {RSS_LIMIT_MB} MB)")
    return 0 if same and growth < RSS_LIMIT_MB else 1


if __name__ == "__main__":
    sys.exit(main())
