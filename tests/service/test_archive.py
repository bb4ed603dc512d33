"""The archive job on Azurite's blob and queue services: a file dropped in tweets-in is scored into tweets-out by
the app's queue-triggered functions, run by scripts/local_queues.py as the Functions host runs them (Base64
messages, retries after visibilityTimeout, the poison queue after maxDequeueCount). Real tweets of the airline
test part; labels compared with /api/predict's."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time

import pytest
from azure.core.exceptions import ResourceNotFoundError

import function_app
from tests.conftest import ROOT, free_port, post
from tweet_sentiment import archive
from tweet_sentiment.tabular import SCORE_COLUMNS, neutralised

TWEETS = list(csv.DictReader((ROOT / "tests/data/airline_tweets.csv").open(encoding="utf-8")))
CHUNK = 25


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    """Azurite with its blob, queue and table services on free ports; the archive's connection string."""
    from scripts.local_server import start_azurite, stop_azurite
    from tweet_sentiment.feedback import azurite_connection_string

    ports = {"port": free_port(), "blob_port": free_port(), "queue_port": free_port()}
    process = start_azurite(location=tmp_path_factory.mktemp("azurite-archive"), **ports)
    yield azurite_connection_string(**ports)
    stop_azurite(process)


@pytest.fixture()
def host(storage, indexed_functions, monkeypatch):
    """The app's queue functions on Azurite, chunks of 25 tweets, a failed message visible again after 1 s."""
    from scripts.local_queues import QueueHost

    settings = dataclasses.replace(function_app.settings, archive_connection_string=storage, archive_chunk_tweets=CHUNK)
    monkeypatch.setattr(function_app, "settings", settings)
    monkeypatch.setattr(function_app, "_archive_storage", None)
    running = QueueHost(indexed_functions, {archive.CONNECTION: storage}, poll_seconds=0.05)
    running.options["visibility_seconds"] = 1
    running.start()
    yield running
    running.stop()


def rows_with_bad_ones() -> list[dict]:
    rows = [{"id": str(index), **row} for index, row in enumerate(TWEETS)]
    rows[7]["text"], rows[64]["text"] = "", "y" * 1001
    return rows


def drop(host, name: str, data: str, metadata: dict | None = None) -> None:
    host.storage.container(archive.INBOX).upload_blob(name, data.encode(), overwrite=True, metadata=metadata)


def wait_for_report(host, name: str, seconds: float = 120) -> dict:
    outbox = host.storage.container(archive.OUTBOX)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            return json.loads(outbox.download_blob(name + ".report.json").readall())
        except ResourceNotFoundError:
            time.sleep(0.2)
    raise AssertionError(f"no report for {name} within {seconds} s")


def output_text(host, name: str) -> str:
    return host.storage.container(archive.OUTBOX).download_blob(name).readall().decode("utf-8")


def csv_text(rows: list[dict]) -> str:
    stream = io.StringIO(newline="")
    writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return stream.getvalue()


def failing(monkeypatch, chunk_with_id: str, times: int) -> list[str]:
    """Scoring fails `times` times for the chunk that holds the row `chunk_with_id` (the node dying, say);
    returns the ids of the first row of every chunk scored, failures included."""
    real, calls = archive.score_rows, []

    def score_rows(model, rows, *args):
        calls.append(rows[0]["id"])
        if any(row["id"] == chunk_with_id for row in rows) and calls.count(rows[0]["id"]) <= times:
            raise RuntimeError("the instance went away")
        return real(model, rows, *args)

    monkeypatch.setattr(archive, "score_rows", score_rows)
    return calls


def test_a_dropped_file_is_scored_whole_in_order_once_with_a_chunk_that_failed_once(host, http_functions, monkeypatch):
    rows = rows_with_bad_ones()
    calls = failing(monkeypatch, chunk_with_id="60", times=1)
    drop(host, "mentions-march.csv", csv_text(rows))
    report = wait_for_report(host, "mentions-march.csv")
    out = list(csv.DictReader(io.StringIO(output_text(host, "mentions-march.csv"), newline="")))

    assert calls.count("50") == 2  # the chunk of rows 50-74 failed once, then was scored
    assert report["rows"] == len(rows) == len(out) and report["failed_chunks"] == []
    assert report["chunks"] == 5 and report["rows_with_error"] == 2
    assert [row["id"] for row in out] == [row["id"] for row in rows]  # every row, in order, none twice
    assert list(out[0]) == ["id", "text", "sentiment", *SCORE_COLUMNS]
    assert (out[7]["error"], out[7]["label"]) == ("column 'text' must not be empty", "")
    assert out[64]["error"] == "column 'text' has 1001 characters; the limit is 1000"
    for row, tweet in zip(out[40:80], rows[40:80], strict=True):
        if row["error"]:
            continue
        assert row["text"] == neutralised(tweet["text"])  # "@united ...": a formula to Excel, quoted
        answer = json.loads(post(http_functions["predict"], {"text": tweet["text"]}).get_body())
        assert row["label"] == answer["label"] and row["model_version"] == answer["model"]["version"]
        assert row["reason"] == (answer["reason"]["label"] if answer["reason"] else "")
        assert {label: float(row[f"score_{label}"]) for label in answer["labels"]} == answer["scores"]
    assert list(host.storage.container(archive.WORK).list_blobs()) == []  # the work blobs are deleted


def test_a_chunk_that_keeps_failing_ends_in_the_report_and_its_rows_carry_the_error(host, monkeypatch):
    rows = rows_with_bad_ones()[:60]
    failing(monkeypatch, chunk_with_id="30", times=99)
    drop(host, "timeline.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    report = wait_for_report(host, "timeline.jsonl")
    out = [json.loads(line) for line in output_text(host, "timeline.jsonl").split("\n") if line]

    assert report["failed_chunks"] == [{"chunk": 1, "error": "RuntimeError: the instance went away"}]
    assert report["rows_scored"] == len(rows) - CHUNK - 1  # the figures leave out the failed chunk and row 7
    assert report["status"].startswith("complete with failed chunks")
    assert [row["id"] for row in out] == [row["id"] for row in rows]  # no silent gap
    failed = out[CHUNK : 2 * CHUNK]
    assert all(row["label"] is None and "could not be scored (RuntimeError" in row["error"] for row in failed)
    assert all(row["label"] for row in out[:CHUNK] if not row["error"])


def test_the_report_of_a_dropped_file_is_the_score_commands_and_its_page_lies_beside_the_output(host, tmp_path, capsys):
    from tests.service.test_archive_page import HOSTILE
    from tests.unit.test_archive_report import crafted_rows, moment, scored

    rows = [*crafted_rows(), {"text": HOSTILE, "user_followers": 10**9, "retweets": "", "created_at": moment(24, 20)}]
    expected, _ = scored(tmp_path, rows, "--followers-column", "user_followers", "--alert-minimum-volume", "4")
    capsys.readouterr()
    metadata = {"followers_column": "user_followers", "alert_minimum_volume": "4"}
    drop(host, "buzz.csv", csv_text(rows), metadata=metadata)  # 5 chunks: a group's rows cross them
    report = wait_for_report(host, "buzz.csv")

    figures = ["tweets", "retweets_and_copies", "reach", "by_sentiment", "by_reason", "loudest_complaints", "hours",
               "bad_buzz_hours", "bad_buzz_rule", "unsure_share", "unreadable_share", "rows_without_time"]  # fmt: skip
    assert {key: report[key] for key in figures} == {key: expected[key] for key in figures}
    assert report["bad_buzz_hours"] == [moment(24)] and report["loudest_complaints"][0]["text"] == HOSTILE.strip()
    assert report["reading"]["rows_context_ignored"] == {"user_followers": 1}
    assert report["page"] == "tweets-out/buzz.csv.report.html"
    page = host.storage.container(archive.OUTBOX).download_blob("buzz.csv.report.html")
    assert page.properties.content_settings.content_type == "text/html; charset=utf-8"
    html = page.readall().decode("utf-8")
    assert "<svg" in html and "<script" not in html and "&lt;script&gt;document.title=&#x27;owned&#x27;" in html
    wait_until(lambda: not list(host.storage.container(archive.WORK).list_blobs()))  # the facts went with the rest
    long = archive.Job("n" * 1010 + ".csv", "")
    assert len(long.page_name) <= archive.MAX_BLOB_NAME and long.page_name.endswith(".report.html")
    assert long.page_name.removesuffix(".html") == long.report_name.removesuffix(".json")


def test_the_tweet_column_comes_from_the_blobs_metadata_and_other_formats_are_refused(host):
    rows = [{"tweet": row["text"]} for row in TWEETS[:3]]
    drop(host, "competitor.csv", csv_text(rows), metadata={"text_column": "tweet"})
    drop(host, "notes.txt", "not a table")
    assert wait_for_report(host, "competitor.csv")["rows_with_error"] == 0
    assert "unknown format" in wait_for_report(host, "notes.txt")["error"]


def test_events_about_anything_else_are_ignored():
    created = {"eventType": archive.BLOB_CREATED, "data": {"eTag": "0x1"}}
    assert archive.job_of_event({**created, "subject": "/blobServices/default/containers/tweets-in/blobs/a/b.csv"})
    assert (
        archive.job_of_event({**created, "subject": "/blobServices/default/containers/tweets-out/blobs/a.csv"}) is None
    )
    deleted = {
        "eventType": "Microsoft.Storage.BlobDeleted",
        "subject": "/blobServices/default/containers/tweets-in/blobs/a",
    }
    assert archive.job_of_event(deleted) is None


def wait_until(check, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s")


def report_of(host, name: str, etag: str | None = None) -> dict | None:
    """The report of `name` (of the upload with `etag`, when given), or None while there is none."""
    try:
        report = json.loads(
            host.storage.container(archive.OUTBOX).download_blob(archive.Job(name, "").report_name).readall()
        )
    except ResourceNotFoundError:
        return None
    return report if etag is None or report.get("input_etag") == etag.strip('"') else None


HOSTILE = {  # name -> (content, metadata, rows scored or None when the report must say why not)
    "cr-only.csv": (b"id,text\r0,great flight\r1,lost bag\r", None, 2),
    "huge-field.csv": (b"id,text\n0,fine\n1," + b"x" * 300_000 + b"\n2,ok\n", None, 3),
    "deep.jsonl": (b'{"text": "fine"}\n{"text": ' + b"[" * 3000 + b"]" * 3000 + b"}\n", None, 2),
    "cut-emoji.jsonl": (b'{"text": "great flight \\ud83d"}\n', None, 1),
    "..\\bs.csv": (b"id,text\n0,great flight\n", None, 1),
    "n" * 1010 + ".csv": (b"id,text\n0,great flight\n", None, 1),
    "wide.csv": (",".join(f"c{i}" for i in range(10_000)).encode() + b"\n" + b"x," * 9_999 + b"x\n", None, None),
    "no-column.csv": (b"id,tweet\n0,great flight\n", None, None),
    "empty-metadata.csv": (b"id,text\n0,great flight\n", {"text_column": ""}, None),
}


def test_every_hostile_file_ends_with_a_report_and_none_vanishes(host):
    for name, (content, metadata, _) in HOSTILE.items():
        host.storage.container(archive.INBOX).upload_blob(name, content, overwrite=True, metadata=metadata)
    for name, (_, _, rows) in HOSTILE.items():
        report = wait_until(lambda name=name: report_of(host, name))
        if rows is None:
            assert report["status"] == "not scored" and report["error"], report
        else:
            assert report["rows"] == rows and report["status"] == "complete", report
    assert "columns are ['id', 'tweet']" in report_of(host, "no-column.csv")["error"]
    assert "10000 columns" in report_of(host, "wide.csv")["error"]
    assert report_of(host, "cut-emoji.jsonl")["reading"]["rows_changed_when_read"]
    wait_until(lambda: not list(host.storage.container(archive.WORK).list_blobs()), 30)


def test_a_file_replaced_while_its_job_runs_ends_with_the_new_files_rows(host, monkeypatch):
    real = archive.score_rows

    def slow(*args):
        time.sleep(0.2)  # the old job is still running when the new upload comes
        return real(*args)

    monkeypatch.setattr(archive, "score_rows", slow)
    rows = [{"id": str(index), "text": TWEETS[index % len(TWEETS)]["text"]} for index in range(1000)]
    drop(host, "replaced.csv", csv_text(rows))
    work = host.storage.container(archive.WORK)
    wait_until(lambda: any(blob.name.endswith("/job.json") for blob in work.list_blobs()))
    newer = host.storage.container(archive.INBOX).upload_blob("replaced.csv", csv_text(rows[:3]), overwrite=True)
    etag = newer.get_blob_properties().etag
    report = wait_until(lambda: report_of(host, "replaced.csv", etag))
    assert report["rows"] == 3
    wait_until(lambda: not list(work.list_blobs()), 120)  # the old job's work is dropped, not assembled
    assert report_of(host, "replaced.csv", etag) == report
    assert len(list(csv.DictReader(io.StringIO(output_text(host, "replaced.csv"))))) == 3


def test_a_second_event_for_the_same_upload_plans_nothing(host):
    drop(host, "twice.csv", csv_text([{"id": "0", "text": TWEETS[0]["text"]}]))
    report = wait_until(lambda: report_of(host, "twice.csv"))
    etag = host.storage.container(archive.INBOX).get_blob_client("twice.csv").get_blob_properties().etag
    event = {
        "eventType": archive.BLOB_CREATED,
        "subject": f"/blobServices/default/containers/{archive.INBOX}/blobs/twice.csv",
        "data": {"eTag": etag},
    }
    assert archive.plan(host.storage, event, function_app.settings) == 0
    assert list(host.storage.container(archive.WORK).list_blobs()) == []
    assert report_of(host, "twice.csv") == report


def test_archive_put_drops_a_file_waits_for_its_report_and_downloads_both(host, storage, tmp_path, capsys):
    from tweet_sentiment.__main__ import main

    path = tmp_path / "mentions-local.csv"
    path.write_text(csv_text([{"id": "0", "tweet": TWEETS[0]["text"]}]), encoding="utf-8")
    command = ["archive", "put", str(path), "--text-column", "tweet", "--connection-string", storage]
    assert main([*command, "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out)["rows"] == 1 and "report: tweets-out/mentions-local.csv.report.json" in printed.err
    assert len(list(csv.DictReader(io.StringIO((tmp_path / "out" / "mentions-local.csv").read_text("utf-8"))))) == 1
    assert json.loads((tmp_path / "out" / "mentions-local.csv.report.json").read_text())["status"] == "complete"
