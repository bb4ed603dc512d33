"""The archive report's page in headless Chromium: written by the score command beside its output, it opens from
disk with nothing fetched, shows the chart of negative reach by reason and the tables, and a hostile tweet among
the loudest complaints is shown as text, never run."""

from __future__ import annotations

import io
import json

from PIL import Image

from tests.unit.test_archive_report import crafted_rows, moment, scored

HOSTILE = (
    "@united <script>document.title='owned'</script><img src=x onerror=\"document.title='owned'\"> "
    "lost my bag again and nobody answers, worst airline ever </td></table><b>"
)


def test_the_page_opens_with_its_chart_and_tables_and_shows_a_hostile_tweet_as_text(tmp_path, browser, capsys):
    rows = crafted_rows()
    rows.append({"text": HOSTILE, "user_followers": 10**9, "retweets": "", "created_at": moment(24, 20)})
    options = ["--followers-column", "user_followers", "--alert-minimum-volume", "4"]
    report, _ = scored(tmp_path, rows, *options)
    capsys.readouterr()
    assert report["loudest_complaints"][0]["text"] == HOSTILE.strip()  # the model reads it as a complaint
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    requests, dialogs = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    url = (tmp_path / "scored.csv.report.html").as_uri()
    page.goto(url)
    page.wait_for_load_state("load")

    assert page.title() == "scored.csv: tweet sentiment report"  # no script ran
    assert requests == [url] and dialogs == []  # nothing fetched: no CDN, no image
    assert page.locator("script").count() == 0 and page.locator("img").count() == 0
    loudest = page.locator("#loudest tbody tr")
    assert loudest.count() == len(report["loudest_complaints"])
    assert loudest.first.locator("blockquote").inner_text() == HOSTILE.strip()
    reasons = page.locator("#reasons tbody tr")
    assert [row.locator("td").first.inner_text() for row in reasons.all()] == list(report["by_reason"])
    assert "would have fired in 1 hour" in page.locator(".alert").inner_text()
    assert moment(24).replace("T", " ")[:16] in page.locator(".alert").inner_text()

    chart = page.locator("figure svg")
    box = chart.bounding_box()
    assert box and box["width"] > 600 and box["height"] > 200
    pixels = Image.open(io.BytesIO(chart.screenshot())).convert("RGB")
    colours = {colour for count, colour in pixels.getcolors(maxcolors=1 << 20) if count > 50}
    assert len(colours) >= len(report["by_reason"]) + 2  # a colour per reason, the alert's shade, ink and paper
    assert json.loads((tmp_path / "scored.csv.report.json").read_text())["bad_buzz_hours"] == [moment(24)]
