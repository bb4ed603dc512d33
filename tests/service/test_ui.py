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
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
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


@pytest.fixture(scope="module")
def signed_in_server(azurite):
    """The local server as in Azure with staff sign-in: the staff routes need App Service authentication's
    principal headers."""
    running = LocalServer(env={**os.environ, "STAFF_SIGN_IN_REQUIRED": "true"})
    yield running
    running.stop()


def test_staff_sign_in_guards_the_page_calls_and_names_the_caller(signed_in_server, page, azurite):
    page.goto(f"{signed_in_server.url}/api/ui")
    assert page.get_by_label("Function key").count() == 0  # staff sign in; nobody types a key
    page.get_by_label("Tweet").fill(TWEET)
    page.get_by_role("button", name="Predict").click()
    expect(page.get_by_role("alert")).to_contain_text("sign-in has expired")
    # What App Service authentication adds to each request once a member of staff has signed in.
    page.set_extra_http_headers(
        {"x-ms-client-principal-id": "5f1b-staff", "x-ms-client-principal-name": "agent@airparadis.example"}
    )
    with page.expect_request("**/api/staff/predict"):
        page.get_by_role("button", name="Predict").click()
    expect(page.locator("#label")).to_have_text("negative")
    page.get_by_role("button", name="Yes").click()
    expect(page.get_by_role("status")).to_have_text("Thank you: your feedback was recorded.")
    table = TableClient.from_connection_string(azurite, table_name="feedback")
    stored = [row for row in table.list_entities() if row["text"] == TWEET and row.get("caller")]
    assert [row["caller"] for row in stored] == ["agent@airparadis.example"]


def test_page_runs_under_its_content_security_policy(server, page):
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    response = page.goto(f"{server.url}/api/ui")
    policy = response.headers["content-security-policy"]
    assert "script-src 'sha256-" in policy and "'unsafe-inline'" not in policy
    assert response.headers["x-frame-options"] == "DENY"
    page.get_by_label("Tweet").fill("@JetBlue thank you so much, amazing crew!")
    page.get_by_role("button", name="Predict").click()
    expect(page.locator("#label")).to_have_text("positive")
    expect(page.get_by_role("progressbar")).to_have_count(3)
    assert violations == []
