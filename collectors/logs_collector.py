"""The CloudWatch Logs collectors: Lambda consumers into invocations, bus logs into deliveries.

Owns discovering log groups by prefix, paging `filter_log_events` (on while `nextToken` is
present, even after an empty page), feeding records to the foundation's
`InvocationAssembler`, and one checkpoint per log group written in the same transaction as
the invocations it covers.

Late records: each run re-reads a window behind the newest record already read, and skips
records whose `eventId` it has already processed, before parsing them (the checkpoint keeps
the ids inside the window, at most `MAX_SEEN_IDS`). The window follows the lateness the group
has shown (a record's `ingestionTime` minus its `timestamp`, the longest in the last day) plus
a margin `overlap_ms` (default 10 s), at most `MAX_OVERLAP_MS`: a group whose records arrive
within a second is re-read 11 s back, one whose records arrive an hour late an hour back, so a
pass fetches little more than the records it has not read. A record later than that window is
not seen. The newest record counts as no later than the newest `ingestionTime` read (the
service's clock: now minus `CHECKPOINT_MARGIN_MS` when records carry none), so a
future-dated record cannot move the checkpoint ahead of records still to come.

Each log group fails alone: an error reading or storing one (AccessDenied, throttling past
retries, a store refusing it) is counted (`groups_failed`), the other groups are read, and the
pass then raises `LogGroupsFailed` naming the failing groups; the next pass retries them from
their unchanged checkpoints. An invocation still open at the end of a run is written as
partial and its records are held back (not marked processed) for up to `hold_ms`, so the next run
re-reads them with the rest and completes the same invocation row. No server-side filter pattern is
used: every record is read and parsed locally.

Sampling: when the store's bus events are sampled (`Store.sample_rate`, recorded by the tap
collector), invocations are kept only when their event is (the same hash of the event id,
`eventscope.sampling`); those without an event id are all kept; the dropped ones are counted
(`invocations_sampled_out`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

import time

import botocore.exceptions

from eventscope.bus_logs import parse_delivery
from eventscope.errors import EventscopeError, StoreError
from eventscope.events import RejectedRecord
from eventscope.lambda_logs import InvocationAssembler
from eventscope.limits import QUARANTINE_READ
from eventscope.records import Invocation, Quarantined
from eventscope.redaction import (RedactionSettings, scrub_invocations, scrub_quarantined,
                                  scrub_text)
from eventscope.sampling import sample_invocations
from eventscope.store import Store, deliveries

log = logging.getLogger(__name__)

COLLECTOR = "logs"
DEFAULT_OVERLAP_MS = 10_000  # margin added to the lateness observed
DEFAULT_HOLD_MS = 20 * 60_000  # above Lambda's 15-minute maximum duration
CHECKPOINT_MARGIN_MS = 60_000  # without ingestion times: newest <= now - this
MAX_OVERLAP_MS = 6 * 3600_000  # the longest window re-read for late records
LATENESS_MEMORY_MS = 24 * 3600_000  # how long an observed lateness widens the window
MAX_SEEN_IDS = 200_000  # record ids a checkpoint keeps (the newest); see next_checkpoint


class LogGroupsFailed(EventscopeError):
    """Some log groups could not be read or stored in a pass (the others were)."""

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = failures
        named = "; ".join(f"{group}: {why}" for group, why in sorted(failures.items()))
        super().__init__(f"{len(failures)} log group(s) failed (retried next pass): {named}")


@dataclass
class LogsSettings:
    """What to read and how far back to look."""

    prefix: str = "/aws/lambda/"
    since_ms: int = 0  # where a log group without a checkpoint starts
    overlap_ms: int = DEFAULT_OVERLAP_MS  # margin on top of the observed lateness
    hold_ms: int = DEFAULT_HOLD_MS
    log_groups: tuple[str, ...] = ()  # explicit groups instead of discovery
    redaction: RedactionSettings | None = None  # scrubs PII from invocation error messages
    sample_rate: float | None = None  # invocations kept by event id; None: the store's rate
    page_size: int | None = None  # filter_log_events `limit` (None: the service's, 10,000)


@dataclass
class LogsCounters:
    """What the logs collector has done since it started."""

    groups: int = 0
    pages: int = 0
    records_read: int = 0
    records_already_seen: int = 0  # fetched again inside the window: skipped unparsed
    records_new: int = 0  # fetched for the first time (records_read / this ~ 1)
    invocations_built: int = 0
    invocations_stored: int = 0
    invocations_sampled_out: int = 0  # of events the tap's sample left out
    deliveries: int = 0
    quarantined: int = 0
    groups_failed: int = 0  # group reads or writes that failed (each retried next pass)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class GroupCheckpoint:
    """Where a log group's next read starts and which record ids it must skip there."""

    resume_ms: int
    seen: dict[str, int] = field(default_factory=dict)  # eventId -> timestamp
    lateness_ms: int = 0  # the longest lateness observed lately (ingestion - timestamp)
    lateness_seen_ms: int = 0  # when it was observed

    def encode(self) -> str:
        data: dict[str, Any] = {"resume_ms": self.resume_ms, "seen": self.seen}
        if self.lateness_ms:
            data["lateness"] = [self.lateness_ms, self.lateness_seen_ms]
        return orjson.dumps(data).decode()

    @staticmethod
    def decode(value: str | None) -> GroupCheckpoint | None:
        if not value:
            return None
        data = orjson.loads(value)
        lateness, seen_at = data.get("lateness", [0, 0])
        return GroupCheckpoint(int(data["resume_ms"]), dict(data.get("seen", {})),
                               int(lateness), int(seen_at))


def discover_groups(logs: Any, prefix: str) -> list[str]:
    """Every log group whose name starts with `prefix`, across all pages."""
    names: list[str] = []
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix):
        names.extend(group["logGroupName"] for group in page.get("logGroups", []))
    return names


def read_pages(logs: Any, group: str, start_ms: int, counters: LogsCounters,
               page_size: int | None = None) -> Iterator[list[dict[str, Any]]]:
    """The group's records from `start_ms` on, page by page, until no `nextToken` remains."""
    request: dict[str, Any] = {"logGroupName": group, "startTime": start_ms}
    if page_size:
        request["limit"] = page_size
    while True:
        response = logs.filter_log_events(**request)
        counters.pages += 1
        yield [{**record, "logGroupName": group} for record in response.get("events", [])]
        token = response.get("nextToken")
        if not token or token == request.get("nextToken"):
            return
        request["nextToken"] = token


def next_checkpoint(previous: GroupCheckpoint | None, read: dict[str, int],
                    partials: list[Invocation], settings: LogsSettings,
                    now_ms: int | None = None, lateness_ms: int = 0,
                    ingested_ms: int | None = None) -> GroupCheckpoint | None:
    """The checkpoint after a run that read records `read` (eventId -> timestamp) whose
    longest lateness was `lateness_ms` and newest `ingestionTime` `ingested_ms`, at `now_ms`
    (default: the clock). Pure given now_ms.

    Resume = newest - (lateness + margin); the ids at or after it are kept, so the next run
    skips them before parsing. Past `MAX_SEEN_IDS` the oldest are let go and the resume point
    moves up to the oldest id kept (what lies before it was read)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    seen = {**(previous.seen if previous else {}), **read}
    if not seen:
        return previous
    lateness, lateness_at = _lateness(previous, lateness_ms, now)
    ceiling = ingested_ms if ingested_ms is not None else now - CHECKPOINT_MARGIN_MS
    newest = min(max(seen.values()), ceiling)
    resume = newest - min(lateness + settings.overlap_ms, MAX_OVERLAP_MS)
    held = [p.start_ms for p in partials if p.start_ms >= newest - settings.hold_ms]
    hold_from = min(held) if held else None
    if hold_from is not None:
        resume = min(resume, hold_from)
    kept = {event_id: ts for event_id, ts in seen.items()
            if ts >= resume and (hold_from is None or ts < hold_from)}
    if len(kept) > MAX_SEEN_IDS:
        newest_ids = sorted(kept.items(), key=lambda item: item[1])[-MAX_SEEN_IDS:]
        kept = dict(newest_ids)
        resume = max(resume, newest_ids[0][1]) if hold_from is None else resume
    return GroupCheckpoint(resume, kept, lateness, lateness_at)


def _lateness(previous: GroupCheckpoint | None, observed: int, now: int) -> tuple[int, int]:
    """The lateness to allow for: this run's, or a longer one seen within the last day."""
    if (previous is not None and previous.lateness_ms > observed
            and now - previous.lateness_seen_ms < LATENESS_MEMORY_MS):
        return previous.lateness_ms, previous.lateness_seen_ms
    return (observed, now) if observed > 0 else (0, 0)


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
              counters: Any, quarantined: Sequence[Quarantined] = (),
              expect: Mapping[tuple[str, str], str | None] | None = None) -> None:
        """Sample, redact and store the invocations (with `quarantined` and the checkpoints,
        one transaction; conditional on `expect`, see `Store.write_batch`); `counters` is any
        object with the invocation counters."""
        counters.invocations_built += len(self.invocations)
        kept, dropped = sample_invocations(self.invocations, self.sample_rate)
        counters.invocations_sampled_out += dropped
        if self.redaction is not None:
            kept = scrub_invocations(kept, self.redaction)
            if not self.redaction.keep_originals:
                quarantined = scrub_quarantined(list(quarantined), self.redaction)
        written = store.write_batch((), kept, quarantined, checkpoints,
                                    expect_checkpoints=expect)
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
                detail=str(rejected), raw=raw[:QUARANTINE_READ]))
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
    start = _start(previous, settings)
    skip = previous.seen if previous else {}
    read: dict[str, int] = {}
    lateness, ingested = 0, None
    for page in read_pages(logs, group, start, counters, settings.page_size):
        for record in page:
            counters.records_read += 1
            event_id = record.get("eventId") or f"{record['logStreamName']}:{record['timestamp']}"
            if "ingestionTime" in record:
                at = int(record["ingestionTime"])
                lateness = max(lateness, at - int(record["timestamp"]))
                ingested = at if ingested is None else max(ingested, at)
            if event_id in skip or event_id in read:
                counters.records_already_seen += 1
                continue
            read[event_id] = int(record["timestamp"])
            sink.feed(record)
    counters.records_new += len(read)
    sink.finish()
    checkpoint = next_checkpoint(previous, read, sink.partials, settings, lateness_ms=lateness,
                                 ingested_ms=ingested)
    sink.write(store, {(sink.collector, group): checkpoint.encode()} if checkpoint else {},
               counters)


def _start(previous: GroupCheckpoint | None, settings: LogsSettings) -> int:
    """Where a group's read starts: its checkpoint, unless that lies in the future (a
    checkpoint an older eventscope moved ahead), which is pulled back behind now."""
    if previous is None:
        return settings.since_ms
    now = int(time.time() * 1000)
    if previous.resume_ms > now - settings.overlap_ms:
        return min(previous.resume_ms, now - CHECKPOINT_MARGIN_MS - settings.overlap_ms)
    return previous.resume_ms


def collect_bus_logs(logs: Any, store: Store, log_group: str, settings: LogsSettings,
                     counters: LogsCounters) -> None:
    """One pass over an event bus's log group into per-target delivery outcomes."""
    collect_group(logs, store, log_group, settings, counters, DeliverySink)


def collect_logs(logs: Any, store: Store, settings: LogsSettings, counters: LogsCounters) -> None:
    """One pass over every log group under the prefix (or the explicit groups).

    A group that fails is left at its checkpoint while the others are read; the pass then
    raises `LogGroupsFailed` naming them.
    """
    groups = list(settings.log_groups) or discover_groups(logs, settings.prefix)
    counters.groups = len(groups)
    failures: dict[str, str] = {}
    for group in groups:
        try:
            collect_group(logs, store, group, settings, counters)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError,
                StoreError) as exc:
            counters.groups_failed += 1
            failures[group] = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
            log.warning("log group %s failed, others go on: %s", group, failures[group])
    if failures:
        raise LogGroupsFailed(failures)
