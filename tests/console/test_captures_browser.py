"""The captures page in a real browser (headless Chromium through selenium) against a
real `argonfs serve` and a real capture process: written to, the source's new events
show in the page's counters without a reload, and a capture started meanwhile gets a
row of its own.  With ARGONFS_SCREENSHOTS=1 the page is saved as
docs/console-captures.png (the picture docs/console.md shows)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.capture.conftest import Source, source, source_server, spawn  # noqa: F401  (fixtures)
from tests.console.helpers import API
from tests.console.test_browser import browser  # noqa: F401  (the headless Chromium fixture)

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "console-captures.png"
WAIT = 30.0


def wait_following(served: object, branches: set[str]) -> None:
    end = time.monotonic() + WAIT
    while time.monotonic() < end:
        rows = served.json(f"{API}/captures")  # type: ignore[attr-defined]
        if {r["branch"] for r in rows if r["state"] == "following"} >= branches:
            return
        time.sleep(0.1)
    raise AssertionError(f"captures of {branches} did not start following within {WAIT} s")


def cell(driver: webdriver.Chrome, branch: str, name: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, f'#captures tr[data-branch="{branch}"] td.{name}').text)


@pytest.mark.deadline(90)
def test_the_captures_page_follows_the_source_without_reloading(
    serve,
    repo,
    repo_name: str,
    mongo_uri: str,
    source: Source,  # noqa: F811
    spawn: Callable[..., subprocess.Popen],  # noqa: F811
    browser: webdriver.Chrome,  # noqa: F811
) -> None:
    source.db.orders.insert_many([{"_id": i, "total": i * 10} for i in range(20)])
    spawn("capture", source.uri, "--branch", "orders-live")
    s = serve("--mongo", mongo_uri, "--repo", repo_name)
    wait_following(s, {"orders-live"})

    browser.get(s.url + "/captures")
    assert cell(browser, "orders-live", "state") == "following" and cell(browser, "orders-live", "source") == source.uri
    browser.execute_script("window.notReloaded = true")
    wait = WebDriverWait(browser, WAIT, poll_frequency=0.1)
    wait.until(lambda d: d.find_element(By.ID, "live").text.startswith("Live: updated"))  # the stream is open
    events, slot = int(cell(browser, "orders-live", "events")), cell(browser, "orders-live", "slot")

    for i in range(20, 30):
        source.db.orders.insert_one({"_id": i, "total": i * 10})
    source.db.orders.update_many({"_id": {"$lt": 5}}, {"$inc": {"total": 1}})
    wait.until(lambda d: int(cell(d, "orders-live", "events")) >= events + 15)
    assert cell(browser, "orders-live", "slot") != slot
    assert re.fullmatch(r"\d+\.\d\d s", cell(browser, "orders-live", "lag_s"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", cell(browser, "orders-live", "event_time"))

    # a capture started while the page is open gets its row, still without a reload
    source.db.users.insert_one({"_id": "ada"})
    spawn("capture", source.uri, "-c", "users", "--branch", "users-live")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#captures tr[data-branch="users-live"] td.state') and cell(d, "users-live", "state") == "following")
    assert browser.execute_script("return window.notReloaded") is True
    assert browser.find_element(By.CSS_SELECTOR, '#captures tr[data-branch="users-live"] a.branch').get_attribute("href").endswith("/refs/users-live")

    if os.environ.get("ARGONFS_SCREENSHOTS") == "1":
        browser.set_window_size(1600, 520)
        browser.save_screenshot(str(SCREENSHOT))
