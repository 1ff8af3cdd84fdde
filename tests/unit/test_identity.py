"""Worker identity: default name (§2.2), Go os/arch names and the reported labels (§1.7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.identity import (
    default_worker_name,
    go_arch,
    go_os,
    reserved_labels,
    worker_labels,
)

# The reserved keys of WorkerInfo.labels, in the order the worker reports them (spec §1.7).
RESERVED_LABEL_KEYS = ("name", "version", "hostname", "os", "arch")


@pytest.mark.parametrize(
    ("hostname", "name"),
    [
        ("mac.local", "mac"),
        ("mac.lan", "mac"),
        ("mac.local.lan", "mac"),
        ("mac.lan.local", "mac.lan"),
        ("MAC.LOCAL", "MAC.LOCAL"),
        ("mac.LAN", "mac.LAN"),
        ("build-01.example.com", "build-01.example.com"),
        ("mac.local.local", "mac.local"),
        ("mac.lan.lan", "mac.lan"),
        ("mac", "mac"),
        (".local", ""),
        ("", ""),
    ],
)
def test_the_default_name_strips_one_lan_then_one_local(hostname: str, name: str) -> None:
    assert default_worker_name(hostname) == name


def test_a_suffix_must_be_a_whole_dotted_label() -> None:
    assert default_worker_name("myplan") == "myplan"
    assert default_worker_name("nonlocal") == "nonlocal"


@given(st.text(alphabet="abc.LANOCnlo-", max_size=20))
def test_the_default_name_is_a_prefix_of_the_hostname(hostname: str) -> None:
    assert hostname.startswith(default_worker_name(hostname))


@pytest.mark.parametrize(
    ("sys_platform", "goos"),
    [
        ("linux", "linux"),
        ("darwin", "darwin"),
        ("win32", "windows"),
        ("cygwin", "windows"),
        ("freebsd14", "freebsd"),
        ("openbsd7", "openbsd"),
        ("netbsd10", "netbsd"),
        ("sunos5", "solaris"),
        ("aix", "aix"),
        ("android", "android"),
        ("emscripten", "js"),
        ("Haiku1", "haiku"),
    ],
)
def test_python_platforms_are_named_like_goos(sys_platform: str, goos: str) -> None:
    assert go_os(sys_platform) == goos


@pytest.mark.parametrize(
    ("machine", "goarch"),
    [
        ("x86_64", "amd64"),
        ("AMD64", "amd64"),
        ("amd64", "amd64"),
        ("aarch64", "arm64"),
        ("arm64", "arm64"),
        ("ARM64", "arm64"),
        ("i386", "386"),
        ("i686", "386"),
        ("x86", "386"),
        ("armv7l", "arm"),
        ("armv6l", "arm"),
        ("ppc64le", "ppc64le"),
        ("s390x", "s390x"),
        ("riscv64", "riscv64"),
        ("mips64el", "mips64le"),
        ("loongarch64", "loong64"),
        ("SomethingNew", "somethingnew"),
    ],
)
def test_machine_names_are_named_like_goarch(machine: str, goarch: str) -> None:
    assert go_arch(machine) == goarch


def test_the_reserved_labels_hold_exactly_the_five_reserved_keys() -> None:
    labels = reserved_labels("mac", "0.1.0-abc1234", "mac.local", "darwin", "arm64")
    assert labels == {
        "name": "mac",
        "version": "0.1.0-abc1234",
        "hostname": "mac.local",
        "os": "darwin",
        "arch": "arm64",
    }
    assert tuple(labels) == RESERVED_LABEL_KEYS


RESERVED = reserved_labels("mac", "0.1.0-abc1234", "mac.local", "darwin", "arm64")


def test_configured_labels_are_added_to_the_reserved_ones() -> None:
    assert worker_labels(RESERVED, {"gpu": "a100", "team": "ios"}) == {
        **RESERVED,
        "gpu": "a100",
        "team": "ios",
    }


def test_a_configured_label_cannot_override_a_reserved_one() -> None:
    # The original let user labels win (spec §12.11); PROTOCOL.md requires the reserved values.
    configured = {"name": "spoofed", "os": "windows", "arch": "386", "version": "9", "team": "x"}
    labels = worker_labels(RESERVED, configured)
    assert {k: labels[k] for k in RESERVED_LABEL_KEYS} == RESERVED
    assert labels["team"] == "x"


def test_merging_leaves_its_inputs_untouched() -> None:
    reserved, configured = dict(RESERVED), {"name": "x", "team": "y"}
    worker_labels(reserved, configured)
    assert reserved == RESERVED
    assert configured == {"name": "x", "team": "y"}


LABELS = st.dictionaries(
    st.one_of(st.sampled_from(RESERVED_LABEL_KEYS), st.text(max_size=8)), st.text(max_size=8)
)


@given(LABELS)
def test_merged_labels_keep_reserved_values_and_every_other_configured_label(
    configured: dict[str, str],
) -> None:
    labels = worker_labels(RESERVED, configured)
    assert set(labels) == set(RESERVED) | set(configured)
    for key, value in labels.items():
        assert value == (RESERVED[key] if key in RESERVED else configured[key])
