"""The console in a real browser: headless Chromium against a real gunicorn relay and the sandbox.

Skips when Chromium or its driver is missing, unless RELAY_REQUIRE_BROWSER=1 (CI), where a
missing browser fails. Every page visited leaves a screenshot in var/test-output/screenshots/.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from relay.store import open_store
from relay.store.report import reconcile
from tests.support.procs import ROOT
from tests.support.stack import SHIPPED_SECRETS, STACK_ADMIN_TOKEN, Stack, wait_until

SCREENSHOTS = ROOT / "var" / "test-output" / "screenshots"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1000")
JSON_KEY = {"X-Api-Key": SHIPPED_SECRETS["GENERIC_JSON_API_KEY"]}


def browser_binaries() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    binaries = browser_binaries()
    if binaries is None:
        message = "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("RELAY_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binaries[0]
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-', dir=tmp_path)}")
    driver = webdriver.Chrome(service=Service(binaries[1]), options=options)
    driver.set_page_load_timeout(60)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    running = Stack(tmp_path, workers=1, env_overrides={
        "RELAY_RETRY_DELAYS": "0.2", "RELAY_RETRY_JITTER": "0", "RELAY_BREAKER_FAILURES": "0"}).start()
    try:
        yield running
    finally:
        running.stop()


def post(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(f"{stack.url}/hooks/generic-json", json=body, headers=JSON_KEY, timeout=30)
    assert response.status_code in (200, 202, 422), response.text
    return dict(response.json())


def status_of(stack: Stack, lead_id: str) -> str | None:
    store = open_store(stack.database_url)
    try:
        lead = store.get(lead_id)
        return None if lead is None else lead.status
    finally:
        store.close()


def follow(driver: Any, element: Any) -> None:
    """Click a link or a submit button and wait until the next page has replaced this one."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def replaced(_: Any) -> bool:
        try:
            page.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            # Mid-navigation, ChromeDriver may report the old node as foreign rather than stale.
            if "does not belong to the document" in str(exc) or "No node with given id" in str(exc):
                return True
            raise
        return False

    WebDriverWait(driver, 60).until(replaced)


def shot(driver: Any, name: str) -> None:
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_an_operator_works_the_console_in_a_browser(stack: Stack, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    # Leads: one delivered, one dead (Trackdrive failing), one refused, one repeat.
    delivered = post(stack, {"lead_id": "L-1", "phone": "(512) 555-0147", "email": "Dana@Example.com",
                             "note": "<script>alert(1)</script>"})["lead_id"]
    assert wait_until(lambda: status_of(stack, delivered) == "delivered"), stack.logs()
    stack.set_behaviour(fail_rate=1.0)
    dead = post(stack, {"lead_id": "L-2", "phone": "512-555-0199"})["lead_id"]
    assert wait_until(lambda: status_of(stack, dead) == "dead"), stack.logs()
    stack.set_behaviour(fail_rate=0.0)
    post(stack, {"lead_id": "L-3", "phone": "555-0100"})  # refused: not a valid number
    assert post(stack, {"lead_id": "L-1", "phone": "(512) 555-0147"})["lead_id"] == delivered  # duplicate

    # Log in.
    browser.get(f"{stack.url}/admin/")
    assert "/admin/login" in browser.current_url
    shot(browser, "01-login")
    browser.find_element(By.ID, "token").send_keys(STACK_ADMIN_TOKEN)
    browser.find_element(By.ID, "name").send_keys("dana")
    follow(browser, browser.find_element(By.ID, "login"))

    # Overview: the source's row with its counts and its state in words.
    row = browser.find_element(By.ID, "source-generic-json")
    assert "Problem" in row.text and "1 dead" in row.text
    shot(browser, "02-overview")

    # Find the delivered lead by its phone, spelled another way; it is shown masked.
    browser.get(f"{stack.url}/admin/leads")
    browser.find_element(By.ID, "q").send_keys("+1 512 555 0147")
    follow(browser, browser.find_element(By.ID, "search"))
    links = browser.find_elements(By.CLASS_NAME, "lead-link")
    assert [link.text for link in links] == [delivered]
    assert "5125550147" not in browser.page_source and "***47" in browser.page_source
    shot(browser, "03-leads-search")
    follow(browser, links[0])
    assert browser.find_element(By.ID, "lead-status").text == "delivered"
    assert "<script>alert(1)</script>" in browser.find_element(By.ID, "body").text  # shown as text
    assert browser.find_elements(By.TAG_NAME, "script") == []  # the vendor's value is text, never markup
    assert "delivered" in browser.find_element(By.ID, "attempts").text
    shot(browser, "04-lead-detail")

    # Replay the dead lead through the current mapping; it is delivered.
    browser.get(f"{stack.url}/admin/leads/{dead}")
    follow(browser, browser.find_element(By.ID, "replay-link"))
    assert "1" in browser.find_element(By.ID, "touch-count").text
    shot(browser, "05-confirm-replay")
    follow(browser, browser.find_element(By.ID, "confirm"))
    assert "1 lead(s) changed" in browser.find_element(By.ID, "done-count").text
    assert wait_until(lambda: status_of(stack, dead) == "delivered"), stack.logs()
    follow(browser, browser.find_element(By.ID, "back-to-lead"))
    assert browser.find_element(By.ID, "lead-status").text == "delivered"
    shot(browser, "06-replayed-lead")

    # Reconciliation: the CSV the page links to has the store's numbers.
    browser.get(f"{stack.url}/admin/reconciliation?tz=America/Chicago")
    shot(browser, "07-reconciliation")
    href = browser.find_element(By.ID, "csv").get_attribute("href")
    cookies = {cookie["name"]: cookie["value"] for cookie in browser.get_cookies()}
    answer = requests.get(href, cookies=cookies, timeout=30)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/csv")
    total = list(csv.DictReader(io.StringIO(answer.text)))[-1]
    store = open_store(stack.database_url)
    try:
        expected = reconcile(store.daily_counts("America/Chicago"))[-1].values
    finally:
        store.close()
    assert {key: int(total[key]) for key in expected} == expected
    assert (expected["received"], expected["duplicates"], expected["refused"], expected["delivered"]) == (4, 1, 1, 2)
    # ... and the metrics: each request carried one lead, so its outcomes add up to received.
    metrics = requests.get(f"{stack.url}/metrics", headers=stack.admin_headers, timeout=30).text
    answered = sum(sample.value for family in text_string_to_metric_families(metrics)
                   if family.name == "relay_requests" for sample in family.samples
                   if sample.name == "relay_requests_total" and sample.labels["source"] == "generic-json"
                   and sample.labels["outcome"] in ("queued", "fetching", "rejected", "dropped", "duplicate"))
    assert answered == expected["received"]

    # The playground maps a pasted body: a call, nothing stored.
    browser.get(f"{stack.url}/admin/playground")
    Select(browser.find_element(By.ID, "pg-source")).select_by_visible_text("generic-json")
    browser.find_element(By.ID, "pg-body").send_keys(json.dumps({"phone": "(512) 555-0123", "first_name": "ana"}))
    follow(browser, browser.find_element(By.ID, "pg-run"))
    assert browser.find_element(By.ID, "pg-kind").text == "call"
    assert "create_lead" in browser.find_element(By.ID, "pg-result").text
    shot(browser, "08-playground")

    # An action posted without its CSRF token is refused, and changes nothing.
    browser.get(f"{stack.url}/admin/actions/purge?id={delivered}")
    browser.execute_script("document.querySelector('#confirm-form input[name=csrf_token]').remove()")
    follow(browser, browser.find_element(By.ID, "confirm"))
    assert "CSRF" in browser.find_element(By.ID, "error-message").text
    shot(browser, "09-csrf-refused")
    assert status_of(stack, delivered) == "delivered"

    # The audit log shows the replay.
    browser.get(f"{stack.url}/admin/audit")
    assert "replay" in browser.find_element(By.ID, "audit").text
    shot(browser, "10-audit")
