"""How the worker names additional containers and sees their ports listen."""

from __future__ import annotations

from adapters.container.additional import container_name, listening_ports, wanted_ports
from domain.isolation import AdditionalContainer, PortMapping

# /proc/<pid>/net/tcp: 0x1E61 = 7777 listening (0A), 0x0016 = 22 established (01).
TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid
   0: 00000000:1E61 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0
   1: 0100007F:0016 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0
"""
TCP6 = """  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:0CEA 00000000000000000000000000000000:0000 0A
"""


def test_only_listening_sockets_of_tcp_and_tcp6_count() -> None:
    assert listening_ports([TCP, TCP6]) == {7777, 3306}


def test_the_declared_ports_are_the_container_ports_each_once() -> None:
    service = AdditionalContainer(
        image="redis", container_port=6379, ports=(PortMapping(6379), PortMapping(6380, 16380))
    )
    assert wanted_ports(service) == (6379, 6380)
    assert wanted_ports(AdditionalContainer(image="redis")) == ()


def test_a_service_name_becomes_a_safe_suffix_of_the_task_container_name() -> None:
    service = AdditionalContainer(name="my db/1", image="postgres")
    assert container_name("cirrus-task-7-ab", service) == "cirrus-task-7-ab-my_db_1"
