"""Task specs survive the JSON text a store keeps, for every isolation and instruction kind."""

from __future__ import annotations

import pytest

from adapters.storage.spec_json import (
    dumps_float_map,
    dumps_task_spec,
    loads_float_map,
    loads_str_list,
    loads_task_spec,
)
from domain.build import TaskSpec
from domain.isolation import (
    ContainerIsolation,
    Isolation,
    NoneIsolation,
    ParallelsIsolation,
    Platform,
    TartIsolation,
    TartVolume,
    VetuBridged,
    VetuHost,
    VetuIsolation,
)
from domain.protocol import (
    ArtifactsInstruction,
    BackgroundScriptInstruction,
    Command,
    ExecutionBehaviour,
    ExitInstruction,
    FileInstruction,
    ScriptInstruction,
)
from domain.store import StoreError

ISOLATIONS: list[Isolation] = [
    NoneIsolation(),
    ContainerIsolation(image="alpine", cpu=0.5, memory=512, docker_arguments=(("a", "b"),)),
    TartIsolation(
        image="ghcr.io/cirruslabs/macos",
        user="admin",
        password="admin",
        cpu=4,
        memory=8192,
        softnet=True,
        volumes=(TartVolume(name="src", source="/Volumes/SSD", target="/src", read_only=True),),
        disk_size=80,
        nested=True,
    ),
    VetuIsolation(image="debian", networking=VetuBridged("en0"), port=2222),
    VetuIsolation(image="debian", networking=VetuHost()),
    ParallelsIsolation(image="win", platform=Platform.WINDOWS),
]


@pytest.mark.parametrize("isolation", ISOLATIONS, ids=lambda isolation: isolation.kind)
def test_a_task_spec_reads_back_equal(isolation: Isolation) -> None:
    spec = TaskSpec(
        name="build",
        labels={"os": "linux"},
        isolation=isolation,
        resources={"tart-vms": 1, "gpu": 0.5},
        environment={"PATH": "/bin", "EMPTY": ""},
        timeout_seconds=7200,
        depends_on=("a", "b"),
        commands=(
            Command("main", ScriptInstruction(("echo ü", "exit 0"))),
            Command("bg", BackgroundScriptInstruction(("sleep 100",))),
            Command("f", FileInstruction("out.txt", from_contents="hi")),
            Command("g", FileInstruction("key", from_environment_variable="KEY")),
            Command("art", ArtifactsInstruction(paths=("*.log",)), ExecutionBehaviour.ALWAYS),
            Command("stop", ExitInstruction(), ExecutionBehaviour.ON_FAILURE),
        ),
    )
    assert loads_task_spec(dumps_task_spec(spec)) == spec


def test_equal_maps_give_equal_text_whatever_their_order() -> None:
    assert dumps_float_map({"a": 1, "b": 2}) == dumps_float_map({"b": 2.0, "a": 1.0})
    assert loads_float_map(dumps_float_map({"b": 2.0})) == {"b": 2.0}


@pytest.mark.parametrize(
    "text", ["not json", "[]", '{"name": "x"}', '{"name": "x", "timeoutSeconds": 1, "labels": []}']
)
def test_a_malformed_stored_spec_is_a_store_error(text: str) -> None:
    with pytest.raises(StoreError):
        loads_task_spec(text)


def test_a_stored_list_must_be_a_list() -> None:
    with pytest.raises(StoreError, match="array"):
        loads_str_list('{"a": 1}')
