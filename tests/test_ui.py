"""The prediction page in headless Chromium against the local server: type, predict, answer No, and find
the feedback stored in Azurite. Saves a screenshot."""

from __future__ import annotations

import os
import random
import shutil

import httpx
import pytest
from azure.data.tables import TableClient
from playwright.sync_api import expect, sync_playwright

from tests.conftest import ROOT, LocalServer

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = ROOT / ".artifacts" / "ui-feedback.png"
# Unique in the session's feedback table; the number is stripped by the text processing.
TWEET = f"@united lost my bag again, worst airline ever #{random.randrange(10**8)}"


@pytest.fixture(scope="module")
def server(azurite):
    running = LocalServer()
    yield running
    running.stop()


@pytest.fixture()
def page():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield browser.new_page()
        browser.close()


def test_predict_then_report_a_wrong_prediction(server, page, azurite):
    page.goto(f"{server.url}/api/ui")
    expect(page).to_have_title("Tweet Sentiment Prediction")
    page.get_by_label("Tweet").fill(TWEET)
    page.get_by_role("button", name="Predict").click()
    expect(page.locator("#label")).to_have_text("negative")
    expect(page.get_by_role("progressbar")).to_have_count(3)
    scores = httpx.post(f"{server.url}/api/predict", json={"text": TWEET}).json()["scores"]
    for label, score in scores.items():
        bar = page.get_by_role("progressbar", name=f"{label} confidence")
        expect(bar).to_have_attribute("aria-valuenow", str(round(score * 100)))

    page.get_by_role("button", name="No").click()
    page.get_by_label("What is the right sentiment?").select_option("neutral")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status")).to_have_text("Thank you: your feedback was recorded.")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    table = TableClient.from_connection_string(azurite, table_name="feedback")
    stored = [row for row in table.list_entities() if row["text"] == TWEET and row["expected_label"] == "neutral"]
    assert len(stored) == 1
    assert (stored[0]["predicted_label"], stored[0]["correct"]) == ("negative", False)


def test_keyboard_only_and_errors_are_announced(server, page):
    page.goto(f"{server.url}/api/ui")
    page.get_by_label("Tweet").focus()
    page.keyboard.type("   ")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the Predict button, reached by keyboard
    expect(page.get_by_role("alert")).to_contain_text("must not be empty")
    page.get_by_label("Tweet").fill("@JetBlue thank you so much, amazing crew!")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#label")).to_have_text("positive")
    expect(page.get_by_role("alert")).to_be_hidden()
    page.keyboard.press("Enter")  # focus moved to "Yes"
    expect(page.get_by_role("status")).to_have_text("Thank you: your feedback was recorded.")


def test_function_key_is_kept_in_the_session_and_sent(server, page):
    page.goto(f"{server.url}/api/ui")
    page.get_by_text("Function key (needed in Azure)").click()
    page.get_by_label("Function key").fill("secret-key")
    page.get_by_label("Function key").dispatch_event("change")
    with page.expect_request("**/api/predict") as request:
        page.get_by_label("Tweet").fill("@united on time today")
        page.get_by_role("button", name="Predict").click()
    assert request.value.headers["x-functions-key"] == "secret-key"
    page.reload()
    assert page.get_by_label("Function key").input_value() == "secret-key"


def test_page_runs_under_its_content_security_policy(server, page):
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    response = page.goto(f"{server.url}/api/ui")
    policy = response.headers["content-security-policy"]
    assert "script-src 'sha256-" in policy and "'unsafe-inline'" not in policy
    assert response.headers["x-frame-options"] == "DENY"
    page.get_by_label("Tweet").fill("@JetBlue thank you so much, amazing crew!")
    page.get_by_role("button", name="Predict").click()
    expect(page.locator("#label")).to_have_text("positive")
    expect(page.get_by_role("progressbar")).to_have_count(3)
    assert violations == []
