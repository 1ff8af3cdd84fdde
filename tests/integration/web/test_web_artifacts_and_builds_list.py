"""The task page's artifacts and test results, the builds list's "mine" filter and its live
statuses, in headless Chromium against a real controller and a real worker (host isolation).

The task makes an artifact file and runs a real ``pytest --junitxml`` (the test venv's Python,
passed through the task's ``env``) on a tiny generated test file with one failing test."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.integration.web.browser import eventually, log_in, save_screenshot, serious_violations
from tests.integration.web.conftest import WebStack

pytestmark = pytest.mark.integration

TASK_TIMEOUT = 120.0
TINY_TESTS = """\
def test_passes():
    assert True


def test_breaks():
    assert 1 == 2, "one is not two"
"""


def artifacts_config(tests: Path) -> str:
    """A task that writes an artifact, then runs pytest with a JUnit report (it fails)."""
    return f"""\
task:
  name: tested
  env:
    PYTHON: {sys.executable}
    TINY_TESTS: {tests}
  make_script:
    - mkdir -p out
    - echo artifact-bytes-123 > out/hello.txt
  out_artifacts:
    path: out/*.txt
    type: text/plain
  test_script:
    - cp "$TINY_TESTS" test_tiny.py
    - $PYTHON -m pytest -q -p no:cacheprovider -p no:randomly --junitxml=junit.xml test_tiny.py
  always:
    junit_artifacts:
      path: junit.xml
      format: junit
"""


def api(stack: WebStack, method: str, path: str, token: str, body: Any = None) -> httpx.Response:
    """Call the JSON API with ``token``."""
    return httpx.request(
        method,
        stack.url + path,
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def final_task(stack: WebStack, task_id: str) -> dict[str, Any]:
    """Wait until the task is final; return its JSON."""
    final = ("COMPLETED", "FAILED", "ABORTED", "SKIPPED")

    def ended() -> dict[str, Any] | None:
        task = stack.task(task_id)
        return task if task["status"] in final else None

    return eventually(ended, TASK_TIMEOUT, "a final task")


def session_client(stack: WebStack, driver: webdriver.Chrome) -> httpx.Client:
    """An HTTP client with the browser's session cookie."""
    cookie = driver.get_cookie("cirrus_session")
    assert cookie is not None
    return httpx.Client(base_url=stack.url, cookies={"cirrus_session": cookie["value"]})


def test_the_task_page_lists_artifacts_to_download_and_failing_tests_first(
    stack: WebStack, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    tests = tmp_path / "test_tiny.py"
    tests.write_text(TINY_TESTS)
    build = stack.submit(artifacts_config(tests))
    [task] = build["tasks"]
    done = final_task(stack, str(task["id"]))
    assert done["status"] == "FAILED", done
    log_in(browser, stack.url, stack.admin_token)
    browser.get(f"{stack.url}/tasks/{task['id']}")
    links = {
        a.text: a.get_attribute("href")
        for a in browser.find_elements(By.CSS_SELECTOR, "a.artifact")
    }
    assert set(links) == {"out/hello.txt", "junit.xml"}, links
    failures = browser.find_elements(By.CSS_SELECTOR, "ul.failures li")
    assert len(failures) == 1
    assert "test_tiny.test_breaks" in failures[0].text
    assert "one is not two" in failures[0].text
    assert (
        "1 passed, 1 failed, 0 skipped"
        in browser.find_element(By.CSS_SELECTOR, ".test-summary").text
    )
    # Failing tests come first: before the counts, the artifacts and the commands.
    order = browser.execute_script(
        "return [...document.querySelectorAll('ul.failures, .test-summary, section.artifacts,"
        " #log-1')].map(e => e.className || e.id);"
    )
    assert order == ["failures", "test-summary", "artifacts", "log-1"], order
    save_screenshot(browser, "task-artifacts-and-tests", tmp_path / "screenshots")
    assert serious_violations(browser) == []
    with session_client(stack, browser) as client:
        download = client.get(str(links["out/hello.txt"]))
        assert download.status_code == 200, download.text
        assert download.content == b"artifact-bytes-123\n"
        assert download.headers["content-disposition"] == 'attachment; filename="hello.txt"'
        missing = client.get(f"/tasks/{task['id']}/artifacts/out/none.txt")
        assert missing.status_code == 404
    stranger = httpx.get(str(links["out/hello.txt"]), timeout=30)
    assert (stranger.status_code, stranger.headers["location"].startswith("/login")) == (303, True)
    browser.get(f"{stack.url}/builds/{build['id']}")
    summary = browser.find_element(By.CSS_SELECTOR, f'[data-task="{task["id"]}"] .tests').text
    assert summary == "tests: 1 passed, 1 failed (test_tiny.test_breaks), 0 skipped"


def test_mine_lists_the_builds_of_the_logged_in_token_and_statuses_change_live(
    stack: WebStack, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    made = api(
        stack, "POST", "/api/v1/tokens", stack.admin_token, {"role": "operator", "name": "ana"}
    )
    assert made.status_code == 201, made.text
    operator = made.json()["token"]
    barrier = tmp_path / "barrier"
    config = f"task:\n  name: waits\n  script: while [ ! -e {barrier} ]; do sleep 0.05; done\n"
    theirs = stack.submit("task:\n  name: other\n  script: true\n")
    try:
        submitted = api(stack, "POST", "/api/v1/builds", operator, {"config": config})
        assert submitted.status_code == 201, submitted.text
        mine = submitted.json()
        log_in(browser, stack.url, operator)
        browser.get(stack.url + "/")
        browser.find_element(By.CSS_SELECTOR, "input[name=mine]").click()
        browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
        eventually(lambda: "mine=1" in browser.current_url, 10, "the filtered list")
        rows = browser.find_elements(By.CSS_SELECTOR, "tr[data-build]")
        assert [r.get_attribute("data-build") for r in rows] == [str(mine["id"])]
        assert rows[0].find_element(By.CSS_SELECTOR, ".submitter").text == "ana"
        browser.get(stack.url + "/")
        listed = {
            r.get_attribute("data-build")
            for r in browser.find_elements(By.CSS_SELECTOR, "tr[data-build]")
        }
        assert {str(mine["id"]), str(theirs["id"])} <= listed
        status = f'tr[data-build="{mine["id"]}"] .status'
        assert browser.find_element(By.CSS_SELECTOR, status).text in ("SCHEDULED", "EXECUTING")
        barrier.touch()  # the task ends now
        # No reload: the list's event stream changes the status.
        eventually(
            lambda: browser.find_element(By.CSS_SELECTOR, status).text == "COMPLETED",
            TASK_TIMEOUT,
            "the live status",
        )
        save_screenshot(browser, "builds-mine", tmp_path / "screenshots")
    finally:
        barrier.touch()  # however the test ends, the task ends
