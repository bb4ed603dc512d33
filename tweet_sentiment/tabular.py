"""The rows of an archive file (CSV or JSON Lines), read and written so that no file crashes a job, loses data
silently or attacks the person who opens the output. The score command and the blob job both read and write
through here.

Reading never raises for a row: a row that cannot be read comes out with its `error` (it is not scored), a row
read with a change (characters that were not UTF-8, numbers JSON cannot carry, a quote never closed) with a
`warnings` entry that says what changed. An input column named like an answer's column (`label`, `error`, ...)
is kept as `input_label`; a repeated or empty header name gets its position. What the reader did to the file
is counted in `Notes`, for the report. Only a file that is not a table at all (no header, more than
MAX_COLUMNS columns) is refused as a whole (`FileRefused`).

Writing CSV neutralises cells a spreadsheet would run as a formula (OWASP, "CSV injection"): a text cell that
starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, unless it is a plain number.
Tweets start with `@` all the time: in CSV they read `'@united ...`. JSON Lines and Parquet are left as they are.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from typing import IO, Any, TextIO

from .labels import LABELS

SCORE_COLUMNS = [
    "label",
    *(f"score_{label}" for label in LABELS),
    "reason",  # a negative tweet's complaint reason, when the model has a reason head
    "reason_score",
    "model_version",
    "language",
    "warnings",
    "error",
]
NUMBER_COLUMNS = {f"score_{label}" for label in LABELS} | {"reason_score"}
Row = dict[str, Any]

MAX_COLUMNS = 512  # wider files are refused: a chunk of them would not fit in a worker's memory
MAX_ROW_CHARS = 65_536  # one row; a tweet is at most MAX_TWEET_CHARS (1,000)
MAX_ROW_LINES = 64  # one CSV record: a quote that is never closed would otherwise swallow the rest of the file
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
SURROGATE = re.compile("[\ud800-\udfff]")
NOT_UTF8 = "characters that are not UTF-8 replaced by U+FFFD (save the file as UTF-8)"
NOT_JSON_NUMBER = "numbers JSON cannot carry (NaN, Infinity, 1e999) written as null"
csv.field_size_limit(4 * MAX_ROW_CHARS)  # our own limit comes first and is reported; the module's would raise


class FileRefused(ValueError):
    """The file is not a table this job can read; the message says why and what to do."""


@dataclasses.dataclass
class Notes:
    """What reading did to the file, for the report."""

    renamed_columns: dict[str, str] = dataclasses.field(default_factory=dict)  # input name -> output name
    changes: Counter[str] = dataclasses.field(default_factory=Counter)  # what changed -> rows
    unreadable_rows: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "renamed_columns": self.renamed_columns,
            "rows_changed_when_read": dict(self.changes),
            "rows_unreadable": self.unreadable_rows,
        }


# ------------------------------------------------------------------ text


def text_stream(binary: IO[bytes]) -> TextIO:
    """A file's text: UTF-8 with or without a byte order mark, any line ends (old Mac CR-only files included);
    bytes that are not UTF-8 are kept as lone surrogates, replaced and reported row by row."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline=None)


class ChunkStream(io.RawIOBase):
    """A binary stream over an iterator of byte chunks (a blob being downloaded)."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


@dataclasses.dataclass
class _Line:
    number: int
    text: str | None  # None: longer than MAX_ROW_CHARS, skipped


class _Lines:
    """The physical lines of a text, each bounded in memory, with the lines of the current CSV record held
    back so that a record that grows too long can be read again line by line."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self._number = 0
        self._pushed: deque[_Line] = deque()
        self.record: list[_Line] = []

    def read(self) -> _Line | None:
        if self._pushed:
            return self._pushed.popleft()
        text = self._stream.readline(MAX_ROW_CHARS + 1)
        if not text:
            return None
        self._number += 1
        if len(text) > MAX_ROW_CHARS and not text.endswith("\n"):
            while (rest := self._stream.readline(MAX_ROW_CHARS)) and not rest.endswith("\n"):
                pass  # the rest of a line too long to keep
            return _Line(self._number, None)
        return _Line(self._number, text)

    def push_back(self, lines: list[_Line]) -> None:
        self._pushed.extendleft(reversed(lines))

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self.read()
        if line is None:
            raise StopIteration
        self.record.append(line)
        chars = sum(len(held.text or "") for held in self.record)
        if line.text is None or len(self.record) > MAX_ROW_LINES or chars > MAX_ROW_CHARS:
            raise _RecordTooLong
        return line.text


class _RecordTooLong(Exception):
    pass


# ------------------------------------------------------------------ reading


def read(stream: TextIO, kind: str, notes: Notes) -> Iterator[Row]:
    """The rows of a CSV or JSON Lines text, streamed."""
    if kind == "csv":
        return _csv_rows(_Lines(stream), notes)
    return _json_rows(_Lines(stream), notes)


def output_name(name: str, taken: set[str], position: int, notes: Notes) -> str:
    """An input column's name in the output: an answer's column name, a repeated or an empty name changes."""
    new = name
    if not new:
        new = f"column_{position}"
    if new in SCORE_COLUMNS:
        new = "input_" + new
    while new in taken or new in SCORE_COLUMNS:
        new = f"{new}_{position}"
    if new != name:
        notes.renamed_columns[name if name not in notes.renamed_columns else f"{name} (column {position})"] = new
    taken.add(new)
    return new


def _csv_rows(lines: _Lines, notes: Notes) -> Iterator[Row]:
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise FileRefused("the file is empty: a CSV needs a header line naming its columns") from None
    except (_RecordTooLong, csv.Error) as error:
        raise FileRefused(f"the header line cannot be read ({error or 'too long'})") from None
    if len(header) > MAX_COLUMNS:
        raise FileRefused(f"{len(header)} columns: at most {MAX_COLUMNS} are read; keep the columns you need")
    taken: set[str] = set()
    columns = [output_name(name, taken, position, notes) for position, name in enumerate(header, start=1)]
    while True:
        lines.record = []
        try:
            cells = next(reader)
        except StopIteration:
            return
        except _RecordTooLong:
            yield from _reread(lines, columns, notes)
            continue
        except csv.Error as error:
            notes.unreadable_rows += 1
            yield {"error": f"line {lines.record[0].number if lines.record else '?'}: {error}"}
            continue
        if not cells:
            continue
        if len(cells) != len(columns) and len(lines.record) > 1:  # a stray quote joined lines: read them again
            yield from _reread(lines, columns, notes)
            continue
        yield _csv_row(columns, cells, lines.record[0].number, notes)


def _csv_row(columns: list[str], cells: list[str], number: int, notes: Notes, warning: str = "") -> Row:
    row = _cleaned(dict(zip(columns, cells, strict=False)), notes, [warning] if warning else [])
    if len(cells) != len(columns):  # its cells cannot be matched to the columns: kept, never scored
        notes.unreadable_rows += 1
        return {**row, "error": f"line {number}: {len(cells)} cells where the header has {len(columns)}"}
    return row


def _reread(lines: _Lines, columns: list[str], notes: Notes) -> Iterator[Row]:
    """A record that grew past MAX_ROW_LINES or MAX_ROW_CHARS, or whose lines joined into the wrong number of
    cells: its first line alone (a line too long to hold is an
    unreadable row; a line with a quote never closed is read with its quotes as they are), then the lines after
    it again, as the start of new records."""
    first, rest = lines.record[0], lines.record[1:]
    lines.push_back(rest)
    if first.text is None:
        notes.unreadable_rows += 1
        yield {"error": f"line {first.number}: longer than {MAX_ROW_CHARS} characters; not read"}
        return
    cells = next(csv.reader([first.text], quoting=csv.QUOTE_NONE), [])
    notes.changes["a quote never closed: read as it is"] += 1
    yield _csv_row(columns, cells, first.number, notes, f"line {first.number}: a quote never closed, read as it is")


def _json_rows(lines: _Lines, notes: Notes) -> Iterator[Row]:
    while (line := lines.read()) is not None:
        if line.text is None:
            notes.unreadable_rows += 1
            yield {"error": f"line {line.number}: longer than {MAX_ROW_CHARS} characters; not read"}
            continue
        if not line.text.strip():
            continue
        try:
            value = json.loads(line.text)
        except (ValueError, RecursionError):  # RecursionError: a line nested thousands deep
            value = None
        if not isinstance(value, dict):
            notes.unreadable_rows += 1
            yield {"error": f"line {line.number} is not a JSON object"}
            continue
        if len(value) > MAX_COLUMNS:
            notes.unreadable_rows += 1
            yield {"error": f"line {line.number}: {len(value)} fields; at most {MAX_COLUMNS} are read"}
            continue
        taken: set[str] = set()
        row = {
            output_name(str(key), taken, position, notes): item for position, (key, item) in enumerate(value.items(), 1)
        }
        yield _cleaned(row, notes, [])


def _cleaned(row: Row, notes: Notes, warnings: list[str]) -> Row:
    """The row with what its output cannot carry replaced, and a warning that says so."""
    changes: set[str] = set()
    cleaned = {key: _clean(value, changes) for key, value in row.items()}
    for change in sorted(changes):
        notes.changes[change] += 1
    warnings = [*warnings, *sorted(changes)]
    return {**cleaned, "warnings": "; ".join(warnings)} if warnings else cleaned


def _clean(value: Any, changes: set[str]) -> Any:
    if isinstance(value, str):
        if SURROGATE.search(value):
            changes.add(NOT_UTF8)
            return SURROGATE.sub("\ufffd", value)
        return value
    if isinstance(value, float) and not math.isfinite(value):
        changes.add(NOT_JSON_NUMBER)
        return None
    if isinstance(value, list):
        return [_clean(item, changes) for item in value]
    if isinstance(value, dict):
        return {_clean(key, changes): _clean(item, changes) for key, item in value.items()}
    return value


# ------------------------------------------------------------------ writing


def neutralised(value: Any) -> Any:
    """A cell as CSV may carry it to a spreadsheet: a formula-like text gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not NUMBER.fullmatch(value):
        return "'" + value
    return value


def text_of_rows(rows: Iterable[Row], kind: str, columns: list[str], header: bool) -> str:
    """Rows as CSV (these columns, in order, formula-like cells neutralised; the header line when asked) or JSON
    Lines (as they are)."""
    if kind == "jsonl":  # NaN from a Parquet input becomes null: JSON has no such number
        return "".join(json.dumps(_clean(row, set()), ensure_ascii=False, default=str) + "\n" for row in rows)
    stream = io.StringIO(newline="")
    writer = csv.writer(stream)
    if header:
        writer.writerow([neutralised(column) for column in columns])
    for row in rows:
        writer.writerow([neutralised("" if row.get(column) is None else row[column]) for column in columns])
    return stream.getvalue()
