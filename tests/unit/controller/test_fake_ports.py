"""Each in-memory fake has exactly the methods of its narrow store port, with the same
parameters; mypy checks the assignments below statically as well."""

from __future__ import annotations

import inspect
from typing import Protocol

import pytest

from domain.store import (
    BuildStore,
    ControllerStore,
    LogStore,
    SchedulingStore,
    SettingStore,
    TaskQueue,
    WorkerRegistry,
)
from tests.unit.controller.fake_store import (
    FakeLogStore,
    FakeSettingStore,
    FakeStore,
    FakeWorkerRegistry,
)
from tests.unit.controller.fake_tasks import FakeBuildStore, FakeTaskQueue

PAIRS: list[tuple[type, type]] = [
    (BuildStore, FakeBuildStore),
    (TaskQueue, FakeTaskQueue),
    (LogStore, FakeLogStore),
    (WorkerRegistry, FakeWorkerRegistry),
    (SettingStore, FakeSettingStore),
    (SchedulingStore, FakeStore),
]


def typed_fakes() -> tuple[
    BuildStore, TaskQueue, LogStore, WorkerRegistry, SettingStore, SchedulingStore
]:
    """Return one fake per port, typed as the port: mypy refuses a fake that does not fit."""
    return (
        FakeBuildStore(),
        FakeTaskQueue(),
        FakeLogStore(),
        FakeWorkerRegistry(),
        FakeSettingStore(),
        FakeStore(),
    )


def port_methods(port: type) -> set[str]:
    """Return the names of the methods a Protocol declares, its bases' included."""
    return {
        name
        for cls in port.__mro__
        if cls not in (object, Protocol) and Protocol in cls.__bases__
        for name, member in vars(cls).items()
        if not name.startswith("_") and callable(member)
    }


@pytest.mark.parametrize(("port", "fake"), PAIRS, ids=[port.__name__ for port, _ in PAIRS])
def test_a_fake_has_each_method_of_its_port_with_the_same_parameters(
    port: type, fake: type
) -> None:
    methods = port_methods(port)
    assert methods
    for name in sorted(methods):
        declared = inspect.signature(getattr(port, name)).parameters
        implemented = inspect.signature(getattr(fake, name)).parameters
        assert list(implemented) == list(declared), name
        for parameter in declared.values():
            assert implemented[parameter.name].kind == parameter.kind, (name, parameter.name)
            assert implemented[parameter.name].default == parameter.default, (name, parameter)


@pytest.mark.parametrize(("port", "fake"), PAIRS, ids=[port.__name__ for port, _ in PAIRS])
def test_a_fakes_public_methods_are_all_part_of_its_port(port: type, fake: type) -> None:
    public = {
        name
        for name, member in inspect.getmembers(fake, inspect.isfunction)
        if not name.startswith("_")
    }
    helpers = {"next_id", "new_secret", "update", "build_record", "occupying", "policy"}
    assert public - helpers <= port_methods(port) | port_methods(ControllerStore)


def test_the_narrow_ports_together_are_the_whole_store_but_snapshots_and_closing() -> None:
    narrow = set().union(*(port_methods(port) for port, _ in PAIRS))
    snapshots = {"put_snapshot", "get_snapshot", "iter_snapshot"}
    assert narrow == port_methods(ControllerStore) - snapshots - {"aclose"}
    assert len(typed_fakes()) == 6
