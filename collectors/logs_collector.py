"""The CloudWatch Logs collectors: Lambda consumers into invocations, bus logs into deliveries.

Owns discovering log groups by prefix, paging `filter_log_events` (on while `nextToken` is
present, even after an empty page), feeding records to the foundation's
`InvocationAssembler`, and one checkpoint per log group written in the same transaction as
the invocations it covers.

Late records: each run re-reads an overlap window (`overlap_ms`, default 5 minutes) behind
the newest record already read, and skips records whose `eventId` it has already processed
(the checkpoint keeps the ids inside the window). A record arriving later than the window is
not seen. An invocation still open at the end of a run is written as partial and its
records are held back (not marked processed) for up to `hold_ms`, so the next run re-reads
them with the rest and completes the same invocation row. No server-side filter pattern is
used: every record is read and parsed locally.

Sampling: when the store's bus events are sampled (`Store.sample_rate`, recorded by the tap
collector), invocations are kept only when their event is (the same hash of the event id,
`eventscope.sampling`); those without an event id are all kept; the dropped ones are counted
(`invocations_sampled_out`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from eventscope.bus_logs import parse_delivery
from eventscope.events import RejectedRecord
from eventscope.lambda_logs import InvocationAssembler
from eventscope.limits import QUARANTINE_RAW_CAP
from eventscope.records import Invocation, Quarantined
from eventscope.redaction import (RedactionSettings, scrub_invocations, scrub_quarantined,
                                  scrub_text)
from eventscope.sampling import sample_invocations
from eventscope.store import Store, deliveries

log = logging.getLogger(__name__)

COLLECTOR = "logs"
DEFAULT_OVERLAP_MS = 5 * 60_000
DEFAULT_HOLD_MS = 20 * 60_000  # above Lambda's 15-minute maximum duration


@dataclass
class LogsSettings:
    """What to read and how far back to look."""

    prefix: str = "/aws/lambda/"
    since_ms: int = 0  # where a log group without a checkpoint starts
    overlap_ms: int = DEFAULT_OVERLAP_MS
    hold_ms: int = DEFAULT_HOLD_MS
    log_groups: tuple[str, ...] = ()  # explicit groups instead of discovery
    redaction: RedactionSettings | None = None  # scrubs PII from invocation error messages
    sample_rate: float | None = None  # invocations kept by event id; None: the store's rate


@dataclass
class LogsCounters:
    """What the logs collector has done since it started."""

    groups: int = 0
    pages: int = 0
    records_read: int = 0
    records_already_seen: int = 0
    invocations_built: int = 0
    invocations_stored: int = 0
    invocations_sampled_out: int = 0  # of events the tap's sample left out
    deliveries: int = 0
    quarantined: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class GroupCheckpoint:
    """Where a log group's next read starts and which record ids it must skip there."""

    resume_ms: int
    seen: dict[str, int] = field(default_factory=dict)  # eventId -> timestamp

    def encode(self) -> str:
        return orjson.dumps({"resume_ms": self.resume_ms, "seen": self.seen}).decode()

    @staticmethod
    def decode(value: str | None) -> GroupCheckpoint | None:
        if not value:
            return None
        data = orjson.loads(value)
        return GroupCheckpoint(int(data["resume_ms"]), dict(data.get("seen", {})))


def discover_groups(logs: Any, prefix: str) -> list[str]:
    """Every log group whose name starts with `prefix`, across all pages."""
    names: list[str] = []
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix):
        names.extend(group["logGroupName"] for group in page.get("logGroups", []))
    return names


def read_pages(logs: Any, group: str, start_ms: int, counters: LogsCounters
               ) -> Iterator[list[dict[str, Any]]]:
    """The group's records from `start_ms` on, page by page, until no `nextToken` remains."""
    request: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
    while True:
        response = logs.filter_log_events(**request)
        counters.pages += 1
        yield [{**record, "logGroupName": group} for record in response.get("events", [])]
        token = response.get("nextToken")
        if not token or token == request.get("nextToken"):
            return
        request["nextToken"] = token


def next_checkpoint(previous: GroupCheckpoint | None, read: dict[str, int],
                    partials: list[Invocation], settings: LogsSettings) -> GroupCheckpoint | None:
    """The checkpoint after a run that read records `read` (eventId -> timestamp). Pure."""
    seen = {**(previous.seen if previous else {}), **read}
    if not seen:
        return previous
    newest = max(seen.values())
    resume = newest - settings.overlap_ms
    held = [p.start_ms for p in partials if p.start_ms >= newest - settings.hold_ms]
    hold_from = min(held) if held else None
    if hold_from is not None:
        resume = min(resume, hold_from)
    kept = {event_id: ts for event_id, ts in seen.items()
            if ts >= resume and (hold_from is None or ts < hold_from)}
    return GroupCheckpoint(resume, kept)


class InvocationSink:
    """Consumer log records → invocations, through the foundation's assembler."""

    collector = COLLECTOR

    def __init__(self, redaction: RedactionSettings | None = None,
                 sample_rate: float = 1.0) -> None:
        self.redaction, self.sample_rate = redaction, sample_rate
        self.assembler = InvocationAssembler()
        self.invocations: list[Invocation] = []
        self.partials: list[Invocation] = []

    def feed(self, record: dict[str, Any]) -> None:
        self.invocations.extend(self.assembler.feed(record))

    def finish(self) -> None:
        self.partials = self.assembler.flush()
        self.invocations.extend(self.partials)

    def write(self, store: Store, checkpoints: dict[tuple[str, str], str],
              counters: LogsCounters) -> None:
        counters.invocations_built += len(self.invocations)
        kept, dropped = sample_invocations(self.invocations, self.sample_rate)
        counters.invocations_sampled_out += dropped
        if self.redaction is not None:
            kept = scrub_invocations(kept, self.redaction)
        written = store.write_batch((), kept, (), checkpoints)
        counters.invocations_stored += written.invocations


class DeliverySink:
    """EventBridge bus log records → `deliveries` rows; unreadable records quarantined."""

    collector = "bus-logs"

    def __init__(self, redaction: RedactionSettings | None = None,
                 _sample_rate: float = 1.0) -> None:
        self.redaction = redaction
        self.rows: list[dict[str, Any]] = []
        self.quarantined: list[Quarantined] = []
        self.partials: list[Invocation] = []

    def feed(self, record: dict[str, Any]) -> None:
        try:
            row = parse_delivery(record)
        except RejectedRecord as rejected:
            raw = str(record.get("message", "")).encode()
            self.quarantined.append(Quarantined(
                origin=f"logs:{record['logGroupName']}",
                position=f"record {record.get('eventId', '?')}", reason=rejected.reason,
                detail=str(rejected), raw=raw[:QUARANTINE_RAW_CAP]))
            return
        if row is not None:
            self.rows.append(row)

    def finish(self) -> None:
        pass

    def write(self, store: Store, checkpoints: dict[tuple[str, str], str],
              counters: LogsCounters) -> None:
        if self.redaction is not None and not self.redaction.keep_originals:
            self.quarantined = scrub_quarantined(self.quarantined, self.redaction)
            for row in self.rows:
                if row.get("error_message"):
                    row["error_message"] = scrub_text(row["error_message"],
                                                      self.redaction.key)[0]
        store.write_batch((), (), self.quarantined, checkpoints, {deliveries: self.rows})
        counters.deliveries += len(self.rows)
        counters.quarantined += len(self.quarantined)


def collect_group(logs: Any, store: Store, group: str, settings: LogsSettings,
                  counters: LogsCounters, sink_factory: Callable[..., Any] = InvocationSink
                  ) -> None:
    """Read one log group from its checkpoint and store what it holds with the new one."""
    rate = settings.sample_rate if settings.sample_rate is not None else store.sample_rate()
    sink = sink_factory(settings.redaction, rate)
    previous = GroupCheckpoint.decode(store.checkpoint(sink.collector, group))
    start = previous.resume_ms if previous else settings.since_ms
    skip = previous.seen if previous else {}
    read: dict[str, int] = {}
    for page in read_pages(logs, group, start, counters):
        for record in page:
            counters.records_read += 1
            event_id = record.get("eventId") or f"{record['logStreamName']}:{record['timestamp']}"
            if event_id in skip:
                counters.records_already_seen += 1
                continue
            read[event_id] = int(record["timestamp"])
            sink.feed(record)
    sink.finish()
    checkpoint = next_checkpoint(previous, read, sink.partials, settings)
    sink.write(store, {(sink.collector, group): checkpoint.encode()} if checkpoint else {},
               counters)


def collect_bus_logs(logs: Any, store: Store, log_group: str, settings: LogsSettings,
                     counters: LogsCounters) -> None:
    """One pass over an event bus's log group into per-target delivery outcomes."""
    collect_group(logs, store, log_group, settings, counters, DeliverySink)


def collect_logs(logs: Any, store: Store, settings: LogsSettings, counters: LogsCounters) -> None:
    """One pass over every log group under the prefix (or the explicit groups)."""
    groups = list(settings.log_groups) or discover_groups(logs, settings.prefix)
    counters.groups = len(groups)
    for group in groups:
        collect_group(logs, store, group, settings, counters)
