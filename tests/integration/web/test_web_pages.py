"""The web interface in headless Chromium against a real controller and a real worker: login,
the pages, a live log tail, cancel, CSRF, the public mode, badges and the axe-core check."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.integration.web.browser import (
    PHONE,
    eventually,
    log_in,
    save_screenshot,
    serious_violations,
)
from tests.integration.web.conftest import WebStack

pytestmark = pytest.mark.integration

SOURCE = {
    "repository": "acme/rocket",
    "branch": "main",
    "commit": "4f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39",
    "changeTitle": "Launch sequence: count down from ten",
    "changeMessage": "Launch sequence: count down from ten\n\nThe old one started at five.",
    "changeAuthor": "Ada",
}


def barrier_config(barrier: Path) -> str:
    """A build whose ``test`` task prints, waits for ``barrier`` to exist, then prints again."""
    return f"""\
lint_task:
  script: printf '\\033[32mlint ok\\033[0m\\n'
test_task:
  script:
    - printf 'first line\\n'
    - while [ ! -e {barrier} ]; do sleep 0.05; done
    - printf '\\033[31msecond line\\033[0m\\n'
package_task:
  depends_on: [lint, test]
  script: echo packaged
"""


def task_id(build: dict[str, object], name: str) -> str:
    """The id of the task called ``name`` in a build's JSON."""
    tasks = build["tasks"]
    assert isinstance(tasks, list)
    return next(str(t["id"]) for t in tasks if t["name"] == name)


def text_of(driver: webdriver.Chrome, selector: str) -> str:
    """The text of the first element matching a CSS selector ("" if none)."""
    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0].text if found else ""


def assert_accessible(driver: webdriver.Chrome) -> None:
    """Fail with axe-core's serious and critical violations of the current page."""
    assert serious_violations(driver) == [], driver.current_url


def test_a_logged_in_user_sees_a_log_line_appear_live_while_the_task_runs(
    stack: WebStack, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    shots = tmp_path / "screenshots"
    barrier = tmp_path / "barrier"
    build = stack.submit(barrier_config(barrier), SOURCE)
    test = task_id(build, "test")
    browser.get(stack.url + "/")
    assert "/login" in browser.current_url  # no session: the login form first
    save_screenshot(browser, "login", shots)
    assert_accessible(browser)
    log_in(browser, stack.url, stack.admin_token)

    browser.get(stack.url + "/")
    link = eventually(
        lambda: browser.find_elements(By.LINK_TEXT, f"#{build['id']}"), 10, "the build listed"
    )
    assert "acme/rocket" in browser.page_source
    save_screenshot(browser, "builds", shots)
    assert_accessible(browser)
    link[0].click()

    eventually(lambda: "first line" in stack_log(stack, test), 60, "the task to print")
    assert browser.find_element(By.ID, "build-status").text == "EXECUTING"
    save_screenshot(browser, "build", shots)
    assert_accessible(browser)
    browser.set_window_size(*PHONE)
    save_screenshot(browser, "build-phone", shots)
    browser.set_window_size(1100, 760)

    browser.find_element(By.LINK_TEXT, "test").click()
    eventually(lambda: "first line" in text_of(browser, "pre[data-command='main']"), 10, "log")
    browser.execute_script("window.notReloaded = true;")
    barrier.touch()
    eventually(
        lambda: "second line" in text_of(browser, "pre[data-command='main']"),
        15,
        "the second line to appear without a reload",
    )
    assert browser.execute_script("return window.notReloaded === true;")
    eventually(
        lambda: browser.find_element(By.ID, "task-status").text == "COMPLETED",
        30,
        "the status to change live",
    )
    coloured = browser.find_element(By.CSS_SELECTOR, "pre[data-command='main'] span[style]")
    assert "second line" in coloured.text  # the ANSI red became a styled span
    browser.execute_script(
        "arguments[0].scrollIntoView();", coloured.find_element(By.XPATH, "../..")
    )
    save_screenshot(browser, "task", shots)
    assert_accessible(browser)


def stack_log(stack: WebStack, task: str) -> str:
    """A command's log through the JSON API (what the worker uploaded so far)."""
    response = httpx.get(
        f"{stack.url}/api/v1/tasks/{task}/logs/main",
        headers={"Authorization": f"Bearer {stack.admin_token}"},
        timeout=30,
    )
    return response.text if response.status_code == 200 else ""


def test_cancel_on_the_task_page_ends_the_running_task_aborted(
    stack: WebStack, browser: webdriver.Chrome
) -> None:
    build = stack.submit("slow_task:\n  script: echo started; sleep 120\n")
    slow = task_id(build, "slow")
    eventually(lambda: "started" in stack_log(stack, slow), 60, "the task to start")
    log_in(browser, stack.url, stack.admin_token)
    browser.get(f"{stack.url}/tasks/{slow}")
    browser.find_element(By.XPATH, "//button[text()='Cancel task']").click()
    eventually(lambda: stack.task(slow)["status"] == "ABORTED", 60, "the task to be aborted")
    eventually(lambda: browser.find_element(By.ID, "task-status").text == "ABORTED", 15, "the page")


def test_a_forged_post_without_the_csrf_token_is_refused(
    stack: WebStack, browser: webdriver.Chrome
) -> None:
    build = stack.submit(
        "waiting_task:\n  persistent_worker:\n    labels:\n      nobody: has-this\n  script: true\n"
    )
    waiting = task_id(build, "waiting")
    log_in(browser, stack.url, stack.admin_token)
    browser.get(f"{stack.url}/tasks/{waiting}")
    forged = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {method: 'POST', credentials: 'same-origin',"
        " headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'csrf=guess'})"
        ".then(r => done(r.status));",
        f"/tasks/{waiting}/cancel",
    )
    assert forged == 403
    assert stack.task(waiting)["status"] == "SCHEDULED"
    # The same session's form (with its token) is accepted.
    browser.find_element(By.XPATH, "//button[text()='Cancel task']").click()
    eventually(lambda: stack.task(waiting)["status"] == "ABORTED", 15, "the real cancel")


def test_the_queue_and_workers_pages_show_reasons_and_pause_a_worker(
    stack: WebStack, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    build = stack.submit(
        "gpu_task:\n  persistent_worker:\n    labels:\n      gpu: a100\n  script: true\n"
    )
    log_in(browser, stack.url, stack.admin_token)
    browser.get(stack.url + "/queue")
    assert "no worker with labels gpu=a100" in browser.page_source
    save_screenshot(browser, "queue", tmp_path / "screenshots")
    assert_accessible(browser)
    browser.get(stack.url + "/workers")
    assert stack.worker_name in browser.page_source
    browser.find_element(By.XPATH, f"//button[text()='Pause {stack.worker_name}']").click()
    eventually(lambda: "paused" in text_of(browser, "table.list tbody"), 10, "the pause")
    save_screenshot(browser, "workers", tmp_path / "screenshots")
    assert_accessible(browser)
    browser.find_element(By.XPATH, f"//button[text()='Resume {stack.worker_name}']").click()
    eventually(lambda: "paused" not in text_of(browser, "table.list tbody"), 10, "the resume")
    httpx.post(
        f"{stack.url}/api/v1/tasks/{task_id(build, 'gpu')}/cancel",
        headers={"Authorization": f"Bearer {stack.admin_token}"},
        timeout=30,
    )


def test_a_wrong_token_is_refused_at_login(stack: WebStack, browser: webdriver.Chrome) -> None:
    browser.get(stack.url + "/login")
    browser.find_element(By.ID, "token").send_keys("not-the-token")
    browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    assert "Wrong token." in eventually(lambda: text_of(browser, "p.error"), 10, "the error")
    browser.get(stack.url + "/workers")
    assert "/login" in browser.current_url


def test_the_public_mode_shows_builds_and_logs_without_login_and_no_buttons(
    public_stack: WebStack, browser: webdriver.Chrome
) -> None:
    build = public_stack.submit("hello_task:\n  script: echo hello public\n", SOURCE)
    hello = task_id(build, "hello")
    eventually(lambda: public_stack.task(hello)["status"] == "COMPLETED", 60, "the build")
    browser.get(public_stack.url + "/")
    assert "/login" not in browser.current_url
    browser.find_element(By.LINK_TEXT, f"#{build['id']}").click()
    browser.find_element(By.LINK_TEXT, "hello").click()
    assert "hello public" in text_of(browser, "pre[data-command='main']")
    assert not browser.find_elements(By.CSS_SELECTOR, "form[action$='/cancel']")
    refused = httpx.post(f"{public_stack.url}/tasks/{hello}/cancel", data={"csrf": ""}, timeout=30)
    assert refused.status_code == 403


def test_the_badge_shows_the_latest_builds_status_and_is_not_cached(
    public_stack: WebStack,
) -> None:
    source = {**SOURCE, "repository": "acme/badge", "branch": "release/1.x"}
    build = public_stack.submit("ok_task:\n  script: true\n", source)
    ok = task_id(build, "ok")
    eventually(lambda: public_stack.task(ok)["status"] == "COMPLETED", 60, "the build")
    response = httpx.get(f"{public_stack.url}/badge/acme/badge/release/1.x.svg", timeout=30)
    assert response.headers["content-type"] == "image/svg+xml"
    assert "no-store" in response.headers["cache-control"]
    assert "passing" in response.text
    unknown = httpx.get(f"{public_stack.url}/badge/acme/badge/other.svg", timeout=30)
    assert "unknown" in unknown.text


def test_cancel_build_on_the_build_page_aborts_every_unfinished_task(
    stack: WebStack, browser: webdriver.Chrome
) -> None:
    build = stack.submit(
        "first_task:\n  persistent_worker:\n    labels:\n      nobody: has-this\n"
        "  script: true\nsecond_task:\n  depends_on: first\n  script: true\n"
    )
    log_in(browser, stack.url, stack.admin_token)
    browser.get(f"{stack.url}/builds/{build['id']}")
    browser.find_element(By.XPATH, "//button[text()='Cancel build']").click()
    ended = {"ABORTED", "SKIPPED"}
    first, second = task_id(build, "first"), task_id(build, "second")
    eventually(lambda: stack.task(first)["status"] in ended, 15, "the first task to end")
    eventually(lambda: stack.task(second)["status"] in ended, 15, "the second task to end")
    assert stack.task(task_id(build, "first"))["status"] == "ABORTED"
