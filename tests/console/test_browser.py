"""The console in a real browser: headless Chromium (Debian's chromium and
chromium-driver, installed by scripts/setup.sh) driven by selenium against a real
`argonfs serve` process, walking branches -> collections -> documents -> a document ->
an older version of it, by clicking links."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tests.console.processes import ARGONFS, cli

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def put(env: dict[str, str], mongo_uri: str, repo_name: str, ref: str, doc: dict) -> None:
    subprocess.run(
        [ARGONFS, "--mongo", mongo_uri, "--repo", repo_name, "put", ref, "papers", "-"], env=env, input=json.dumps(doc), text=True, check=True, timeout=120
    )


@pytest.mark.deadline(240)
def test_walk_to_a_document_and_its_first_version(serve, env, browser, mongo_uri: str, repo_name: str) -> None:
    cli(env, "--mongo", mongo_uri, "--repo", repo_name, "init")
    put(env, mongo_uri, repo_name, "main", {"_id": 7, "title": "draft"})
    cli(env, "--mongo", mongo_uri, "--repo", repo_name, "branch", "create", "experiment")
    put(env, mongo_uri, repo_name, "experiment", {"_id": 7, "title": "final <b>bold</b>"})
    s = serve("--mongo", mongo_uri, "--repo", repo_name)

    browser.get(s.url + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#branches tbody tr")
    assert [r.find_element(By.CSS_SELECTOR, "a.branch").text for r in rows] == ["experiment", "main"]
    assert "server-owner" in rows[0].text and "main@1" in rows[0].text  # who wrote last, where it forked

    browser.find_element(By.LINK_TEXT, "experiment").click()
    assert "(experiment@1)" in browser.find_element(By.CSS_SELECTOR, "nav.crumbs").text
    browser.find_element(By.LINK_TEXT, "papers").click()
    assert [a.text for a in browser.find_elements(By.CSS_SELECTOR, "a.document")] == ["7.json"]
    browser.find_element(By.LINK_TEXT, "7.json").click()
    shown = json.loads(browser.find_element(By.ID, "json").text)
    assert shown == {"_id": 7, "title": "final <b>bold</b>"}  # shown as text, not markup
    assert browser.find_elements(By.CSS_SELECTOR, "#json b") == []

    versions = browser.find_elements(By.CSS_SELECTOR, "a.version")
    assert [v.text for v in versions] == ["slot 1", "slot 1"]  # experiment's own, then main's
    rows = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[2].text for r in rows] == ["experiment", "main"]
    versions[1].click()
    assert json.loads(browser.find_element(By.ID, "json").text) == {"_id": 7, "title": "draft"}
    assert "/refs/main@1/" in browser.current_url

    browser.find_element(By.LINK_TEXT, "branches").click()
    assert browser.find_elements(By.CSS_SELECTOR, "#branches a.branch")
    browser.get(s.url + "/refs/nope")
    assert "404 not_found" in browser.find_element(By.TAG_NAME, "h2").text
