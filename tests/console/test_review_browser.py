"""Reviewing in a real browser (headless Chromium against a real `argonfs serve`): log
in with the token, run a diff and see the changed fields, preview a merge with its
conflict side by side, choose a side, apply it, and find it in the filtered log.  With
ARGONFS_SCREENSHOTS=1 the pages are saved into docs/ (the pictures docs/console.md
shows)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.console.processes import ARGONFS, cli
from tests.console.test_browser import browser, put  # noqa: F401  (the headless Chromium fixture)

DOCS = Path(__file__).resolve().parents[2] / "docs"


def shot(driver, name: str, height: int = 700) -> None:
    if os.environ.get("ARGONFS_SCREENSHOTS") == "1":
        driver.set_window_size(1400, height)
        driver.save_screenshot(str(DOCS / f"console-{name}.png"))


@pytest.mark.deadline(240)
def test_diff_then_merge_with_a_conflict(serve, env, browser, mongo_uri: str, repo_name: str) -> None:  # noqa: F811
    base = ("--mongo", mongo_uri, "--repo", repo_name)
    cli(env, *base, "init")
    put(env, mongo_uri, repo_name, "main", {"_id": 1, "title": "Draft", "year": 2024, "tags": ["ml"]})
    put(env, mongo_uri, repo_name, "main", {"_id": 2, "title": "Other"})
    cli(env, *base, "branch", "create", "review")
    put(env, mongo_uri, repo_name, "review", {"_id": 1, "title": "Final", "year": 2024, "tags": ["ml", "nlp"]})
    put(env, mongo_uri, repo_name, "review", {"_id": 3, "title": "New"})
    put(env, mongo_uri, repo_name, "main", {"_id": 1, "title": "Edited on main", "year": 2024, "tags": ["ml"]})
    s = serve(*base)
    token = subprocess.run([ARGONFS, "serve", "token"], env=env, capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    browser.set_window_size(1400, 900)

    browser.get(s.url + "/refs/review")
    browser.find_element(By.ID, "compare").click()  # the changes since it forked
    rows = browser.find_elements(By.CSS_SELECTOR, "#diff > tbody > tr:not(.fields)")
    assert [(r.get_attribute("class"), r.find_element(By.CSS_SELECTOR, "a.document").text) for r in rows] == [("modified", "1.json"), ("added", "3.json")]
    fields = {f.find_element(By.CSS_SELECTOR, "td.path").text: f for f in browser.find_elements(By.CSS_SELECTOR, "tr.field")}
    assert set(fields) == {"title", "tags[1]"} or set(fields) == {"title", "tags"}
    assert fields["title"].find_element(By.CSS_SELECTOR, "td.old").text == '"Draft"'
    assert fields["title"].find_element(By.CSS_SELECTOR, "td.new").text == '"Final"'
    assert "rgb(255, 235, 233)" in fields["title"].find_element(By.CSS_SELECTOR, "td.old").value_of_css_property("background-color").replace(
        "rgba", "rgb"
    ).replace(", 1)", ")")
    shot(browser, "diff", 620)

    browser.back()
    browser.find_element(By.ID, "merge-into").click()
    assert browser.find_element(By.ID, "blocked").is_displayed()  # a conflict on title stops it
    conflict = browser.find_element(By.CSS_SELECTOR, "#conflicts tbody tr")
    sides = [conflict.find_element(By.CSS_SELECTOR, f"td.{side}").text for side in ("base", "ours", "theirs")]
    assert sides == ['"Draft"', '"Edited on main"', '"Final"']
    shot(browser, "merge", 620)

    Select(browser.find_element(By.NAME, "strategy")).select_by_value("theirs")
    browser.find_element(By.ID, "preview").click()
    browser.find_element(By.PARTIAL_LINK_TEXT, "Log in").click()  # not logged in yet: the page says so
    browser.find_element(By.NAME, "token").send_keys(token)
    browser.find_element(By.ID, "enter").click()
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "apply"))
    assert "strategy=theirs" in browser.current_url  # back on the preview
    browser.find_element(By.NAME, "message").send_keys("accept the review")
    browser.find_element(By.ID, "apply").click()
    merged = WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "merged") or d.find_elements(By.CSS_SELECTOR, "h2.error"))
    assert merged[0].text.startswith("Merged review into main at main@")

    browser.get(s.url + "/refs/main/log?id=1.json&collection=papers")
    ops = [r.find_elements(By.TAG_NAME, "td")[4].text for r in browser.find_elements(By.CSS_SELECTOR, "#log tbody tr")]
    assert ops[0] == "put (merge)" and len(ops) == 3
    shot(browser, "log", 520)
    out = subprocess.run([ARGONFS, *base, "cat", "main", "papers", "1"], env=env, capture_output=True, text=True, check=True, timeout=60).stdout
    assert '"Final"' in out and '"nlp"' in out
