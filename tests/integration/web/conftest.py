"""Fixtures of the web interface's browser tests: a real controller with a real worker, and
headless Chromium."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver

from tests.integration.test_controller_cli import (
    START_TIMEOUT,
    Process,
    printed_token,
    start_controller,
    wait_for,
)
from tests.integration.web.browser import new_browser


@dataclass
class WebStack:
    """A controller (and its worker) that the browser talks to."""

    url: str
    admin_token: str
    worker_name: str
    directory: Path

    def submit(self, config: str, source: dict[str, Any] | None = None) -> dict[str, Any]:
        """Submit a build through the JSON API; return its JSON."""
        body: dict[str, Any] = {"config": config}
        if source is not None:
            body["source"] = source
        response = httpx.post(
            self.url + "/api/v1/builds",
            json=body,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        document: dict[str, Any] = response.json()
        return document

    def task(self, task_id: str) -> dict[str, Any]:
        """Return a task's JSON from the API."""
        response = httpx.get(
            f"{self.url}/api/v1/tasks/{task_id}",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document


def _start_stack(directory: Path, *controller_args: str) -> Iterator[WebStack]:
    controller, url = start_controller(directory, directory / "controller.db", *controller_args)
    output = controller.stdout()
    name = "web-" + uuid.uuid4().hex[:8]
    registration = printed_token(output, "registration token")
    worker = Process(
        directory,
        "worker",
        ["worker", "run", "--name", name, "--token", registration, "--rpc-endpoint", url],
    )
    try:
        wait_for(lambda: "registered with" in worker.stderr(), START_TIMEOUT, "a Register")
        yield WebStack(url, printed_token(output, "admin token"), name, directory)
    finally:
        worker_code = worker.terminate()
        controller_code = controller.terminate()
        assert (worker_code, controller_code) == (0, 0), worker.stderr() + controller.stderr()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    """A controller whose pages need a login, with one worker polling it."""
    yield from _start_stack(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def public_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    """A controller with ``web: {public: true}`` in its file, with one worker."""
    directory = tmp_path_factory.mktemp("web-public")
    config = directory / "controller.yml"
    config.write_text("web:\n  public: true\n")
    yield from _start_stack(directory, "-f", str(config))


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium (no cookies), quit after the test."""
    driver = new_browser(tmp_path / "downloads")
    try:
        yield driver
    finally:
        driver.quit()
