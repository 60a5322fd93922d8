"""The tap collector: long-poll the tap queue, store a sample of the bus, delete after commit.

Owns one poll cycle (receive → classify → one store transaction → delete) and the loop around
it. SQS is its own checkpoint: a message is deleted only after the transaction holding its
event commits, so a crash at any point leaves it to come back, and the store's
insert-or-ignore makes the second delivery harmless. A message that cannot be parsed is
quarantined, then deleted; a store failure leaves the batch undeleted (made visible again
after `store_retry_seconds`) and the loop stops receiving for a backed-off pause
(`eventscope.collectors.backoff`), so a long outage does not spend the messages' receive count
towards the dead-letter queue. The DLQ itself is sampled into the store (`watch_dlq`).

The sample rate is recorded in the store with the events sampled at it, so the logs
collector and ingest sample the invocations of those events by the same rate
(`eventscope.sampling`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import botocore.exceptions

from eventscope.collectors.backoff import MAX_PAUSE_SECONDS, Backoff
from eventscope.decoding import decode_object
from eventscope.errors import StoreError
from eventscope.events import (DEFAULT_CORRELATION_PATHS, RejectedRecord, VersionRule,
                               parse_bus_event)
from eventscope.limits import QUARANTINE_READ
from eventscope.records import BusEvent, Quarantined
from eventscope.replay_marker import is_echo
from eventscope.sampling import keep
from eventscope.store import Store

log = logging.getLogger(__name__)

SQS_BATCH = 10  # SQS's limit for receive and delete-batch
DELETE_ATTEMPTS = 4
EventFilter = Callable[[Sequence[BusEvent]], tuple[list[BusEvent], Any]]


@dataclass
class TapSettings:
    """How the tap collector polls and batches."""

    queue_url: str
    sample_rate: float = 1.0
    batch_size: int = 100  # messages gathered into one store transaction
    wait_seconds: int = 20  # long-poll wait of the first receive of a batch
    visibility_seconds: int = 120  # the queue's visibility timeout, for extension
    store_retry_seconds: int = 10  # visibility given back to a batch the store refused
    correlation_paths: tuple[str, ...] = DEFAULT_CORRELATION_PATHS
    origin: str = ""
    version_rules: Mapping[tuple[str, str], VersionRule] | None = None  # Catalog.version_rules
    dlq_url: str | None = None  # the queue's dead-letter queue, sampled into the store
    dlq_every_seconds: float = 60.0

    def __post_init__(self) -> None:
        self.origin = self.origin or f"sqs:{self.queue_url.rsplit('/', 1)[-1]}"


def version_rules_from_env() -> Mapping[tuple[str, str], VersionRule] | None:
    """How the catalog `EVENTSCOPE_CATALOG` names reads each type's version (None: no catalog)."""
    path = os.environ.get("EVENTSCOPE_CATALOG")
    return _catalog_version_rules(path) if path else None


@lru_cache(maxsize=4)
def _catalog_version_rules(path: str) -> Mapping[tuple[str, str], VersionRule]:
    from eventscope.catalog.loader import load_catalog  # only collectors given a catalog need it

    return load_catalog(path).version_rules()


@dataclass
class TapCounters:
    """What the tap collector has done since it started."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    sampled_out: int = 0
    quarantined: int = 0
    replay_echoes: int = 0
    store_failures: int = 0
    delete_retries: int = 0
    delete_failures: int = 0
    aws_errors: int = 0
    visibility_extensions: int = 0
    dlq_messages: int = 0  # in the dead-letter queue at the last sample

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class Classified:
    """One batch of messages sorted into what to store and what only to delete."""

    events: list[BusEvent] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    sampled_out: int = 0
    replay_echoes: int = 0


def classify_messages(messages: Sequence[dict[str, Any]], settings: TapSettings) -> Classified:
    """Sort received SQS messages into events to keep, sampled out, echoes and quarantine."""
    batch = Classified()
    seen: set[str] = set()
    for message in messages:
        raw = message.get("Body", "").encode("utf-8", "surrogatepass")
        try:
            envelope = decode_object(raw)
            if is_echo(envelope):
                batch.replay_echoes += 1
                continue
            event = parse_bus_event(envelope, len(raw), settings.correlation_paths,
                                    settings.version_rules)
        except RejectedRecord as rejected:
            batch.quarantined.append(Quarantined(
                origin=settings.origin, position=f"message {message.get('MessageId', '?')}",
                reason=rejected.reason, detail=str(rejected), raw=raw[:QUARANTINE_READ]))
            continue
        if not keep(event.id, settings.sample_rate):
            batch.sampled_out += 1
        elif event.id not in seen:  # EventBridge may deliver an event twice in one batch
            seen.add(event.id)
            batch.events.append(event)
    return batch


def receive_batch(sqs: Any, settings: TapSettings) -> list[dict[str, Any]]:
    """Up to `batch_size` messages: one long poll, then short receives while they keep coming."""
    messages: list[dict[str, Any]] = []
    wait = settings.wait_seconds
    while len(messages) < settings.batch_size:
        got = sqs.receive_message(
            QueueUrl=settings.queue_url, WaitTimeSeconds=wait,
            MaxNumberOfMessages=min(SQS_BATCH, settings.batch_size - len(messages)),
        ).get("Messages", [])
        messages.extend(got)
        if not got:
            break
        wait = 0
    return messages


def process_batch(sqs: Any, store: Store, messages: Sequence[dict[str, Any]],
                  settings: TapSettings, counters: TapCounters,
                  event_filter: EventFilter | None = None, received_at: float | None = None
                  ) -> bool:
    """Store one batch and delete its messages after the commit; False when the store failed."""
    counters.received += len(messages)
    batch = classify_messages(messages, settings)
    events, extra = (event_filter(batch.events) if event_filter else (batch.events, None))
    # the redaction hook (`collectors.pii.Redactor`) scrubs quarantined raw bodies too
    scrub = getattr(event_filter, "quarantined", None)
    if scrub is not None:
        batch.quarantined = scrub(batch.quarantined)
    if received_at is not None:
        _extend_if_slow(sqs, messages, settings, counters, received_at)
    try:
        written = store.write_batch(events, (), batch.quarantined, None, extra,
                                    sample_rate=settings.sample_rate)
    except StoreError as exc:
        counters.store_failures += 1
        log.warning("store write failed, %d message(s) left on the queue: %s", len(messages), exc)
        change_visibility(sqs, settings.queue_url, messages, settings.store_retry_seconds)
        return False
    counters.stored += written.events
    counters.duplicates += len(events) - written.events
    counters.quarantined += len(batch.quarantined)
    counters.sampled_out += batch.sampled_out
    counters.replay_echoes += batch.replay_echoes
    delete_messages(sqs, settings.queue_url, messages, counters)
    return True


def poll_once(sqs: Any, store: Store, settings: TapSettings, counters: TapCounters,
              event_filter: EventFilter | None = None) -> int:
    """One receive-store-delete cycle; the number of messages received."""
    started = time.monotonic()
    messages = receive_batch(sqs, settings)
    if messages:
        process_batch(sqs, store, messages, settings, counters, event_filter, started)
    return len(messages)


def poll_or_raise(sqs: Any, store: Store, settings: TapSettings, counters: TapCounters,
                  event_filter: EventFilter | None = None) -> int:
    """`poll_once`, raising `StoreError` when the store refused the batch (left on the queue),
    so the caller backs off instead of receiving again at once."""
    failures = counters.store_failures
    received = poll_once(sqs, store, settings, counters, event_filter)
    if counters.store_failures > failures:
        raise StoreError(f"the store refused a batch of {received} message(s); "
                         "left on the queue")
    return received


def run_tap(sqs: Any, store: Store, settings: TapSettings, counters: TapCounters,
            stop: threading.Event, *, until_empty: bool = False,
            event_filter: EventFilter | None = None, error_pause: float = 5.0,
            max_pause: float = MAX_PAUSE_SECONDS) -> None:
    """Poll until `stop` is set (or, with `until_empty`, until a receive comes back empty).

    AWS errors that survive botocore's retries are counted and waited out, never fatal. A
    store failure pauses receiving (back-pressure): `error_pause`, doubling while failures
    go on, up to `max_pause`; the refused messages wait in the queue meanwhile.
    """
    backoff = Backoff(first=error_pause, cap=max_pause)
    next_dlq_sample = 0.0
    while not stop.is_set():
        if settings.dlq_url and time.monotonic() >= next_dlq_sample:
            next_dlq_sample = time.monotonic() + settings.dlq_every_seconds
            watch_dlq(sqs, store, settings, counters)
        try:
            received = poll_or_raise(sqs, store, settings, counters, event_filter)
        except StoreError as exc:
            pause = backoff.next_pause()
            log.warning("store failing, not receiving for %.1fs: %s", pause, exc)
            stop.wait(pause)
            continue
        except botocore.exceptions.ClientError as exc:
            counters.aws_errors += 1
            log.warning("SQS error, pausing %.0fs: %s", error_pause, exc)
            stop.wait(error_pause)
            continue
        except botocore.exceptions.BotoCoreError as exc:  # endpoint unreachable, timeouts
            counters.aws_errors += 1
            log.warning("cannot reach SQS, pausing %.0fs: %s", error_pause, exc)
            stop.wait(error_pause)
            continue
        backoff.reset()
        if until_empty and received == 0:
            return


def watch_dlq(sqs: Any, store: Store, settings: TapSettings, counters: TapCounters) -> None:
    """Sample the dead-letter queue into the store; a failure is counted, never fatal."""
    from eventscope.collectors.dlq import record_dlq

    if not settings.dlq_url:
        return
    try:
        counters.dlq_messages = record_dlq(sqs, store, settings.dlq_url,
                                           settings.queue_url)["messages"]
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError,
            StoreError) as exc:
        counters.aws_errors += 1
        log.warning("dead-letter queue not sampled: %s", exc)


def delete_messages(sqs: Any, queue_url: str, messages: Sequence[dict[str, Any]],
                    counters: TapCounters, attempts: int = DELETE_ATTEMPTS) -> None:
    """Delete in batches of 10, retrying entries that fail; count retries and final failures."""
    pending = {str(i): m["ReceiptHandle"] for i, m in enumerate(messages)}
    for attempt in range(attempts):
        if not pending:
            return
        if attempt:
            counters.delete_retries += len(pending)
            time.sleep(min(0.05 * 2 ** attempt, 1.0))
        pending = _delete_round(sqs, queue_url, pending)
    if pending:
        counters.delete_failures += len(pending)
        log.warning("%d message(s) could not be deleted and will be delivered again "
                    "(stored already; the store ignores the repeat)", len(pending))


def _delete_round(sqs: Any, queue_url: str, pending: dict[str, str]) -> dict[str, str]:
    failed: dict[str, str] = {}
    items = list(pending.items())
    for start in range(0, len(items), SQS_BATCH):
        chunk = items[start:start + SQS_BATCH]
        response = sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": entry_id, "ReceiptHandle": handle} for entry_id, handle in chunk])
        for failure in response.get("Failed", []):
            failed[failure["Id"]] = pending[failure["Id"]]
    return failed


def change_visibility(sqs: Any, queue_url: str, messages: Sequence[dict[str, Any]],
                      seconds: int) -> None:
    """Set the visibility timeout of received messages (0 makes them visible at once)."""
    for start in range(0, len(messages), SQS_BATCH):
        chunk = messages[start:start + SQS_BATCH]
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": seconds}
            for i, m in enumerate(chunk)])


def _extend_if_slow(sqs: Any, messages: Sequence[dict[str, Any]], settings: TapSettings,
                    counters: TapCounters, received_at: float) -> None:
    """Give a slow batch another visibility period before its store write."""
    if time.monotonic() - received_at > settings.visibility_seconds / 2:
        change_visibility(sqs, settings.queue_url, messages, settings.visibility_seconds)
        counters.visibility_extensions += 1


def queue_visibility(sqs: Any, queue_url: str) -> int:
    """The queue's visibility timeout in seconds."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url,
                                          AttributeNames=["VisibilityTimeout"])["Attributes"]
    return int(attributes.get("VisibilityTimeout", 30))
