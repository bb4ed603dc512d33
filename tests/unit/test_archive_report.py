"""The archive report: its figures on a crafted file scored by the shipped model through the score command
(retweets and copies grouped, reach summed, reasons counted, the hour the bad-buzz rule would have fired, an
invalid context ignored and said), the rule's arithmetic at the deployed defaults, and the defaults themselves
read against the Bicep that deploys the rule."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections import Counter
from functools import cache

import pytest

from tests.conftest import ROOT, SHIPPED_MANIFEST
from tweet_sentiment.__main__ import main
from tweet_sentiment.archive_report import BAD_BUZZ, AlertRule, Fact, context_columns, context_of, group_key, report_of
from tweet_sentiment.model import SentimentModel

TWEETS = [row["text"] for row in csv.DictReader((ROOT / "tests/data/airline_tweets.csv").open(encoding="utf-8"))]
DAY = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)


@cache
def sure_answers() -> dict[str, list[tuple[str, str | None]]]:
    """The fixture's tweets the shipped model reads with a sure answer, by label: (text, reason)."""
    model = SentimentModel.load(SHIPPED_MANIFEST, intra_op_threads=1)
    by_label: dict[str, list[tuple[str, str | None]]] = {}
    for text, answer in zip(TWEETS, model.predict(TWEETS), strict=True):
        if answer.readable and not answer.unsure and not (answer.reason and answer.reason.unsure):
            by_label.setdefault(answer.label, []).append((text, answer.reason.label if answer.reason else None))
    return by_label


def moment(hour: int, minute: int = 0) -> str:
    return (DAY + dt.timedelta(hours=hour, minutes=minute)).isoformat().replace("+00:00", "Z")


def crafted_rows() -> list[dict]:
    """24 quiet hours (4 tweets, one negative), then an hour where one complaint is retweeted: 100% negative."""
    answers = sure_answers()
    negatives, calm = answers["negative"], [*answers["positive"], *answers.get("neutral", [])]
    rows = []
    for hour in range(24):
        for slot in range(4):
            text = (
                negatives[1 + hour % (len(negatives) - 1)][0] if slot == 0 else calm[(hour * 3 + slot) % len(calm)][0]
            )
            rows.append({"text": text, "user_followers": 10, "retweets": "", "created_at": moment(hour, slot)})
    loud = negatives[0][0]
    rows += [
        {"text": loud, "user_followers": 1000, "retweets": 3, "created_at": moment(24)},
        {"text": f"RT @angry_fan: {loud}", "user_followers": 500, "retweets": "", "created_at": moment(24, 5)},
        {"text": f"RT @other: {loud}", "user_followers": 300, "retweets": "", "created_at": moment(24, 6)},
        {
            "text": "  " + loud.replace(" ", "   ") + " ",
            "user_followers": 7,
            "retweets": "",
            "created_at": moment(24, 9),
        },
        {"text": calm[0][0], "user_followers": -5, "retweets": "", "created_at": moment(24, 10)},  # context refused
    ]
    return rows


def write_csv(path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def scored(tmp_path, rows: list[dict], *options: str) -> tuple[dict, list[dict]]:
    write_csv(tmp_path / "mentions.csv", rows)
    arguments = [str(tmp_path / "mentions.csv"), str(tmp_path / "scored.csv"), "--no-progress", *options]
    assert main(["score", *arguments, "--model", str(SHIPPED_MANIFEST)]) == 0
    report = json.loads((tmp_path / "scored.csv.report.json").read_text(encoding="utf-8"))
    with (tmp_path / "scored.csv").open(newline="", encoding="utf-8") as stream:
        return report, list(csv.DictReader(stream))


def test_the_report_groups_retweets_and_copies_sums_their_reach_counts_reasons_and_finds_the_alert_hour(
    tmp_path, capsys
):
    rows = crafted_rows()
    options = ["--followers-column", "user_followers", "--alert-minimum-volume", "4"]
    report, out = scored(tmp_path, rows, *options)
    printed = json.loads(capsys.readouterr().out)
    assert printed["report"]["tweets"] == report["tweets"]  # printed and written alike
    assert (tmp_path / "scored.csv.report.html").is_file()

    loud = sure_answers()["negative"][0]
    assert report["loudest_complaints"][0] == {"text": loud[0], "reason": loud[1], "reach": 1000 + 3 + 500 + 300 + 7,
                                               "rows": 4}  # fmt: skip
    distinct = {group_key(row["text"])[0] for row in rows}
    assert report["tweets"] == len(distinct) and report["retweets_and_copies"] == len(rows) - len(distinct)
    # Reasons: each distinct negative tweet once, with the model's reason.
    negatives = dict(sure_answers()["negative"])
    expected = Counter(negatives[text] for text in {row["text"] for row in rows} if text in negatives)
    assert {name: tally["tweets"] for name, tally in report["by_reason"].items()} == dict(expected)
    assert report["by_sentiment"]["negative"]["reach"] == sum(tally["reach"] for tally in report["by_reason"].values())
    # The quiet hours judge nothing until 24 hours of baseline; the loud hour fires (100% against 25%).
    assert report["bad_buzz_hours"] == [moment(24)]
    last = report["hours"][-1]
    assert (last["negative_share_percent"], last["baseline_share_percent"], last["signal"]) == (100.0, 25.0, "count")
    assert report["bad_buzz_rule"] == {
        "margin_points": 15,
        "minimum_volume": 4,
        "recent_hours": 1,
        "baseline_hours": 24,
    }
    # The refused context: the row is scored, its context ignored with a warning, counted in `reading`.
    refused = out[-1]
    assert refused["label"] and "context ignored: column 'user_followers'" in refused["warnings"]
    assert report["reading"]["rows_context_ignored"] == {"user_followers": 1}
    assert report["rows_without_time"] == 1
    assert report["unsure_share"] == 0 and report["unreadable_share"] == 0


def test_at_the_deployed_defaults_a_quiet_hour_never_fires_and_a_loud_complaint_fires_by_reach():
    def hour(number: int, tweets: int, negatives: int, loud_reach: int = 0) -> list[Fact]:
        return [
            Fact(
                label="negative" if index < negatives else "positive",
                reason="delay" if index < negatives else None,
                reach=loud_reach if index == 0 and loud_reach else 100,
                hour=number,
                key=number * 1000 + index,
                text="late" if index < negatives else None,
            )
            for index in range(tweets)
        ]

    baseline = [fact for number in range(24) for fact in hour(number, 60, 6)]  # 10% negative
    rises = report_of([*baseline, *hour(24, 60, 16)])  # 26.7%: 16.7 points
    assert rises["bad_buzz_hours"] == [rises["hours"][-1]["hour"]] and rises["hours"][-1]["signal"] == "count"
    small = report_of([*baseline, *hour(24, 49, 49)])  # 100% negative, but under the volume
    assert small["bad_buzz_hours"] == [] and small["hours"][-1]["rise_points"] is None
    within = report_of([*baseline, *hour(24, 60, 15)])  # 25%: 15 points, not more
    assert within["bad_buzz_hours"] == []
    loud = report_of([*baseline, *hour(24, 60, 6, loud_reach=1_000_000)])  # the same count, one loud complaint
    assert loud["bad_buzz_hours"] == [loud["hours"][-1]["hour"]] and loud["hours"][-1]["signal"] == "reach"
    assert report_of([*baseline, *hour(24, 60, 16)], AlertRule(margin_points=20))["bad_buzz_hours"] == []


def test_the_rules_defaults_are_the_deployed_ones():
    bicep = (ROOT / "infra/main.bicep").read_text(encoding="utf-8")
    default = {name: int(value) for name, value in re.findall(r"param (badBuzz\w+) int = (\d+)", bicep)}
    assert (BAD_BUZZ.margin_points, BAD_BUZZ.minimum_volume) == (
        default["badBuzzMarginPoints"],
        default["badBuzzMinimumVolume"],
    )
    query = (ROOT / "infra/alerts/bad-buzz.kql").read_text(encoding="utf-8")
    assert "let recent = 1h;" in query and "let baseline = 24h;" in query
    assert (BAD_BUZZ.recent_hours, BAD_BUZZ.baseline_hours) == (1, 24)


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ({"followers": "1200", "retweets": 3.0, "tweet_id": 123}, (1203, "")),
        ({"followers": "-1"}, (None, "context ignored: column 'followers'")),
        ({"followers": "10000000000000"}, (None, "context ignored: column 'followers'")),
        ({"likes": "many"}, (None, "context ignored: column 'likes'")),
        ({"created_at": "2015-02-24 11:35:52 -0800"}, (0, "")),  # the airline dataset's own format
        ({"created_at": "2026-13-45T00:00:00Z"}, (None, "context ignored: column 'created_at'")),
        ({"created_at": "2026-11-02T10:00:00"}, (None, "context ignored: column 'created_at'")),  # which zone?
        ({"followers": ""}, (None, "")),
    ],
)
def test_context_cells_are_read_as_the_api_reads_them(cells, expected):
    from tweet_sentiment.reach import reach

    context, problem = context_of(cells, context_columns())
    reached, refused = expected
    assert problem.startswith(refused) if refused else problem == ""
    assert (reach(context) if context is not None else None) == reached


def test_a_context_column_named_but_missing_is_refused_before_scoring(tmp_path, capsys):
    write_csv(tmp_path / "mentions.csv", [{"text": TWEETS[0], "followers": 3}])
    arguments = [str(tmp_path / "mentions.csv"), str(tmp_path / "scored.csv"), "--followers-column", "fans"]
    assert main(["score", *arguments, "--model", str(SHIPPED_MANIFEST), "--no-progress"]) == 2
    assert "no column 'fans' for --followers-column" in capsys.readouterr().err
    assert not (tmp_path / "scored.csv").exists()
