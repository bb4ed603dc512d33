"""Scoring a whole archive of tweets (CSV, JSON Lines or Parquet) with the served model, in constant memory.

The input is read in chunks; each scored chunk is written atomically to a work folder beside the output
(`OUTPUT.partial/`), so an interrupted job, run again, scores only the chunks it lacks. The output is assembled
from the chunks into a temporary file and renamed into place: it is whole or absent, never partial. A row that
cannot be scored gets its `error` and no label; the job never fails for a row (tweet_sentiment/tabular.py reads
and writes the rows). With `workers` > 1, chunks are scored by that many processes, each with its own model, at
most two chunks each in flight; a worker ends when its parent does, however the parent ends.

Everything that can be checked before scoring is: the input exists and names the tweet column, the output is a
writable file that is not the input, Parquet has pyarrow, no other run writes the same output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from .archive_report import BAD_BUZZ, AlertRule, ArchiveReport, FactReader, context_columns, context_of
from .labels import LABELS
from .manifest import Manifest, sha256_of
from .model import SentimentModel
from .settings import Settings
from .tabular import SCORE_COLUMNS, FileRefused, Notes, Row, read, text_of_rows, text_stream
from .tweets import BadRequest, checked_tweet

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
CHUNK_CHARS = 4_000_000  # a chunk closes at this many characters of values, whatever its row count


class ScoringError(RuntimeError):
    """The job cannot run (unknown format, missing file, Parquet without pyarrow); the message says what to do."""


def file_format(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise ScoringError(f"{path.name}: unknown format; name it .csv, .jsonl (JSON Lines) or .parquet") from None


def _pyarrow() -> Any:
    try:
        import pyarrow.parquet
    except ImportError:
        raise ScoringError(
            "Parquet needs pyarrow. Fix: pip install pyarrow==25.0.1 (or use CSV or JSON Lines)"
        ) from None
    return pyarrow.parquet


def read_rows(path: Path, notes: Notes | None = None) -> Iterator[Row]:
    """The input's rows, streamed (CSV and JSON Lines through tabular.read: never raises for a row)."""
    kind = file_format(path)
    if kind == "parquet":
        for batch in _pyarrow().ParquetFile(path).iter_batches(batch_size=1000):
            yield from batch.to_pylist()
        return
    with path.open("rb") as binary, text_stream(binary) as stream:
        yield from read(stream, kind, notes or Notes())


def input_columns(path: Path) -> list[str]:
    """The columns of the input, from its header (CSV), its schema (Parquet) or its first 1,000 rows."""
    if file_format(path) == "parquet":
        return list(_pyarrow().ParquetFile(path).schema_arrow.names)
    columns: dict[str, None] = {}
    for index, row in enumerate(read_rows(path)):
        columns.update(dict.fromkeys(key for key in row if key not in SCORE_COLUMNS))
        if index == 1000:
            break
    return list(columns)


def count_rows(path: Path) -> int:
    """How many rows the input holds, for the progress bar's ETA (a fast pass; Parquet: its metadata)."""
    if file_format(path) == "parquet":
        return int(_pyarrow().ParquetFile(path).metadata.num_rows)
    return sum(1 for _ in read_rows(path))


def score_rows(
    model: SentimentModel,
    rows: list[Row],
    text_column: str,
    settings: Settings,
    context: Mapping[str, str] | None = None,
) -> list[Row]:
    """Every input column kept, plus the answer's columns; a row that cannot be scored gets only `error`. With
    `context` (field -> column), a row whose context is invalid is scored, with a warning that it is ignored."""
    texts: list[str | None] = []
    errors: list[str] = []
    for row in rows:
        try:
            if row.get("error"):  # a row the reader could not read
                raise BadRequest(str(row["error"]))
            if row.get(text_column) is None:
                raise BadRequest(f"column '{text_column}' is missing")
            texts.append(checked_tweet(row[text_column], f"'{text_column}'", settings))
            errors.append("")
        except BadRequest as error:
            texts.append(None)
            errors.append(str(error).replace("field ", "column ", 1))
    predictions = iter(model.predict([text for text in texts if text is not None]))
    version = model.manifest.version
    scored = []
    for row, text, reason in zip(rows, texts, errors, strict=True):
        out = {key: value for key, value in row.items() if key not in SCORE_COLUMNS}
        empty = dict.fromkeys(SCORE_COLUMNS, None)
        read_warnings = [row["warnings"]] if row.get("warnings") else []  # what reading the row changed
        ignored = context_of(row, context)[1] if context and text is not None else ""
        if text is None:
            unscored = {"model_version": version, "warnings": "; ".join(read_warnings), "error": reason}
            scored.append({**out, **empty, **unscored})
            continue
        prediction = next(predictions)
        scores = {f"score_{label}": prediction.scores[label] for label in LABELS}
        scored.append(
            {
                **out,
                **empty,
                "label": prediction.label,
                **scores,
                "reason": prediction.reason.label if prediction.reason else None,
                "reason_score": prediction.reason.score if prediction.reason else None,
                "model_version": version,
                "language": prediction.language,
                "warnings": "; ".join([*read_warnings, *prediction.warnings, *([ignored] if ignored else [])]),
                "error": "",
            }
        )
    return scored


# ------------------------------------------------------------------ worker processes

_worker: tuple[SentimentModel, Settings] | None = None


def _start_worker(manifest_path: str) -> None:
    global _worker
    parent = os.getppid()
    threading.Thread(target=_end_with, args=(parent,), daemon=True).start()
    _worker = (SentimentModel.load(Path(manifest_path), intra_op_threads=1), Settings.from_environment())


def _end_with(parent: int) -> None:
    """A worker whose parent is gone (killed: no shutdown reached it) ends instead of holding its memory and the
    caller's pipes as an orphan."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _score_in_worker(rows: list[Row], text_column: str, context: Mapping[str, str]) -> list[Row]:
    assert _worker is not None  # set by _start_worker
    model, settings = _worker
    return score_rows(model, rows, text_column, settings, context)


# ------------------------------------------------------------------ the job


@dataclasses.dataclass(frozen=True)
class Job:
    input: Path
    output: Path
    manifest: Path
    text_column: str = "text"
    chunk_size: int = 1000
    workers: int = 1
    context_columns: tuple[tuple[str, str], ...] = tuple(context_columns().items())  # field -> column
    report: bool = True  # the archive report's figures, built in the pass that writes the output
    rule: AlertRule = BAD_BUZZ

    @property
    def work_folder(self) -> Path:
        return self.output.with_name(self.output.name + ".partial")

    def identity(self) -> dict[str, Any]:
        """What a resumed job must share with the interrupted one: the same input, model and chunking."""
        stat = self.input.stat()
        return {
            "input": self.input.name,
            "input_bytes": stat.st_size,
            "input_mtime_ns": stat.st_mtime_ns,
            "model_sha256": sha256_of(self.manifest),
            "text_column": self.text_column,
            "context_columns": dict(self.context_columns),  # an ignored context's warning is in the chunks
            "chunk_size": self.chunk_size,
        }


def chunks_of(rows: Iterator[Row], size: int, max_chars: int = CHUNK_CHARS) -> Iterator[list[Row]]:
    """The rows in lists of `size` rows or `max_chars` characters of values, whichever comes first, streamed:
    memory stays bounded however wide the rows are."""
    chunk: list[Row] = []
    chars = 0
    for row in rows:
        chunk.append(row)
        chars += sum(len(value) if isinstance(value, str) else 8 for value in row.values())
        if len(chunk) == size or chars >= max_chars:
            yield chunk
            chunk, chars = [], 0
    if chunk:
        yield chunk


def _chunk_path(folder: Path, index: int) -> Path:
    return folder / f"chunk-{index:07d}.jsonl"


def _write_chunk(folder: Path, index: int, rows: list[Row]) -> None:
    temporary = folder / f".chunk-{index:07d}.tmp"
    with temporary.open("w", encoding="utf-8") as stream:
        for row in rows:
            stream.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    os.replace(temporary, _chunk_path(folder, index))


def _prepared_work_folder(job: Job) -> int:
    """The work folder for this job; returns how many chunks an interrupted run of the same job left."""
    folder, identity = job.work_folder, job.identity()
    described = folder / "job.json"
    if not described.is_file() or json.loads(described.read_text()) != identity:
        for chunk in folder.glob("chunk-*.jsonl"):  # another input or model: its chunks do not belong to this job
            chunk.unlink()
    described.write_text(json.dumps(identity))
    return len(list(folder.glob("chunk-*.jsonl")))


def _assemble(job: Job, columns: list[str], report: ArchiveReport | None) -> int:
    """The output from the chunks, written to a temporary file and renamed into place, each row added to the
    report on the way; returns how many rows have an error."""
    kind = file_format(job.output)
    temporary = job.output.with_name(f".{job.output.name}.tmp")
    chunk_files = sorted(job.work_folder.glob("chunk-*.jsonl"))

    errors = 0
    manifest = Manifest.read(job.manifest)
    reader = FactReader(job.text_column, dict(job.context_columns), tuple(manifest.languages))

    def rows() -> Iterator[Row]:
        nonlocal errors
        for path in chunk_files:
            with path.open(encoding="utf-8") as stream:
                for line in stream:
                    row = json.loads(line)
                    errors += bool(row["error"])
                    if report is not None:
                        report.add(reader.fact(row))
                    yield row

    if kind in ("csv", "jsonl"):
        with temporary.open("w", newline="", encoding="utf-8") as stream:
            stream.write(text_of_rows([], kind, columns, header=True))
            for chunk in chunks_of(rows(), 1000):
                stream.write(text_of_rows(chunk, kind, columns, header=False))
    else:
        _write_parquet(temporary, rows(), columns)
    os.replace(temporary, job.output)
    return errors


def _write_parquet(path: Path, rows: Iterator[Row], columns: list[str]) -> None:
    import pyarrow as pa

    parquet = _pyarrow()
    writer = None
    try:
        for chunk in chunks_of(rows, 10_000):
            table = pa.Table.from_pylist([{column: row.get(column) for column in columns} for row in chunk])
            if writer is None:
                writer = parquet.ParquetWriter(path, table.schema)
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()


def check(job: Job) -> None:
    """Every mistake in the job's options that can be found before scoring, each with what to do."""
    if not job.input.is_file():
        raise ScoringError(f"{job.input} not found: pass the file of tweets to score")
    kinds = {file_format(job.input), file_format(job.output)}
    if "parquet" in kinds:
        _pyarrow()
    output = job.output.resolve()
    if output.is_dir():
        raise ScoringError(f"{job.output} is a folder: name the file to write (e.g. {job.output / 'scored.csv'})")
    if output == job.input.resolve():
        raise ScoringError("the output is the input: name another file, the input is never overwritten")
    if not output.parent.is_dir() or not os.access(output.parent, os.W_OK):
        raise ScoringError(f"cannot write in {job.output.parent}: choose a folder that exists and is writable")
    if output.exists() and not os.access(output, os.W_OK):
        raise ScoringError(f"{job.output} exists and cannot be replaced: choose another output")
    Manifest.read(job.manifest)
    try:
        columns = input_columns(job.input)
    except FileRefused as refused:
        raise ScoringError(f"{job.input.name}: {refused}") from None
    if job.text_column not in columns:
        raise ScoringError(
            f"{job.input.name} has no column {job.text_column!r}; its columns are {columns[:20]}: "
            "name the tweet column with --text-column"
        )
    for field, column in job.context_columns:
        if column != field and column not in columns:  # named by the caller: a typo would lose the context
            option = "--" + field.replace("_", "-") + "-column"
            raise ScoringError(
                f"{job.input.name} has no column {column!r} for {option}; its columns are {columns[:20]}"
            )


@contextlib.contextmanager
def _only_run_on(job: Job) -> Iterator[None]:
    """One run at a time writes an output: a second is refused instead of corrupting the first one's chunks."""
    job.work_folder.mkdir(exist_ok=True)
    with (job.work_folder / "lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ScoringError(f"another run writes {job.output.name}: wait for it, or choose another output") from None
        yield


def run(job: Job, progress: bool = True) -> dict[str, Any]:
    """Score the whole input into the output; returns a summary (rows, errors, chunks resumed, speed, what
    reading the file changed) with the archive report's figures under `report` (unless the job asks for none)."""
    check(job)
    with _only_run_on(job):
        return _run(job, progress)


def _run(job: Job, progress: bool) -> dict[str, Any]:
    from tqdm import tqdm

    resumed = _prepared_work_folder(job)
    total = count_rows(job.input)
    started = time.perf_counter()
    bar = tqdm(total=total, unit="tweet", desc="scoring", disable=not progress, file=sys.stderr, mininterval=1)
    columns: dict[str, None] = {}
    settings = Settings.from_environment()

    def record(index: int, scored: list[Row]) -> None:
        _write_chunk(job.work_folder, index, scored)
        bar.update(len(scored))

    notes = Notes()
    chunks = enumerate(chunks_of(read_rows(job.input, notes), job.chunk_size))
    model = None if job.workers > 1 else SentimentModel.load(job.manifest, intra_op_threads=1)
    pool = (
        ProcessPoolExecutor(job.workers, initializer=_start_worker, initargs=(str(job.manifest),))
        if job.workers > 1
        else None
    )
    pending: deque[tuple[int, Future[list[Row]]]] = deque()
    try:
        for index, rows in chunks:
            for row in rows:
                columns.update(dict.fromkeys(key for key in row if key not in SCORE_COLUMNS))
            if index < resumed and _chunk_path(job.work_folder, index).is_file():
                bar.update(len(rows))  # scored before the interruption
                continue
            if pool is None:
                assert model is not None
                record(index, score_rows(model, rows, job.text_column, settings, dict(job.context_columns)))
                continue
            pending.append((index, pool.submit(_score_in_worker, rows, job.text_column, dict(job.context_columns))))
            while len(pending) >= 2 * job.workers:  # bounded: memory stays flat for any input
                record(*_done(pending.popleft()))
        while pending:
            record(*_done(pending.popleft()))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        bar.close()
    report = ArchiveReport(job.rule) if job.report else None
    errors = _assemble(job, [*columns, *SCORE_COLUMNS], report)
    shutil.rmtree(job.work_folder)  # the lock file with it: the run holding it is this one
    seconds = time.perf_counter() - started
    reading = {**notes.summary(), **(report.reading() if report else {})}
    return {
        "output": str(job.output),
        "rows": total,
        "errors": errors,
        "chunks_resumed": min(resumed, -(-total // job.chunk_size)),
        "seconds": round(seconds, 2),
        "tweets_per_second": round(total / seconds, 1) if seconds else None,
        "reading": reading,
        **({"report": report.figures()} if report else {}),
    }


def _done(item: tuple[int, Future[list[Row]]]) -> tuple[int, list[Row]]:
    index, future = item
    return index, future.result()
