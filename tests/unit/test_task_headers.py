"""A task's call headers come from the controller client, or from the client it wraps."""

from __future__ import annotations

from domain.protocol import TaskRef
from domain.task_headers import call_headers


class NamingClient:
    def task_headers(self, task: TaskRef) -> dict[str, str]:
        return {"Authorization": f"Bearer for-{task.task_id}"}


class Wrapper:
    def __init__(self, inner: object) -> None:
        self.inner = inner


def test_a_wrapped_client_names_the_headers_of_its_inner_client() -> None:
    client = Wrapper(Wrapper(NamingClient()))

    assert call_headers(client, TaskRef("t1")) == {"Authorization": "Bearer for-t1"}


def test_a_chain_without_a_naming_client_gives_no_headers() -> None:
    assert call_headers(Wrapper(Wrapper(object())), TaskRef("t1")) == {}


def test_a_cycle_of_wrappers_ends_with_no_headers() -> None:
    looped = Wrapper(None)
    looped.inner = looped

    assert call_headers(looped, TaskRef("t1")) == {}
