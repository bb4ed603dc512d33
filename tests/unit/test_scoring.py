"""Scoring an archive with `python -m tweet_sentiment score`: real ONNX Runtime, real files in each format,
real tweets of the airline test part (tests/data/airline_tweets.csv) and the same labels as `/api/predict`."""

from __future__ import annotations

import csv
import fcntl
import json
import subprocess
import sys
import time

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, SHIPPED_MANIFEST, body_of, post
from tweet_sentiment import scoring
from tweet_sentiment.scoring import Job, ScoringError, run
from tweet_sentiment.tabular import SCORE_COLUMNS, neutralised

TWEETS = list(csv.DictReader((ROOT / "tests/data/airline_tweets.csv").open(encoding="utf-8")))


def archive(tmp_path, rows: list[dict], name: str = "tweets.csv"):
    path = tmp_path / name
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_csv(path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def rows_with_bad_ones() -> list[dict]:
    rows = [{"id": str(index), **row} for index, row in enumerate(TWEETS)]
    rows[5]["text"], rows[17]["text"] = "   ", "x" * 1001
    return rows


def test_every_row_comes_out_in_order_with_the_services_answer(tmp_path, http_functions):
    rows = rows_with_bad_ones()
    summary = run(Job(archive(tmp_path, rows), tmp_path / "scored.csv", SHIPPED_MANIFEST, chunk_size=16), False)
    out = read_csv(tmp_path / "scored.csv")
    assert summary["rows"] == len(rows) and summary["errors"] == 2
    assert list(out[0]) == ["id", "text", "sentiment", *SCORE_COLUMNS]
    assert [row["id"] for row in out] == [row["id"] for row in rows]
    assert [row["sentiment"] for row in out] == [row["sentiment"] for row in rows]  # input columns kept
    assert (out[5]["label"], out[5]["error"]) == ("", "column 'text' must not be empty")
    assert out[17]["error"] == "column 'text' has 1001 characters; the limit is 1000" and not out[17]["label"]
    for row, tweet in zip(out[:40], rows, strict=False):
        if row["error"]:
            continue
        assert row["text"] == neutralised(tweet["text"])  # "@united ...": a formula to Excel, quoted
        answer = body_of(post(http_functions["predict"], {"text": tweet["text"]}))
        assert row["label"] == answer["label"] and row["language"] == answer["language"]
        assert row["reason"] == (answer["reason"]["label"] if answer["reason"] else "")
        assert (float(row["reason_score"]) if row["reason_score"] else None) == (
            answer["reason"]["score"] if answer["reason"] else None
        )
        assert {label: float(row[f"score_{label}"]) for label in answer["labels"]} == answer["scores"]
        assert row["model_version"] == answer["model"]["version"]
    assert not (tmp_path / "scored.csv.partial").exists()


def test_json_lines_keep_bad_lines_and_non_text_as_errors(tmp_path):
    path = tmp_path / "tweets.jsonl"
    lines = [json.dumps({"text": TWEETS[0]["text"], "n": 1}), "not json", json.dumps({"text": 42}), json.dumps({})]
    path.write_text("\n".join(lines) + "\n")
    run(Job(path, tmp_path / "scored.jsonl", SHIPPED_MANIFEST), False)
    out = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert out[0]["label"] in ("negative", "neutral", "positive") and out[0]["n"] == 1 and out[0]["error"] == ""
    assert [row["error"] for row in out[1:]] == [
        "line 2 is not a JSON object",
        "column 'text' must be a string",
        "column 'text' is missing",
    ]
    assert all(row["label"] is None for row in out[1:])


def test_parquet_in_parquet_out_with_the_same_answers_as_csv(tmp_path):
    rows = rows_with_bad_ones()[:50]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "tweets.parquet")
    run(Job(tmp_path / "tweets.parquet", tmp_path / "scored.parquet", SHIPPED_MANIFEST, chunk_size=20), False)
    run(Job(archive(tmp_path, rows), tmp_path / "scored.csv", SHIPPED_MANIFEST), False)
    parquet, text = pq.read_table(tmp_path / "scored.parquet").to_pylist(), read_csv(tmp_path / "scored.csv")
    assert [row["label"] or "" for row in parquet] == [row["label"] for row in text]
    assert [row["id"] for row in parquet] == [row["id"] for row in rows]


def test_an_interrupted_job_resumes_where_it_stopped_and_never_leaves_a_partial_output(tmp_path, monkeypatch):
    path, output = archive(tmp_path, rows_with_bad_ones()), tmp_path / "scored.csv"
    reference = tmp_path / "reference.csv"
    whole = run(Job(path, reference, SHIPPED_MANIFEST, chunk_size=16), False)
    real, calls, crashes = scoring.score_rows, [], []

    def crashing(model, rows, text_column, settings, context=None):
        calls.append(len(rows))
        if len(calls) == 4 and not crashes:
            crashes.append(True)
            raise InterruptedError("the job is stopped while scoring its fourth chunk")
        return real(model, rows, text_column, settings, context)

    monkeypatch.setattr(scoring, "score_rows", crashing)
    with pytest.raises(InterruptedError):
        run(Job(path, output, SHIPPED_MANIFEST, chunk_size=16), False)
    assert not output.exists() and len(list((tmp_path / "scored.csv.partial").glob("chunk-*"))) == 3
    calls.clear()
    summary = run(Job(path, output, SHIPPED_MANIFEST, chunk_size=16), False)
    assert summary["chunks_resumed"] == 3 and sum(calls) == len(TWEETS) - 3 * 16  # only what was missing
    assert output.read_bytes() == reference.read_bytes()
    assert summary["report"] == whole["report"]  # the chunks scored before the interruption are in the report
    assert not (tmp_path / "scored.csv.partial").exists()


def test_two_workers_write_what_one_writes(tmp_path):
    path = archive(tmp_path, rows_with_bad_ones())
    one = run(Job(path, tmp_path / "one.csv", SHIPPED_MANIFEST, chunk_size=10), False)
    two = run(Job(path, tmp_path / "two.csv", SHIPPED_MANIFEST, chunk_size=10, workers=2), False)
    assert (tmp_path / "two.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()
    assert two["report"] == one["report"] and one["report"]["rows"] == len(TWEETS)


def test_the_command_says_what_to_fix(tmp_path):
    def score(*args):
        return subprocess.run(
            [sys.executable, "-m", "tweet_sentiment", "score", *map(str, args), "--no-progress"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )

    missing = score(tmp_path / "none.csv", tmp_path / "out.csv")
    assert missing.returncode == 2 and "none.csv not found" in missing.stderr and "Traceback" not in missing.stderr
    unknown = score(archive(tmp_path, TWEETS[:2]), tmp_path / "out.xlsx")
    assert unknown.returncode == 2 and "name it .csv, .jsonl (JSON Lines) or .parquet" in unknown.stderr
    done = score(archive(tmp_path, TWEETS[:3]), tmp_path / "out.jsonl")
    assert done.returncode == 0 and json.loads(done.stdout)["rows"] == 3
    with pytest.raises(ScoringError, match="unknown format"):
        scoring.file_format(tmp_path / "x.txt")


def score_command(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tweet_sentiment", "score", *map(str, args), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        **kwargs,
    )


HOSTILE_FILES = {  # name -> (content, rows, rows with an error)
    "cr-only.csv": (b"id,text\r0,great flight\r1,lost bag\r", 2, 0),
    "huge-field.csv": (b"id,text\n0,fine\n1," + b"x" * 300_000 + b"\n2,ok\n", 3, 1),
    "deep.jsonl": (b'{"text": "fine"}\n{"text": ' + b"[" * 3000 + b"]" * 3000 + b"}\n", 2, 1),
    "surrogate.jsonl": (b'{"text": "great flight \\ud83d"}\n{"text": "lost bag"}\n', 2, 0),
    "not-json-numbers.jsonl": (b'{"text": "ok", "n": NaN, "m": 1e999}\n', 1, 0),
}


@pytest.mark.parametrize("name", HOSTILE_FILES)
def test_a_hostile_file_is_scored_to_the_end_with_its_bad_rows_as_errors(tmp_path, name):
    content, count, errors = HOSTILE_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    output = tmp_path / ("out" + path.suffix)
    result = score_command(path, output)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert output.is_file() and not (tmp_path / "out.partial").exists()
    if path.suffix == ".jsonl":  # every line is JSON
        rows = [json.loads(line, parse_constant=pytest.fail) for line in output.read_text("utf-8").splitlines()]
    else:
        rows = read_csv(output)
    assert len(rows) == count == json.loads(result.stdout)["rows"]
    assert sum(bool(row["error"]) for row in rows) == errors


def test_wrong_options_are_refused_before_scoring_with_what_to_do(tmp_path):
    tweets = archive(tmp_path, [{"id": "0", "tweet": "@united lost my bag"}])
    wrong_column = score_command(tweets, tmp_path / "out.csv")
    assert wrong_column.returncode == 2 and "no column 'text'" in wrong_column.stderr
    assert "['id', 'tweet']" in wrong_column.stderr and not (tmp_path / "out.csv").exists()
    good = archive(tmp_path, TWEETS[:3], "good.csv")
    before = good.read_bytes()
    itself = score_command(good, good)
    assert itself.returncode == 2 and "the output is the input" in itself.stderr and good.read_bytes() == before
    (tmp_path / "taken.csv").mkdir()
    folder = score_command(good, tmp_path / "taken.csv")
    assert folder.returncode == 2 and "is a folder" in folder.stderr
    nowhere = score_command(good, tmp_path / "missing" / "out.csv")
    assert nowhere.returncode == 2 and "cannot write in" in nowhere.stderr
    for result in (wrong_column, itself, folder, nowhere):
        assert "Traceback" not in result.stderr


def test_a_second_run_on_the_same_output_is_refused_while_the_first_runs(tmp_path):
    good = archive(tmp_path, TWEETS[:3])
    output = tmp_path / "out.csv"
    work = tmp_path / "out.csv.partial"
    work.mkdir()
    with (work / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the first run holds it
        second = score_command(good, output)
    assert second.returncode == 2 and "another run writes out.csv" in second.stderr
    assert score_command(good, output).returncode == 0 and len(read_csv(output)) == 3


def test_workers_end_when_their_parent_is_killed(tmp_path):
    many = archive(tmp_path, [{"text": row["text"]} for row in TWEETS] * 200)
    command = subprocess.Popen(
        [sys.executable, "-m", "tweet_sentiment", "score", str(many), str(tmp_path / "o.csv"), "--workers", "2"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    parent = psutil.Process(command.pid)
    deadline = time.monotonic() + 60
    while len(parent.children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = parent.children(recursive=True)
    assert len(workers) >= 2
    command.kill()
    command.wait()
    gone, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, [worker.cmdline() for worker in alive]
