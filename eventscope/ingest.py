"""File ingest: NDJSON files of bus events and consumer log records into the store.

Owns recognising what each line is (an EventBridge envelope, a CloudWatch Logs record, or
something to quarantine), batching, and the run's summary. Reading files is the only I/O
besides the store; `classify_line` is pure.
"""

from __future__ import annotations

import gzip
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from eventscope.decoding import decode_object
from eventscope.errors import InputError
from eventscope.events import (DEFAULT_CORRELATION_PATHS, RejectedRecord, is_bus_event,
                               parse_bus_event)
from eventscope.lambda_logs import InvocationAssembler
from eventscope.limits import QUARANTINE_RAW_CAP
from eventscope.records import BusEvent, Invocation, Quarantined
from eventscope.store import Store, WriteResult

BATCH_ROWS = 50_000
LOG_RECORD_FIELDS: Mapping[str, type | tuple[type, ...]] = {
    "logGroupName": str, "logStreamName": str, "timestamp": int, "message": str,
}

_BLANK = b" \t"
LineItem = BusEvent | dict[str, Any] | Quarantined
EventFilter = Callable[[Sequence[BusEvent]], tuple[list[BusEvent], Any]]


@dataclass
class IngestSummary:
    """What one ingest run read, stored, found already stored, and refused."""

    lines: int = 0
    events_read: int = 0
    events_stored: int = 0
    log_records_read: int = 0
    invocations_built: int = 0
    invocations_stored: int = 0
    unattributed_invocations: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)

    @property
    def event_duplicates(self) -> int:
        return self.events_read - self.events_stored

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines, "events_read": self.events_read,
            "events_stored": self.events_stored, "event_duplicates": self.event_duplicates,
            "log_records_read": self.log_records_read,
            "invocations_built": self.invocations_built,
            "invocations_stored": self.invocations_stored,
            "invocations_already_stored": self.invocations_built - self.invocations_stored,
            "unattributed_invocations": self.unattributed_invocations,
            "quarantined": sum(self.quarantined.values()),
            "quarantined_by_reason": dict(sorted(self.quarantined.items())),
        }


def classify_line(
    raw: bytes, origin: str, line_no: int,
    correlation_paths: Sequence[str] = DEFAULT_CORRELATION_PATHS,
) -> LineItem:
    """A bus event, a log record (a dict), or the line's quarantine record."""
    try:
        record = decode_object(raw)
        if is_bus_event(record):
            return parse_bus_event(record, len(raw), correlation_paths)
        if "logGroupName" in record or "message" in record:
            return checked_log_record(record)
        raise RejectedRecord("unrecognised", "neither an EventBridge envelope nor a log record")
    except RejectedRecord as rejected:
        return quarantine_item(origin, f"line {line_no}", rejected, raw)


def checked_log_record(record: dict[str, Any]) -> dict[str, Any]:
    """The record itself when it has the CloudWatch Logs fields the parser needs."""
    if (type(record.get("logGroupName")) is str and type(record.get("logStreamName")) is str
            and type(record.get("timestamp")) is int and type(record.get("message")) is str):
        return record
    missing = [name for name, kind in LOG_RECORD_FIELDS.items()
               if not isinstance(record.get(name), kind) or isinstance(record.get(name), bool)]
    raise RejectedRecord("missing_fields", f"log record lacks {', '.join(missing)}")


def quarantine_item(origin: str, position: str, rejected: RejectedRecord, raw: bytes) -> Quarantined:
    """The quarantine record for a refused input, its raw bytes capped."""
    return Quarantined(origin=origin, position=position, reason=rejected.reason,
                       detail=str(rejected), raw=raw[:QUARANTINE_RAW_CAP])


class _Batcher:
    """Collects one ingest run's items and writes them to the store in large transactions.

    One write runs in a background thread while the next batch is parsed (SQLite and the
    drivers release the GIL while they work), and at most one write is in flight, so memory
    stays at two batches whatever the input size.
    """

    def __init__(self, store: Store, summary: IngestSummary,
                 event_filter: EventFilter | None = None) -> None:
        self.store, self.summary, self.event_filter = store, summary, event_filter
        self.events: list[BusEvent] = []
        self.invocations: list[Invocation] = []
        self.quarantined: list[Quarantined] = []
        self.assembler = InvocationAssembler()
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer")
        self.pending: Future[WriteResult] | None = None

    def add(self, item: LineItem) -> None:
        if isinstance(item, BusEvent):
            self.summary.events_read += 1
            self.events.append(item)
        elif isinstance(item, Quarantined):
            self.summary.quarantined[item.reason] += 1
            self.quarantined.append(item)
        else:
            self.summary.log_records_read += 1
            self.invocations.extend(self.assembler.feed(item))
        if len(self.events) + len(self.invocations) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Hand the collected batch to the writer once the previous write has committed."""
        self.summary.invocations_built += len(self.invocations)
        self.summary.unattributed_invocations += sum(
            1 for invocation in self.invocations if invocation.event_id is None)
        events, extra = (self.event_filter(self.events) if self.event_filter
                         else (self.events, None))  # PII redaction (collectors.pii)
        self.wait()
        self.pending = self.writer.submit(self.store.write_batch, events,
                                          self.invocations, self.quarantined, None, extra)
        self.events, self.invocations, self.quarantined = [], [], []

    def finish(self) -> None:
        """Write what is left, including invocations still open at the end of the input."""
        self.invocations.extend(self.assembler.flush())
        self.flush()
        self.wait()

    def wait(self) -> None:
        if self.pending is not None:
            written = self.pending.result()
            self.summary.events_stored += written.events
            self.summary.invocations_stored += written.invocations
            self.pending = None

    def close(self) -> None:
        self.writer.shutdown(wait=True)


def ingest_paths(
    store: Store,
    paths: Sequence[str],
    correlation_paths: Sequence[str] = DEFAULT_CORRELATION_PATHS,
    on_progress: Callable[[int], None] | None = None,
    event_filter: EventFilter | None = None,
) -> IngestSummary:
    """Ingest NDJSON files (`.gz` too, `-` for stdin) and return what happened.

    `event_filter` rewrites each batch of events before it is written and names extra rows
    to write with it (the PII redaction of `collectors.pii.redaction_filter`).
    """
    check_readable(paths)
    summary = IngestSummary()
    batcher = _Batcher(store, summary, event_filter)
    try:
        for path in paths:
            for line_no, raw in _numbered_lines(path, on_progress):
                summary.lines += 1
                batcher.add(classify_line(raw, path, line_no, correlation_paths))
        batcher.finish()
    finally:
        batcher.close()
    store.refresh_rollups()  # overview pages then read current rollups
    return summary


def check_readable(paths: Sequence[str]) -> None:
    """Fail before writing anything when a named input file does not exist."""
    for path in paths:
        if path != "-" and not Path(path).is_file():
            raise InputError(f"no such file: {path}")


def total_size(paths: Sequence[str]) -> int:
    """Bytes on disk of the named files (stdin counts as 0), for a progress bar."""
    return sum(Path(path).stat().st_size for path in paths if path != "-")


def _numbered_lines(path: str, on_progress: Callable[[int], None] | None
                    ) -> Iterator[tuple[int, bytes]]:
    with _open_input(path) as (stream, raw_file):
        position = 0
        try:
            for line_no, line in enumerate(stream, 1):
                stripped = line.rstrip(b"\r\n")
                if stripped and (stripped[0] not in _BLANK or stripped.strip()):
                    yield line_no, stripped
                if on_progress is not None and line_no % 10_000 == 0 and raw_file is not None:
                    now = raw_file.tell()
                    on_progress(now - position)
                    position = now
        except (gzip.BadGzipFile, EOFError, OSError) as exc:
            raise InputError(f"cannot read {path}: {exc}") from None
        if on_progress is not None and raw_file is not None:
            on_progress(raw_file.tell() - position)


@contextmanager
def _open_input(path: str) -> Iterator[tuple[IO[bytes], IO[bytes] | None]]:
    if path == "-":
        yield sys.stdin.buffer, None
        return
    try:
        raw_file = open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot open {path}: {exc.strerror}") from None
    with raw_file:
        if path.endswith(".gz"):
            with gzip.open(raw_file, "rb") as unzipped:
                yield unzipped, raw_file
        else:
            yield raw_file, raw_file
