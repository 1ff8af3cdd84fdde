"""Headless Debian Chromium through Selenium for the web interface's tests: starting it,
logging in, the axe-core accessibility check and screenshots."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
AXE = Path(__file__).with_name("axe.min.js")
SCREENSHOT_DIR_VARIABLE = "CIRRUS_SCREENSHOT_DIR"
DESKTOP = (1100, 760)
PHONE = (390, 760)
SERIOUS = ("serious", "critical")

T = TypeVar("T")


def new_browser(download_dir: Path) -> webdriver.Chrome:
    """Start headless Chromium (install it with scripts/setup-chromium.sh)."""
    for program in (CHROMIUM, CHROMEDRIVER):
        if not os.access(program, os.X_OK):
            raise AssertionError(f"{program} is missing: run scripts/setup-chromium.sh as root")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        options.add_argument(argument)
    prefs = {"download.default_directory": str(download_dir), "download.prompt_for_download": False}
    options.add_experimental_option("prefs", prefs)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


def eventually(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
        except WebDriverException as error:  # a page in flux: retry until the deadline
            last, result = error, None
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last})")


def log_in(driver: webdriver.Chrome, url: str, token: str) -> None:
    """Log in through the login form and wait for the builds list."""
    driver.get(url + "/login")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    eventually(lambda: driver.find_elements(By.CSS_SELECTOR, "form[action='/logout']"), 10, "login")


def serious_violations(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """Run axe-core on the current page; return its serious and critical violations."""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then(r => done({violations: r.violations}),"
        " e => done({error: String(e)}));"
    )
    assert "error" not in result, result
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["html"][:200] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in SERIOUS
    ]


def save_screenshot(driver: webdriver.Chrome, name: str, directory: Path) -> Path:
    """Save a PNG of the page into ``directory`` and, when set, ``$CIRRUS_SCREENSHOT_DIR``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    png = driver.get_screenshot_as_png()
    path.write_bytes(png)
    extra = os.environ.get(SCREENSHOT_DIR_VARIABLE)
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        (Path(extra) / f"{name}.png").write_bytes(png)
    return path
