"""``additional_containers:`` of a ``container:`` task become the isolation's service containers."""

from __future__ import annotations

import pytest

from adapters.cirrus_config.parse_build import parse_build
from adapters.twirp.isolation_mapping import decode_isolation, encode_isolation
from domain.cirrus_config.nodes import CirrusConfigError
from domain.isolation import (
    AdditionalContainer,
    ContainerIsolation,
    Isolation,
    NoneIsolation,
    PortMapping,
)


def isolation_of(config: str, **environment: str) -> Isolation:
    (task,) = parse_build(config, environment).tasks
    return task.isolation


def sidecars(config: str, **environment: str) -> tuple[AdditionalContainer, ...]:
    isolation = isolation_of(config, **environment)
    assert isinstance(isolation, ContainerIsolation)
    return isolation.additional_containers


def test_a_mysql_service_gets_cirrus_default_cpu_and_memory_and_its_port() -> None:
    config = """
test_task:
  container:
    image: golang:latest
    additional_containers:
      - name: mysql
        image: mysql:8
        port: 3306
        env:
          MYSQL_ROOT_PASSWORD: ""
  test_script: go test
"""
    assert sidecars(config) == (
        AdditionalContainer(
            name="mysql",
            image="mysql:8",
            cpu=0.5,
            memory=512,
            container_port=3306,
            ports=(PortMapping(container_port=3306),),
            environment=(("MYSQL_ROOT_PASSWORD", ""),),
        ),
    )


def test_every_field_is_read_and_expanded_with_the_task_environment() -> None:
    config = """
env:
  PG: "16"
test_task:
  container:
    image: alpine
    additional_containers:
      - name: db-$PG
        image: postgres:$PG
        port: 15432:5432
        cpu: 2
        memory: 1G
        environment:
          POSTGRES_PASSWORD: secret-$PG
        command: postgres -c 'fsync=off'
        readiness_command: [pg_isready, -U, postgres]
  test_script: true
"""
    (service,) = sidecars(config)
    assert service == AdditionalContainer(
        name="db-16",
        image="postgres:16",
        cpu=2.0,
        memory=1024,
        container_port=5432,
        host_port=15432,
        ports=(PortMapping(container_port=5432, host_port=15432),),
        environment=(("POSTGRES_PASSWORD", "secret-16"),),
        command=("postgres", "-c", "fsync=off"),
        readiness_command=("pg_isready", "-U", "postgres"),
    )


def test_several_ports_and_an_unnamed_service_get_a_name_by_position() -> None:
    config = """
t_task:
  container:
    image: alpine
    additional_containers:
      - image: redis
        ports: [6379, "16380:6380"]
  script: true
"""
    (service,) = sidecars(config)
    assert service.name == "additional-container-1"
    assert service.ports == (PortMapping(6379), PortMapping(6380, 16380))


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("- name: db", 'required field "image" was not set'),
        ("- {image: redis, port: http}", "port 'http' is neither a port"),
        ("- {image: redis, port: 70000}", "port '70000' is neither a port"),
        ('- {image: redis, command: "sh -c \'x"}', "command: No closing quotation"),
        ("- {image: a, name: x}\n      - {image: b, name: x}", "'x' is used more than once"),
    ],
)
def test_a_malformed_service_is_refused_with_its_position(item: str, message: str) -> None:
    config = f"t_task:\n  container:\n    image: alpine\n    additional_containers:\n      {item}\n"
    with pytest.raises(CirrusConfigError) as refused:
        parse_build(config + "  script: true\n")
    assert message in str(refused.value)
    assert "line 5" in str(refused.value)


def test_an_instance_without_a_container_drops_its_services() -> None:
    config = """
t_task:
  freebsd_instance:
    image_family: freebsd-14-0
    additional_containers:
      - image: redis
  script: true
"""
    assert isolation_of(config) == NoneIsolation()


def test_the_services_travel_in_the_container_isolation_as_additional_containers() -> None:
    isolation = ContainerIsolation(
        image="alpine",
        additional_containers=(
            AdditionalContainer(
                name="db",
                image="postgres",
                cpu=0.5,
                memory=512,
                container_port=5432,
                ports=(PortMapping(5432, 15432),),
                environment=(("A", "1"),),
                command=("postgres",),
                readiness_command=("pg_isready",),
                privileged=True,
            ),
        ),
    )
    wire = encode_isolation(isolation)
    assert wire["container"]["additionalContainers"][0]["readinessCommand"] == ["pg_isready"]  # type: ignore[index]
    assert decode_isolation(wire) == isolation
