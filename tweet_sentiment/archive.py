"""Archives in Blob storage: a file dropped in `tweets-in/` is scored into `tweets-out/` by the Functions app.

Each step is a queue-triggered function, so that no invocation runs long and a big file's chunks spread over
every instance the app scales out to (Azure Functions' own scale-out: the queue's length drives it):

1. `archive-files` receives Event Grid's BlobCreated event for tweets-in/NAME. The planner streams the file once
   into chunk blobs (tweets-work/KEY/ETAG/input/chunk-N.jsonl, KEY a hash of the name), writes the job's
   description and puts one message per chunk on `archive-chunks`. A second event for the same upload plans
   nothing; a file that cannot be read at all gets a report that says why; a planner that keeps failing ends in
   `archive-files-poison`, whose function writes the report.
2. `archive-chunks`: one chunk scored into .../scored/chunk-N, already in the output's format. A retried chunk
   overwrites its own part, so no row is ever written twice; the chunk that completes the set enqueues the
   assembly (a marker blob created only once decides which one).
3. `archive-chunks-poison`: the host moves a chunk that failed maxDequeueCount times (host.json) here. It is
   recorded as failed: its rows come out with an error, and the report names the chunk and why.
4. `archive-assemble`: tweets-out/NAME is committed as one block list (a header, then every part in order), so
   it appears whole or not at all, followed by tweets-out/NAME.report.html (the archive report's page) and
   tweets-out/NAME.report.json; the work blobs are then deleted. The report's figures come from the facts each
   chunk left beside its part (a few numbers a row, the text of negative tweets), read in the same pass.

A new upload under the same name is a new job (its own ETag). Every step of an older job checks the input's
ETag first and drops its work when the file was replaced; the output and report are committed only if nobody
committed them since the assembly looked (conditional on their ETags), so the newest upload's results always
win. Rows are read by tweet_sentiment/tabular.py: no row makes the job fail, CSV cells are never formulas.
Formats: CSV and JSON Lines (by extension). The tweet column is `text`, or the blob's metadata `text_column`;
the context columns are `followers`, `retweets`, ... or the metadata `followers_column`, `retweets_column`, ...;
the bad-buzz rule's margin and volume, the metadata `alert_margin_points` and `alert_minimum_volume`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import io
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient, ContentSettings
from azure.storage.queue import QueueServiceClient, TextBase64EncodePolicy

from .archive_page import page
from .archive_report import CONTEXT_FIELDS, AlertRule, ArchiveReport, Fact, FactReader, context_columns
from .model import SentimentModel
from .scoring import FORMATS, chunks_of, score_rows
from .settings import Settings
from .tabular import SCORE_COLUMNS, ChunkStream, FileRefused, Notes, Row, read, text_of_rows, text_stream

logger = logging.getLogger(__name__)

# The Functions connection name: `ArchiveStorage` (a connection string, Azurite) or, in Azure,
# `ArchiveStorage__blobServiceUri` and `ArchiveStorage__queueServiceUri` reached with the managed identity.
CONNECTION = "ArchiveStorage"
INBOX, OUTBOX, WORK = "tweets-in", "tweets-out", "tweets-work"
FILES_QUEUE, CHUNKS_QUEUE, ASSEMBLY_QUEUE = "archive-files", "archive-chunks", "archive-assemble"
POISON_SUFFIX = "-poison"  # the host's name for the queue of messages that failed maxDequeueCount times
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
SUBJECT = re.compile(rf"^/blobServices/default/containers/{INBOX}/blobs/(?P<name>.+)$")
QUOTE = '"'  # ETags come quoted; blob names and metadata take them bare
FORMATS_HERE = {suffix: kind for suffix, kind in FORMATS.items() if kind != "parquet"}  # Parquet: the Spark job
MAX_BLOB_NAME = 1024  # Azure's limit on a blob's name
REPORT_SUFFIX = ".report.json"
PAGE_SUFFIX = ".report.html"
POISONED = (FILES_QUEUE, CHUNKS_QUEUE)  # the queues whose poison messages a function reads


class ArchiveUnavailable(RuntimeError):
    """The archive storage is not configured; the message says which settings to set."""


@dataclasses.dataclass(frozen=True)
class Storage:
    """The containers and queues of the archive job, on one storage account."""

    blobs: BlobServiceClient
    queues: QueueServiceClient

    @classmethod
    def from_settings(cls, settings: Settings) -> Storage:
        if settings.archive_connection_string:
            return cls.from_connection_string(settings.archive_connection_string)
        if not (settings.archive_blob_endpoint and settings.archive_queue_endpoint):
            raise ArchiveUnavailable(
                f"archive storage is not configured: set {CONNECTION}__blobServiceUri and "
                f"{CONNECTION}__queueServiceUri (managed identity) or {CONNECTION} (Azurite, local runs)"
            )
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        return cls(
            BlobServiceClient(settings.archive_blob_endpoint, credential=credential),
            QueueServiceClient(settings.archive_queue_endpoint, credential=credential),
        )

    @classmethod
    def from_connection_string(cls, text: str) -> Storage:
        return cls(
            BlobServiceClient.from_connection_string(text),
            QueueServiceClient.from_connection_string(text),
        )

    def container(self, name: str) -> ContainerClient:
        return self.blobs.get_container_client(name)

    def enqueue(self, queue: str, message: dict[str, Any]) -> None:
        client = self.queues.get_queue_client(queue, message_encode_policy=TextBase64EncodePolicy())
        client.send_message(json.dumps(message))  # Base64: what the Functions host expects by default

    def create_all(self) -> None:
        """The containers and queues (Bicep creates them in Azure; Azurite starts empty)."""
        for name in (INBOX, OUTBOX, WORK):
            with contextlib.suppress(ResourceExistsError):
                self.container(name).create_container()
        for name in (FILES_QUEUE, CHUNKS_QUEUE, ASSEMBLY_QUEUE, *(queue + POISON_SUFFIX for queue in POISONED)):
            with contextlib.suppress(ResourceExistsError):
                self.queues.create_queue(name)


@dataclasses.dataclass(frozen=True)
class Job:
    """One uploaded file: its name in tweets-in and the ETag of the upload being scored."""

    name: str
    etag: str

    @property
    def prefix(self) -> str:
        """The job's work blobs: under a hash of the name, so that any name (1,024 characters, `..\\x`) fits."""
        return f"{hashlib.sha256(self.name.encode('utf-8', 'replace')).hexdigest()[:32]}/{self.etag.strip(QUOTE)}/"

    @property
    def address(self) -> str:
        """The name by which the blob can be reached. Storage turns `\\` into `/`, and a name such as `../x.csv`
        (uploaded as `..\\x.csv`) cannot be reached with `/` in it: a URL resolves its `..`."""
        parts = self.name.split("/")
        return "\\".join(parts) if {".", ".."} & set(parts) else self.name

    @property
    def report_name(self) -> str:
        """NAME.report.json, or, when that would pass Azure's limit, the name cut short with a hash in it."""
        return self._beside(REPORT_SUFFIX)

    @property
    def page_name(self) -> str:
        """NAME.report.html, named as the report is."""
        return self._beside(PAGE_SUFFIX)

    def _beside(self, suffix: str) -> str:
        if len(self.address) + len(suffix) <= MAX_BLOB_NAME:
            return self.address + suffix
        digest = hashlib.sha256(self.name.encode("utf-8", "replace")).hexdigest()[:16]
        return f"{self.address[: MAX_BLOB_NAME - len(suffix) - 17]}~{digest}{suffix}"

    def is_current(self, storage: Storage) -> bool:
        """Whether the input is still the upload this job scores (not replaced, not deleted)."""
        try:
            properties = storage.container(INBOX).get_blob_client(self.address).get_blob_properties()
        except ResourceNotFoundError:
            return False
        return bool(properties.etag.strip(QUOTE) == self.etag.strip(QUOTE))

    def blob(self, part: str) -> str:
        return self.prefix + part

    def message(self, **extra: Any) -> dict[str, Any]:
        return {"name": self.name, "etag": self.etag, **extra}


def _chunk_blob(kind: str, index: int) -> str:
    return f"{kind}/chunk-{index:07d}.jsonl"


def _read_json(container: ContainerClient, name: str) -> Any | None:
    try:
        return json.loads(container.download_blob(name).readall())
    except ResourceNotFoundError:
        return None


def _write_json(container: ContainerClient, name: str, value: Any) -> None:
    container.upload_blob(name, json.dumps(value, ensure_ascii=False), overwrite=True)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# ------------------------------------------------------------------ 1. plan


def job_of_event(event: dict[str, Any]) -> Job | None:
    """The job an Event Grid BlobCreated event announces, or None for an event about anything else."""
    match = SUBJECT.match(str(event.get("subject", "")))
    if event.get("eventType") != BLOB_CREATED or not match:
        return None
    return Job(match["name"], str((event.get("data") or {}).get("eTag", "")))


def plan(storage: Storage, event: dict[str, Any], settings: Settings) -> int:
    """Split the announced file into chunks and queue them; returns how many chunks (0: nothing to do). A
    failure is recorded for the report and raised again, so that the host retries the planning."""
    announced = job_of_event(event)
    if announced is None:
        logger.warning("archive: ignored an event that is not a blob created in %s", INBOX)
        return 0
    try:
        return _plan(storage, announced, settings)
    except Exception as error:
        _write_json(storage.container(WORK), announced.blob("attempts/plan.json"), {"error": _reason(error)})
        raise


def _plan(storage: Storage, announced: Job, settings: Settings) -> int:
    source = storage.container(INBOX).get_blob_client(announced.address)
    try:
        properties = source.get_blob_properties()
    except ResourceNotFoundError:
        logger.warning("archive: %s was deleted before it could be scored", announced.name)
        return 0
    job = Job(announced.name, properties.etag)  # the file as it is now: a later upload is its own job
    work = storage.container(WORK)
    planned = _read_json(work, job.blob("job.json"))
    if planned is not None or _reported(storage, job):  # a second event for this upload, or a retry
        if planned is not None and not planned.get("queued"):
            _queue_chunks(storage, job, planned)  # the earlier planning stopped before its messages
        return 0
    kind = FORMATS_HERE.get("." + job.name.rsplit(".", 1)[-1].lower()) if "." in job.name else None
    if kind is None:
        _report(storage, job, {"error": "unknown format: name the file .csv or .jsonl (JSON Lines)"})
        return 0
    metadata = properties.metadata or {}
    text_column = metadata.get("text_column", "text")
    if not text_column.strip():
        _report(storage, job, {"error": "the blob's metadata text_column is empty: name the tweet column"})
        return 0
    try:
        rule = _rule_of(metadata)
    except ValueError as error:
        _report(storage, job, {"error": str(error)})
        return 0
    context = context_columns({field: metadata.get(f"{field}_column") for field in CONTEXT_FIELDS})
    download = source.download_blob(etag=properties.etag, match_condition=MatchConditions.IfNotModified)
    notes = Notes()
    columns: dict[str, None] = {}
    chunks = rows = 0
    try:
        stream = text_stream(io.BufferedReader(ChunkStream(download.chunks())))
        for chunk in chunks_of(read(stream, kind, notes), settings.archive_chunk_tweets):
            for row in chunk:
                columns.update(dict.fromkeys(key for key in row if key not in SCORE_COLUMNS))
            work.upload_blob(job.blob(_chunk_blob("input", chunks)), _jsonl(chunk), overwrite=True)
            chunks, rows = chunks + 1, rows + len(chunk)
    except FileRefused as refused:
        _drop_work(storage, job)
        _report(storage, job, {"error": f"the file cannot be read: {refused}"})
        return 0
    if rows and text_column not in columns:
        _drop_work(storage, job)
        _report(
            storage,
            job,
            {
                "error": f"no column {text_column!r}; the file's columns are {list(columns)[:20]}: name the tweet "
                "column in the blob's metadata text_column"
            },
        )
        return 0
    description = {
        **job.message(),
        "format": kind,
        "text_column": text_column,
        "context_columns": context,
        "alert_rule": dataclasses.asdict(rule),
        "columns": [*columns, *SCORE_COLUMNS],
        "chunks": chunks,
        "rows": rows,
        "reading": notes.summary(),
        "planned_at": _now(),
        "queued": False,
    }
    try:  # created once: of two planners of the same upload, one queues the chunks
        work.upload_blob(job.blob("job.json"), json.dumps(description, ensure_ascii=False), overwrite=False)
    except ResourceExistsError:
        return 0
    _queue_chunks(storage, job, description)
    logger.info("archive: %s planned, %d rows in %d chunks", job.name, rows, chunks)
    return chunks


def _rule_of(metadata: dict[str, str]) -> AlertRule:
    """The bad-buzz rule the report judges hours by: the deployed defaults, or the blob's metadata."""
    rule = AlertRule()
    try:
        margin = float(metadata.get("alert_margin_points", rule.margin_points))
        volume = int(metadata.get("alert_minimum_volume", rule.minimum_volume))
    except ValueError:
        raise ValueError(
            "the blob's metadata alert_margin_points and alert_minimum_volume must be numbers (e.g. 15 and 50)"
        ) from None
    if not (0 < margin <= 100 and volume >= 1):
        raise ValueError("the blob's metadata alert_margin_points must be in (0, 100], alert_minimum_volume >= 1")
    return AlertRule(margin, volume)


def _queue_chunks(storage: Storage, job: Job, description: dict[str, Any]) -> None:
    for index in range(description["chunks"]):
        storage.enqueue(CHUNKS_QUEUE, job.message(chunk=index))
    if description["chunks"] == 0:
        storage.enqueue(ASSEMBLY_QUEUE, job.message())
    _write_json(storage.container(WORK), job.blob("job.json"), {**description, "queued": True})


def _reported(storage: Storage, job: Job) -> bool:
    """Whether this upload already has its report (the job ran to its end)."""
    report = _read_json(storage.container(OUTBOX), job.report_name) or {}
    return bool(report.get("input_etag") == job.etag.strip(QUOTE))


def file_failed(storage: Storage, event: dict[str, Any]) -> None:
    """A file the planner gave up on (the files poison queue): its report says why, so no file vanishes."""
    job = job_of_event(event)
    if job is None:
        return
    last = _read_json(storage.container(WORK), job.blob("attempts/plan.json")) or {"error": "unknown (see the logs)"}
    _drop_work(storage, job)
    _report(storage, job, {"error": f"the file could not be planned: {last['error']}; drop it again to retry"})


def _description(storage: Storage, message: dict[str, Any]) -> tuple[Job, dict[str, Any]] | None:
    """The job a chunk or assembly message belongs to, or None when that job is gone (a newer upload, or
    already assembled): the message is then dropped, and a replaced job's work with it."""
    job = Job(str(message["name"]), str(message["etag"]))
    description = _read_json(storage.container(WORK), job.blob("job.json"))
    if description is None:
        logger.info("archive: dropped a message of %s: its job is finished or replaced", job.name)
        return None
    if not job.is_current(storage):
        logger.info("archive: dropped the job of %s: the file was replaced or deleted", job.name)
        _drop_work(storage, job)
        return None
    return job, description


# ------------------------------------------------------------------ 2. chunks


def score_chunk(
    storage: Storage, message: dict[str, Any], model: Callable[[], SentimentModel], settings: Settings
) -> None:
    """Score one chunk into its part (overwritten by a retry); the last part done enqueues the assembly. A
    failure is recorded for the report and raised again, so that the host retries the chunk."""
    found = _description(storage, message)
    if found is None:
        return
    job, description = found
    index = int(message["chunk"])
    work = storage.container(WORK)
    try:
        rows = _input_rows(work, job, index)
        served = model()
        context = description.get("context_columns") or context_columns()
        scored = score_rows(served, rows, description["text_column"], settings, context)
        errors = sum(bool(row["error"]) for row in scored)
        part = text_of_rows(scored, description["format"], description["columns"], header=False)
        metadata = {"rows": str(len(rows)), "errors": str(errors), "model_version": served.manifest.version}
        reader = FactReader(description["text_column"], context, tuple(served.manifest.languages))
        facts = "".join(json.dumps(reader.fact(row).as_list(), ensure_ascii=False) + "\n" for row in scored)
        work.upload_blob(job.blob(_chunk_blob("facts", index)), facts, overwrite=True)  # before the part it serves
        work.upload_blob(job.blob(_chunk_blob("scored", index)), part, overwrite=True, metadata=metadata)
    except Exception as error:
        _write_json(work, job.blob(_chunk_blob("attempts", index)), {"error": _reason(error), "at": _now()})
        raise
    _assemble_when_complete(storage, job, description)


def _jsonl(rows: list[Row]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def _input_rows(work: ContainerClient, job: Job, index: int) -> list[Row]:
    """The rows of one chunk as the planner wrote them (already read and cleaned: JSON of our own)."""
    text = work.download_blob(job.blob(_chunk_blob("input", index))).readall().decode("utf-8")
    return [json.loads(line) for line in text.split("\n") if line]  # not splitlines(): U+2028 is in tweets


def chunk_failed(storage: Storage, message: dict[str, Any]) -> None:
    """A chunk the host gave up on (the poison queue): recorded as failed, so the job still completes."""
    found = _description(storage, message)
    if found is None:
        return
    job, description = found
    index = int(message["chunk"])
    work = storage.container(WORK)
    last = _read_json(work, job.blob(_chunk_blob("attempts", index))) or {"error": "unknown (see the logs)"}
    _write_json(work, job.blob(_chunk_blob("failed", index)), {"chunk": index, "error": last["error"]})
    logger.error("archive: %s chunk %d failed for good: %s", job.name, index, last["error"])
    _assemble_when_complete(storage, job, description)


def _finished_chunks(work: ContainerClient, job: Job) -> set[int]:
    done = set()
    for kind in ("scored", "failed"):
        for blob in work.list_blobs(name_starts_with=job.blob(kind + "/")):
            done.add(int(blob.name.rsplit("chunk-", 1)[1].split(".")[0]))
    return done


def _assemble_when_complete(storage: Storage, job: Job, description: dict[str, Any]) -> None:
    # Each part is written before this check, so the part that completes the set always sees the whole set.
    work = storage.container(WORK)
    if len(_finished_chunks(work, job)) < description["chunks"]:
        return
    try:
        work.upload_blob(job.blob("complete"), b"", overwrite=False)  # created once: one assembly per job
    except ResourceExistsError:
        return
    storage.enqueue(ASSEMBLY_QUEUE, job.message())


# ------------------------------------------------------------------ 4. assembly


def assemble(storage: Storage, message: dict[str, Any]) -> dict[str, Any] | None:
    """Commit the output (header, then every chunk in order: scored, or its rows with the failure as their
    error), write the report and delete the work blobs. Returns the report, or None when the job was dropped
    (finished already, or its file replaced: the newer upload's results are never overwritten)."""
    outbox = storage.container(OUTBOX)
    named = Job(str(message["name"]), "")
    name, report_name, page_name = named.address, named.report_name, named.page_name
    output_seen, report_seen = _etag_of(outbox, name), _etag_of(outbox, report_name)
    page_seen = _etag_of(outbox, page_name)
    found = _description(storage, message)  # after looking at the outputs: a newer job's commit changes them
    if found is None:
        return None
    job, description = found
    work, output = storage.container(WORK), outbox.get_blob_client(name)
    kind, columns = description["format"], description["columns"]
    blocks: list[Any] = []
    if kind == "csv":
        blocks.append(_stage(output, len(blocks), text_of_rows([], "csv", columns, header=True)))
    rows = errors = 0
    versions: set[str] = set()
    failed = []
    figures = ArchiveReport(AlertRule(**description["alert_rule"])) if "alert_rule" in description else ArchiveReport()
    for index in range(description["chunks"]):
        scored = work.get_blob_client(job.blob(_chunk_blob("scored", index)))
        try:
            part = scored.download_blob()
            text = part.readall().decode("utf-8")
            metadata = part.properties.metadata
            rows, errors = rows + int(metadata["rows"]), errors + int(metadata["errors"])
            versions.add(metadata["model_version"])
            _add_facts(figures, work, job, index)
        except ResourceNotFoundError:
            reason = (_read_json(work, job.blob(_chunk_blob("failed", index))) or {}).get("error", "unknown")
            failed.append({"chunk": index, "error": reason})
            text, count = _unscored(work, job, index, description, reason)
            rows, errors = rows + count, errors + count
            for _ in range(count):
                figures.add(Fact(label=None))
        blocks.append(_stage(output, len(blocks), text))
    report = {
        "file": job.name,
        "input_etag": job.etag.strip(QUOTE),
        "output": f"{OUTBOX}/{job.name}",
        "rows": rows,
        "rows_with_error": errors,
        "chunks": description["chunks"],
        "failed_chunks": failed,
        "reading": {**description.get("reading", {}), **figures.reading()},
        "model_versions": sorted(versions),
        "planned_at": description["planned_at"],
        "finished_at": _now(),
        "status": "complete" if not failed else "complete with failed chunks: drop the file again to retry them",
        "page": f"{OUTBOX}/{page_name}",
        **{key: value for key, value in figures.figures().items() if key not in ("rows", "rows_with_error")},
    }
    try:
        output.commit_block_list(blocks, metadata={"job_etag": job.etag.strip(QUOTE)}, **_unchanged_since(output_seen))
        html = page(report, job.name).encode("utf-8")
        settings = ContentSettings(content_type="text/html; charset=utf-8")
        outbox.upload_blob(page_name, html, overwrite=True, content_settings=settings, **_unchanged_since(page_seen))
        body = json.dumps(report, ensure_ascii=False)
        outbox.upload_blob(report_name, body, overwrite=True, **_unchanged_since(report_seen))
    except (ResourceModifiedError, ResourceExistsError):
        logger.info("archive: %s was committed by a newer upload's job: this one is dropped", job.name)
        _drop_work(storage, job)
        return None
    _drop_work(storage, job)
    logger.info("archive: %s scored, %d rows, %d failed chunks", job.name, rows, len(failed))
    return report


def _add_facts(figures: ArchiveReport, work: ContainerClient, job: Job, index: int) -> None:
    """A scored chunk's rows into the report, from the facts its scoring left (written before its part)."""
    try:
        text = work.download_blob(job.blob(_chunk_blob("facts", index))).readall().decode("utf-8")
    except ResourceNotFoundError:  # a chunk scored by a version before the report: its rows are not in the figures
        logger.warning("archive: %s chunk %d has no facts: the report's figures leave its rows out", job.name, index)
        return
    for line in text.split("\n"):  # not splitlines(): U+2028 is in tweets
        if line:
            figures.add(Fact.of_list(json.loads(line)))


def _etag_of(container: ContainerClient, name: str) -> str | None:
    try:
        return str(container.get_blob_client(name).get_blob_properties().etag)
    except ResourceNotFoundError:
        return None


def _unchanged_since(etag: str | None) -> dict[str, Any]:
    """The condition that a blob is as it was seen: the same ETag, or still absent."""
    if etag is None:
        return {"match_condition": MatchConditions.IfMissing}
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


def _drop_work(storage: Storage, job: Job) -> None:
    """The job's work blobs, job.json last: a message that arrives later finds the job gone and stops."""
    work = storage.container(WORK)
    for blob in work.list_blobs(name_starts_with=job.prefix):
        if not blob.name.endswith("/job.json"):
            with contextlib.suppress(ResourceNotFoundError):
                work.delete_blob(blob.name)
    with contextlib.suppress(ResourceNotFoundError):
        work.delete_blob(job.blob("job.json"))


def _stage(output: Any, number: int, text: str) -> Any:
    from azure.storage.blob import BlobBlock

    block_id = f"{number:08d}"
    output.stage_block(block_id, text.encode("utf-8"))
    return BlobBlock(block_id=block_id)


def _unscored(work: ContainerClient, job: Job, index: int, description: dict[str, Any], reason: str) -> tuple[str, int]:
    """A failed chunk's rows, in the output's format, each with the failure as its error: no silent gap."""
    rows = [
        {**row, **dict.fromkeys(SCORE_COLUMNS), "error": f"this part of the file could not be scored ({reason})"}
        for row in _input_rows(work, job, index)
    ]
    return text_of_rows(rows, description["format"], description["columns"], header=False), len(rows)


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:500]


# ------------------------------------------------------------------ dropping a file (python -m tweet_sentiment archive)


def put(storage: Storage, path: Path, metadata: dict[str, str], timeout: float) -> tuple[Job, dict[str, Any]]:
    """Drop a file in tweets-in as a user does, and wait for its report; the job and the report."""
    storage.create_all()
    with path.open("rb") as data:
        uploaded = storage.container(INBOX).upload_blob(path.name, data, overwrite=True, metadata=metadata)
    job = Job(path.name, uploaded.get_blob_properties().etag)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = _read_json(storage.container(OUTBOX), job.report_name) or {}
        if report.get("input_etag") == job.etag.strip(QUOTE):
            return job, report
        time.sleep(0.5)
    raise TimeoutError(f"no report for {path.name} within {timeout:.0f} s: is the app (make serve) running?")


def _report(storage: Storage, job: Job, report: dict[str, Any]) -> None:
    """The report of a file that is not scored: why, and what to do."""
    body = {"file": job.name, "input_etag": job.etag.strip(QUOTE), "status": "not scored", **report}
    _write_json(storage.container(OUTBOX), job.report_name, body)
    logger.warning("archive: %s not scored: %s", job.name, report.get("error"))
