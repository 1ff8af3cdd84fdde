"""Re-runs and roles in headless Chromium against a real controller and a real worker: a failed
task re-run from its page runs again as a new attempt (and its dependant with it), and a viewer
token logs in, sees no buttons, and has its forged POSTs refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.integration.web.browser import eventually, log_in, save_screenshot
from tests.integration.web.conftest import WebStack
from tests.integration.web.test_web_pages import assert_accessible, task_id, text_of

pytestmark = pytest.mark.integration

WAITING = (
    "waiting_task:\n  persistent_worker:\n    labels:\n      nobody: has-this\n  script: true\n"
)


def flaky_config(marker: Path) -> str:
    """A build whose ``flaky`` task fails the first time it runs and passes afterwards, and
    whose ``after`` task depends on it."""
    return f"""\
flaky_task:
  script: if [ -e {marker} ]; then echo passed now; else touch {marker}; exit 3; fi
after_task:
  depends_on: flaky
  script: echo after
"""


def api(stack: WebStack, method: str, path: str, body: Any = None) -> httpx.Response:
    """Call the JSON API with the admin token."""
    return httpx.request(
        method,
        stack.url + path,
        json=body,
        headers={"Authorization": f"Bearer {stack.admin_token}"},
        timeout=30,
    )


def build_of(stack: WebStack, build_id: str) -> dict[str, Any]:
    """A build's JSON from the API."""
    response = api(stack, "GET", f"/api/v1/builds/{build_id}")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def forged_post(driver: webdriver.Chrome, path: str, csrf: str) -> int:
    """POST a form to ``path`` from the page's session with ``csrf``; return the status."""
    status: int = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {method: 'POST', credentials: 'same-origin',"
        " headers: {'Content-Type': 'application/x-www-form-urlencoded'},"
        " body: 'csrf=' + encodeURIComponent(arguments[1])}).then(r => done(r.status));",
        path,
        csrf,
    )
    return status


def test_a_failed_task_rerun_from_its_page_runs_again_as_a_new_attempt(
    stack: WebStack, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    shots = tmp_path / "screenshots"
    build = stack.submit(flaky_config(tmp_path / "marker"))
    flaky, after = task_id(build, "flaky"), task_id(build, "after")
    eventually(lambda: build_of(stack, build["id"])["status"] == "FAILED", 60, "the failure")
    assert stack.task(after)["status"] == "SKIPPED"
    log_in(browser, stack.url, stack.admin_token)
    browser.get(f"{stack.url}/tasks/{flaky}")
    assert browser.find_element(By.ID, "task-status").text == "FAILED"
    browser.find_element(By.XPATH, "//button[text()='Re-run task']").click()

    # The page of the new attempt: it runs, and completes, live.
    eventually(lambda: browser.current_url.rstrip("/") != f"{stack.url}/tasks/{flaky}", 10, "go")
    new = browser.current_url.rsplit("/", 1)[1]
    assert new != flaky
    eventually(
        lambda: browser.find_element(By.ID, "task-status").text == "COMPLETED",
        60,
        "the new attempt to complete",
    )
    browser.refresh()
    assert "Attempt" in browser.page_source
    assert "2 of 2" in text_of(browser, "dd.attempts")
    assert browser.find_elements(By.CSS_SELECTOR, f"dd.attempts a[href='/tasks/{flaky}']")
    assert "passed now" in text_of(browser, "pre[data-command='main']")
    save_screenshot(browser, "task-rerun", shots)
    assert_accessible(browser)

    # The old attempt stays as it ended; the dependant ran again after the new attempt.
    assert stack.task(flaky)["status"] == "FAILED"
    done = eventually(
        lambda: (b := build_of(stack, build["id"]))["status"] == "COMPLETED" and b,
        60,
        "the build to complete with the new attempts",
    )
    assert [(t["name"], t["attempt"]) for t in done["tasks"]] == [("flaky", 2), ("after", 2)]
    rerun_after = task_id(done, "after")
    assert stack.task(rerun_after)["rerunOf"] == after
    browser.get(f"{stack.url}/builds/{build['id']}")
    assert browser.find_element(By.ID, "build-status").text == "COMPLETED"
    earlier = browser.find_elements(By.CSS_SELECTOR, ".earlier-attempts a")
    assert sorted(link.get_attribute("href") or "" for link in earlier) == sorted(
        f"{stack.url}/tasks/{old}" for old in (flaky, after)
    )
    save_screenshot(browser, "build-rerun", shots)
    assert_accessible(browser)


def test_a_failed_build_is_rerun_from_its_page(
    stack: WebStack, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    build = stack.submit(flaky_config(tmp_path / "marker"))
    eventually(lambda: build_of(stack, build["id"])["status"] == "FAILED", 60, "the failure")
    log_in(browser, stack.url, stack.admin_token)
    browser.get(f"{stack.url}/builds/{build['id']}")
    browser.find_element(By.XPATH, "//button[text()='Re-run failed tasks']").click()
    eventually(
        lambda: build_of(stack, build["id"])["status"] == "COMPLETED", 60, "the re-run build"
    )


def test_a_viewer_sees_no_buttons_and_its_forged_posts_are_refused(
    stack: WebStack, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    made = api(stack, "POST", "/api/v1/tokens", {"role": "viewer", "name": "wall screen"})
    assert made.status_code == 201, made.text
    waiting = task_id(stack.submit(WAITING), "waiting")
    failed_build = stack.submit("broken_task:\n  script: exit 1\n")
    broken = task_id(failed_build, "broken")
    eventually(lambda: stack.task(broken)["status"] == "FAILED", 60, "the failure")

    log_in(browser, stack.url, made.json()["token"])
    browser.get(f"{stack.url}/tasks/{waiting}")
    assert browser.find_element(By.ID, "task-status").text == "SCHEDULED"
    assert not browser.find_elements(By.XPATH, "//button[text()='Cancel task']")
    save_screenshot(browser, "task-viewer", tmp_path / "screenshots")
    # The viewer's own session token, which a real form would carry: still refused.
    csrf = browser.find_element(By.CSS_SELECTOR, "form[action='/logout'] input[name=csrf]")
    token = csrf.get_attribute("value") or ""
    assert token
    assert forged_post(browser, f"/tasks/{waiting}/cancel", token) == 403
    assert stack.task(waiting)["status"] == "SCHEDULED"

    browser.get(f"{stack.url}/tasks/{broken}")
    assert not browser.find_elements(By.XPATH, "//button[text()='Re-run task']")
    assert forged_post(browser, f"/tasks/{broken}/rerun", token) == 403
    browser.get(f"{stack.url}/builds/{failed_build['id']}")
    assert not browser.find_elements(By.XPATH, "//button[text()='Re-run failed tasks']")
    assert forged_post(browser, f"/builds/{failed_build['id']}/rerun", token) == 403
    assert len(build_of(stack, failed_build["id"])["tasks"]) == 1
    assert stack.task(broken)["status"] == "FAILED"
    api(stack, "POST", f"/api/v1/tasks/{waiting}/cancel")
