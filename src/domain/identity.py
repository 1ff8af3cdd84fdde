"""Worker identity (spec §1.7, §2.2, §2.3): default name, Go-style os/arch and the reported labels.

The host facts (hostname, ``sys.platform``, ``platform.machine()``) are read by an adapter and
passed in; this module only names and combines them.
"""

from __future__ import annotations

from collections.abc import Mapping

# Python's ``sys.platform`` prefix -> Go's GOOS. Versioned values such as ``freebsd14`` or
# ``sunos5`` are matched after their trailing digits are dropped.
_GO_OS: dict[str, str] = {
    "linux": "linux",
    "darwin": "darwin",
    "win": "windows",
    "cygwin": "windows",
    "msys": "windows",
    "freebsd": "freebsd",
    "openbsd": "openbsd",
    "netbsd": "netbsd",
    "dragonfly": "dragonfly",
    "sunos": "solaris",
    "illumos": "illumos",
    "aix": "aix",
    "android": "android",
    "ios": "ios",
    "emscripten": "js",
    "wasi": "wasip1",
}

# ``platform.machine()`` (lowercased) -> Go's GOARCH.
_GO_ARCH: dict[str, str] = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "x64": "amd64",
    "i86pc": "amd64",
    "i386": "386",
    "i486": "386",
    "i586": "386",
    "i686": "386",
    "x86": "386",
    "aarch64": "arm64",
    "arm64": "arm64",
    "aarch64_be": "arm64be",
    "armv5l": "arm",
    "armv6l": "arm",
    "armv7l": "arm",
    "armv7": "arm",
    "armv8l": "arm",
    "arm": "arm",
    "ppc64le": "ppc64le",
    "ppc64": "ppc64",
    "ppc": "ppc",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips": "mips",
    "mipsel": "mipsle",
    "mips64": "mips64",
    "mips64el": "mips64le",
    "loongarch64": "loong64",
    "sparc64": "sparc64",
    "wasm32": "wasm",
}


def default_worker_name(hostname: str) -> str:
    """Return the default worker name: the hostname without one ``.lan``, then one ``.local``.

    Both suffixes are case-sensitive and removed at most once each, in that order, so
    ``mac.local.lan`` becomes ``mac`` but ``mac.lan.local`` becomes ``mac.lan`` (spec §2.2).
    """
    return hostname.removesuffix(".lan").removesuffix(".local")


def go_os(sys_platform: str) -> str:
    """Return Go's GOOS for a ``sys.platform`` value; unknown ones lowercased, unversioned."""
    family = sys_platform.lower().rstrip("0123456789")
    return _GO_OS.get(family, family)


def go_arch(machine: str) -> str:
    """Return Go's GOARCH for a ``platform.machine()`` value; unknown ones are lowercased."""
    normalized = machine.lower()
    return _GO_ARCH.get(normalized, normalized)


def reserved_labels(
    name: str, version: str, hostname: str, os_name: str, arch: str
) -> dict[str, str]:
    """Return the reserved labels every ``WorkerInfo`` carries; ``hostname`` is the raw one."""
    return {"name": name, "version": version, "hostname": hostname, "os": os_name, "arch": arch}


def worker_labels(reserved: Mapping[str, str], configured: Mapping[str, str]) -> dict[str, str]:
    """Return the configured labels merged with the reserved ones, the reserved ones winning.

    The original merged user labels on top, so a user label could override ``name``, ``os``…
    (spec §1.7, §12.11). PROTOCOL.md says ``WorkerInfo.labels`` always holds the reserved
    values, so a configured label with a reserved key is dropped here.
    """
    merged = dict(reserved)
    for key, value in configured.items():
        if key not in reserved:
            merged[key] = value
    return merged
