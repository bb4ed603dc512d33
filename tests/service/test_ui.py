"""The staff page in headless Chromium against the local server, in each of its states: one tweet and its
feedback stored in Azurite, several tweets with their own answers, warnings and buttons, an unsure answer, an
error that clears the previous answer, keyboard use, sign-in, its CSP. Saves a screenshot of each state."""

from __future__ import annotations

import os
import random
import re
from collections import Counter

import httpx
import pytest
from azure.data.tables import TableClient
from playwright.sync_api import expect

from tests.conftest import ROOT, SHIPPED_MANIFEST, LocalServer
from tweet_sentiment.manifest import Manifest

SCREENSHOTS = ROOT / ".artifacts"
# Unique in the session's feedback table; the number is stripped by the text processing.
TWEET = f"@united lost my bag again, worst airline ever #{random.randrange(10**8)}"
BOX = "Tweets, a blank line between two"


@pytest.fixture()
def page(browser):
    return browser.new_page()


def shot(page, name: str) -> None:
    """A screenshot of the state the test reached, for people to look at (.artifacts/)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def answers(page):
    return page.get_by_role("article")


def test_predict_then_report_a_wrong_prediction(server, page, azurite):
    page.goto(f"{server.url}/api/ui")
    expect(page).to_have_title("Tweet Sentiment Prediction")
    page.get_by_label(BOX).fill(TWEET)
    page.get_by_role("button", name="Check sentiment").click()
    expect(answers(page)).to_have_count(1)
    expect(page.locator(".sentiment")).to_have_text("negative")
    expect(page.locator(".reason")).to_have_text(re.compile(r"^lost luggage \(\d+%\)$"))  # what the complaint is about
    expect(page.get_by_role("progressbar")).to_have_count(3)
    scores = httpx.post(f"{server.url}/api/predict", json={"text": TWEET}).json()["scores"]
    for label, score in scores.items():
        bar = page.get_by_role("progressbar", name=f"{label} confidence")
        expect(bar).to_have_attribute("aria-valuenow", str(round(score * 100)))

    page.get_by_role("button", name="No").click()
    page.get_by_label("What is the right sentiment?").select_option("neutral")
    page.get_by_role("button", name="Send").click()
    expect(answers(page).get_by_role("status")).to_have_text(
        'Recorded: "negative" was wrong, the right sentiment is "neutral".'
    )
    expect(page.get_by_role("listitem").filter(has_text=TWEET)).to_have_text(
        f"negative (lost luggage) (you said: wrong, neutral): {TWEET}"
    )
    shot(page, "ui-feedback.png")

    table = TableClient.from_connection_string(azurite, table_name="feedback")
    stored = [row for row in table.list_entities() if row["text"] == TWEET and row["expected_label"] == "neutral"]
    assert len(stored) == 1
    assert (stored[0]["predicted_label"], stored[0]["correct"]) == ("negative", False)


def test_several_tweets_each_with_its_answer_warnings_and_feedback(server, page, azurite):
    tweets = [
        f"@JetBlue thank you so much, amazing crew! #{random.randrange(10**8)}",
        "@AirParadis vol annulé sans explication, scandaleux",
        "@united",
    ]
    page.goto(f"{server.url}/api/ui")
    page.get_by_label(BOX).fill("\n\n".join(tweets))
    page.get_by_role("button", name="Check sentiment").click()
    expect(answers(page)).to_have_count(3)
    first, french, handle = (answers(page).nth(index) for index in range(3))
    expect(first.locator(".tweet")).to_have_text(tweets[0])
    expect(first.locator(".sentiment")).to_have_text("positive")
    expect(first.get_by_role("note")).to_have_count(0)
    expect(french.get_by_role("note")).to_have_text(
        "Unreliable: written in French: the model reads English tweets; this answer is unreliable"
    )
    expect(handle.get_by_role("note")).to_contain_text("no readable words")
    shot(page, "ui-batch.png")
    french.get_by_role("button", name="Yes").click()  # its own buttons: the others stay open
    expect(french.get_by_role("status")).to_contain_text("Recorded: you confirmed")
    expect(first.get_by_role("button", name="Yes")).to_be_enabled()
    expect(first.get_by_role("status")).to_be_hidden()
    table = TableClient.from_connection_string(azurite, table_name="feedback")
    assert [row["correct"] for row in table.list_entities() if row["text"] == tweets[1]] == [True]


def test_a_low_confidence_answer_is_marked_unsure(server, page):
    """Unsure is the model's line, chosen on validation (its manifest), as the API answers it."""
    candidates = [
        "@united the flight was fine I guess",
        "@united not bad",
        "@united so that was a flight",
        "@united well that happened",
        "@united ok then",
        "@united interesting flight today",
    ]
    line = Manifest.read(SHIPPED_MANIFEST).calibration["unsure_below"]
    given = {tweet: httpx.post(f"{server.url}/api/predict", json={"text": tweet}).json() for tweet in candidates}
    for answer in given.values():
        assert answer["unsure"] == (max(answer["scores"].values()) < line)
    weakest = min(given, key=lambda tweet: max(given[tweet]["scores"].values()))
    assert given[weakest]["unsure"]  # these tweets are close calls for any sensible model
    page.goto(f"{server.url}/api/ui")
    page.get_by_label(BOX).fill(weakest)
    page.get_by_role("button", name="Check sentiment").click()
    expect(answers(page)).to_have_count(1)
    top = max(given[weakest]["scores"].values())
    expect(answers(page).locator(".sentiment-unsure")).to_have_text(f"unsure: only {round(top * 100)}%")
    shot(page, "ui-unsure.png")
    page.get_by_label(BOX).fill(TWEET)
    page.get_by_role("button", name="Check sentiment").click()
    expect(answers(page).locator(".sentiment")).to_have_text("negative")
    expect(answers(page).locator(".sentiment-unsure")).to_be_hidden()  # a 0.9+ negative


def test_a_negative_answer_shows_its_reason_and_staff_correct_it(server, page, azurite):
    tweet = f"@united you cancelled my flight and the agent on the phone hung up on me #{random.randrange(10**8)}"
    answer = httpx.post(f"{server.url}/api/predict", json={"text": tweet}).json()
    assert answer["label"] == "negative" and answer["reason"] is not None
    reason = answer["reason"]
    page.goto(f"{server.url}/api/ui")
    page.get_by_label(BOX).fill(tweet)
    page.get_by_role("button", name="Check sentiment").click()
    card = answers(page).first
    expect(card.locator(".reason")).to_have_text(
        f"{reason['label'].replace('_', ' ')} ({round(reason['score'] * 100)}%)"
    )
    corrected = "customer_service" if reason["label"] != "customer_service" else "cancellation"
    card.get_by_label("The complaint is about:").select_option(corrected)
    shot(page, "ui-reason.png")
    card.get_by_role("button", name="Yes").click()
    expect(card.get_by_role("status")).to_have_text(
        f'Recorded: you confirmed "negative" is right. Complaint reason: {corrected.replace("_", " ")}.'
    )
    expect(page.get_by_role("listitem").filter(has_text=tweet)).to_contain_text(
        f"negative ({reason['label'].replace('_', ' ')}) (you said: right)"
    )
    table = TableClient.from_connection_string(azurite, table_name="feedback")
    stored = [row for row in table.list_entities() if row["text"] == tweet]
    assert [(row["correct"], row["expected_label"], row["expected_reason"]) for row in stored] == [
        (True, "negative", corrected)
    ]


def test_the_previous_answer_goes_the_moment_a_request_fails(server, page):
    page.goto(f"{server.url}/api/ui")
    page.get_by_label(BOX).fill(TWEET)
    page.get_by_role("button", name="Check sentiment").click()
    expect(answers(page)).to_have_count(1)
    page.get_by_label(BOX).fill("x" * 1001)  # over MAX_TWEET_CHARS: the service refuses it
    page.get_by_role("button", name="Check sentiment").click()
    expect(page.get_by_role("alert")).to_have_text("This text has 1001 characters: a tweet can have at most 1000.")
    expect(answers(page)).to_have_count(0)  # no stale answer, no live Yes/No for another tweet
    expect(page.get_by_role("button", name="Yes")).to_have_count(0)
    shot(page, "ui-error.png")
    page.get_by_label(BOX).fill("\n\n".join(["@united late"] * 65))
    page.get_by_role("button", name="Check sentiment").click()
    expect(page.get_by_role("alert")).to_have_text("At most 64 tweets at once: you pasted 65.")


def test_a_tweet_may_span_lines_and_a_blank_line_separates_tweets(server, page):
    """One tweet per line cut "I waited 2 hours at the gate." / "Never again." into two tweets, two answers."""
    page.goto(f"{server.url}/api/ui")
    page.get_by_label(BOX).focus()
    page.keyboard.type("@united I waited 2 hours at the gate.\nNever again.")  # Enter: a new line, not a check
    with page.expect_request("**/api/staff/predict") as sent:
        page.keyboard.press("Control+Enter")
    assert sent.value.post_data_json == {"text": "@united I waited 2 hours at the gate.\nNever again."}
    expect(answers(page)).to_have_count(1)
    shown = answers(page).locator(".tweet").evaluate("quote => quote.innerText")  # as laid out: its two lines
    assert shown == "@united I waited 2 hours at the gate.\nNever again."
    page.get_by_label(BOX).fill("@united I waited 2 hours at the gate.\nNever again.\n \n\n@JetBlue thanks!")
    page.get_by_role("button", name="Check sentiment").click()
    expect(answers(page)).to_have_count(2)


def test_a_tweet_of_one_long_word_wraps_inside_the_window(server, page):
    """A 320-character URL widened the page to 3,388 px in a 1,280 px window: the tweet and the session's list
    ran off to the right."""
    url = "https://airparadis.example/" + "x" * 293
    assert len(url) == 320
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{server.url}/api/ui")
    page.get_by_label(BOX).fill(url)
    page.get_by_role("button", name="Check sentiment").click()
    expect(answers(page)).to_have_count(1)
    expect(page.get_by_role("listitem").filter(has_text=url)).to_have_count(1)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    shot(page, "ui-long-word.png")


def test_keyboard_only_and_errors_are_announced(server, page):
    page.goto(f"{server.url}/api/ui")
    page.get_by_label(BOX).focus()
    page.keyboard.type("   ")
    page.keyboard.press("Control+Enter")
    expect(page.get_by_role("alert")).to_have_text("Type or paste a tweet first.")
    page.get_by_label(BOX).fill("@JetBlue thank you so much, amazing crew!")
    page.keyboard.press("Control+Enter")
    expect(page.locator(".sentiment")).to_have_text("positive")
    expect(page.get_by_role("alert")).to_be_hidden()
    page.keyboard.press("Enter")  # focus moved to "Yes"
    expect(answers(page).get_by_role("status")).to_have_text('Recorded: you confirmed "positive" is right.')


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
    page.get_by_label(BOX).fill(TWEET)
    page.get_by_role("button", name="Check sentiment").click()
    expect(page.get_by_role("alert")).to_contain_text("sign-in has expired")
    # What App Service authentication adds to each request once a member of staff has signed in.
    page.set_extra_http_headers(
        {"x-ms-client-principal-id": "5f1b-staff", "x-ms-client-principal-name": "agent@airparadis.example"}
    )
    with page.expect_request("**/api/staff/predict"):
        page.get_by_role("button", name="Check sentiment").click()
    expect(page.locator(".sentiment")).to_have_text("negative")
    page.get_by_role("button", name="Yes").click()
    # The reason shown is confirmed with the sentiment (staff change it in its list first when it is wrong).
    expect(answers(page).get_by_role("status")).to_have_text(
        'Recorded: you confirmed "negative" is right. Complaint reason: lost luggage.'
    )
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
    page.get_by_label(BOX).fill(
        "@JetBlue thank you so much, amazing crew!\n\n@AirParadis vol annulé sans explication, scandaleux"
    )
    page.get_by_role("button", name="Check sentiment").click()
    expect(page.get_by_role("progressbar")).to_have_count(6)
    expect(page.get_by_role("note")).to_have_count(1)
    assert violations == []


def test_the_session_summary_counts_sentiments_and_reasons(server, page):
    tweets = [
        f"@united lost my bag again #{random.randrange(10**8)}",
        f"@united you cancelled my flight for the second time #{random.randrange(10**8)}",
        f"@JetBlue thank you, lovely crew and an early landing! #{random.randrange(10**8)}",
    ]
    answers_given = httpx.post(f"{server.url}/api/predict", json={"texts": tweets}).json()["predictions"]
    labels = Counter(answer["label"] for answer in answers_given)
    assert labels["negative"] == 2 and labels["positive"] == 1  # two complaints and a thank-you
    reasons = sorted(answer["reason"]["label"].replace("_", " ") for answer in answers_given if answer["reason"])
    page.goto(f"{server.url}/api/ui")
    page.get_by_label(BOX).fill("\n\n".join(tweets))
    page.get_by_role("button", name="Check sentiment").click()
    expect(answers(page)).to_have_count(3)
    why = ", ".join(f"1 {reason}" for reason in reasons) if reasons[0] != reasons[1] else f"2 {reasons[0]}"
    expect(page.locator("#summary")).to_have_text(f"3 tweets: 2 negative ({why}), 1 positive")
