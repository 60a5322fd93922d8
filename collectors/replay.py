"""Replay: re-trigger stored events on the bus, or for one consumer, audited and idempotent.

Owns choosing how to replay (the whole bus with `put_events`; one consumer through an archive
replay filtered to its rule when the bus has an archive, else by sending the stored event to
the rule's SQS or Lambda targets), the plan shown by a dry run, and the audit trail: every
request is claimed in `replay_audit` under an idempotency key before anything is sent, so a
second invocation with the same key sends nothing. Events stored redacted are refused.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions
import orjson
import sqlalchemy as sa

from eventscope.errors import EventscopeError
from eventscope.events import envelope_of
from eventscope.records import BusEvent
from eventscope.redaction import is_redacted
from eventscope.replay_marker import mark
from eventscope.retention import PRUNED_DETAIL
from eventscope.store import Store, events as events_table, replay_audit

log = logging.getLogger(__name__)

PUT_EVENTS_BATCH = 10
PUT_ATTEMPTS = 3


class ReplayError(EventscopeError):
    """A replay that cannot be planned or must not be sent."""


@dataclass
class Selection:
    """Which stored events to replay."""

    event_ids: tuple[str, ...] = ()
    detail_type: str | None = None
    correlation_key: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = 100


@dataclass
class ReplayPlan:
    """What a replay would do: mode, target, events, and the idempotency key."""

    mode: str  # bus, archive, target
    bus: str
    events: list[BusEvent]
    request_key: str
    consumer: str | None = None
    archive_arn: str | None = None
    rule_arn: str | None = None
    targets: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {"mode": self.mode, "bus": self.bus, "consumer": self.consumer,
                "archive_arn": self.archive_arn, "rule_arn": self.rule_arn,
                "targets": self.targets, "request_key": self.request_key,
                "events": [{"id": e.id, "detail_type": e.detail_type, "time_ms": e.time_ms}
                           for e in self.events]}


def select_events(store: Store, selection: Selection) -> list[BusEvent]:
    """The stored events matching the selection, oldest first."""
    columns = events_table.c
    query = sa.select(events_table).order_by(columns.time_ms, columns.id).limit(selection.limit)
    if selection.event_ids:
        query = query.where(columns.id.in_(selection.event_ids))
    if selection.detail_type:
        query = query.where(columns.detail_type == selection.detail_type)
    if selection.correlation_key:
        query = query.where(columns.correlation_key == selection.correlation_key)
    if selection.since_ms is not None:
        query = query.where(columns.time_ms >= selection.since_ms)
    if selection.until_ms is not None:
        query = query.where(columns.time_ms < selection.until_ms)
    return [BusEvent(**row) for row in store.select_rows(query)]


def request_key(mode: str, bus: str, consumer: str | None, events: Sequence[BusEvent]) -> str:
    """The default idempotency key: the same request (mode, bus, consumer, events) → same key."""
    payload = orjson.dumps([mode, bus, consumer, sorted(e.id for e in events)])
    return hashlib.sha256(payload).hexdigest()[:32]


def plan_replay(events_client: Any, store: Store, bus: str, selection: Selection,
                consumer: str | None = None, key: str | None = None) -> ReplayPlan:
    """Decide how to replay the selection; refuse empty, pruned or redacted selections."""
    chosen = select_events(store, selection)
    if not chosen:
        raise ReplayError("no stored event matches the selection")
    pruned = [e.id for e in chosen if e.detail == PRUNED_DETAIL]
    if pruned:
        raise ReplayError(f"{len(pruned)} selected event(s) are older than the payloads the "
                          f"store keeps (first: {pruned[0]}): their payloads were pruned")
    redacted = [e.id for e in chosen if is_redacted(e.detail)]
    if redacted:
        raise ReplayError(f"{len(redacted)} selected event(s) were stored with PII redacted "
                          f"(first: {redacted[0]}); replay needs the originals: collect with "
                          "EVENTSCOPE_PII=keep")
    if consumer is None:
        return ReplayPlan("bus", bus, chosen, key or request_key("bus", bus, None, chosen))
    rule = events_client.describe_rule(Name=consumer, EventBusName=bus)
    archive = _archive_of(events_client, bus)
    mode = "archive" if archive else "target"
    targets = [t["Arn"] for t in events_client.list_targets_by_rule(
        Rule=consumer, EventBusName=bus).get("Targets", [])]
    return ReplayPlan(mode, bus, chosen, key or request_key(mode, bus, consumer, chosen),
                      consumer=consumer, archive_arn=archive, rule_arn=rule["Arn"],
                      targets=targets)


def _archive_of(events_client: Any, bus: str) -> str | None:
    """The ARN of an enabled archive of the bus, if it has one."""
    bus_arn = events_client.describe_event_bus(Name=bus)["Arn"]
    for archive in events_client.list_archives(EventSourceArn=bus_arn).get("Archives", []):
        if archive.get("State", "ENABLED") == "ENABLED":
            arn: str = events_client.describe_archive(
                ArchiveName=archive["ArchiveName"])["ArchiveArn"]
            return arn
    return None


def execute_replay(clients: dict[str, Any], store: Store, plan: ReplayPlan) -> dict[str, Any]:
    """Send the plan once: claim its key in the audit table, send, record the result."""
    claimed = store.claim_replay({
        "request_key": plan.request_key,
        "requested_by": os.environ.get("EVENTSCOPE_USER") or getpass.getuser(),
        "requested_ms": int(time.time() * 1000), "mode": plan.mode,
        "selection": orjson.dumps(plan.describe()).decode(),
        "event_count": len(plan.events), "status": "started", "result": None,
        "finished_ms": None})
    if not claimed:
        previous = store.select_rows(sa.select(replay_audit).where(
            replay_audit.c.request_key == plan.request_key))[0]
        raise ReplayError(f"replay {plan.request_key} was already requested by "
                          f"{previous['requested_by']} (status {previous['status']}): nothing "
                          "sent; pass --request-key with a new key to send again")
    try:
        result = _send(clients, plan)
    except Exception as exc:
        store.finish_replay(plan.request_key, "failed", orjson.dumps({"error": str(exc)}).decode())
        raise
    status = "sent" if not result.get("failed") else "partial"
    store.finish_replay(plan.request_key, status, orjson.dumps(result).decode())
    return {"request_key": plan.request_key, "status": status, **result}


def _send(clients: dict[str, Any], plan: ReplayPlan) -> dict[str, Any]:
    if plan.mode == "bus":
        return put_marked(clients["events"], plan)
    if plan.mode == "archive":
        return start_archive_replay(clients["events"], plan)
    return send_to_targets(clients, plan)


def marked_envelope(event: BusEvent, key: str) -> dict[str, Any]:
    """The stored envelope with the replay marker in its detail."""
    envelope = envelope_of(event)
    envelope["detail"] = mark(envelope["detail"], key, event.id)
    return envelope


def put_marked(events_client: Any, plan: ReplayPlan) -> dict[str, Any]:
    """`put_events` in batches of 10, failed entries retried; counts sent and failed."""
    pending = [_entry(marked_envelope(e, plan.request_key), plan.bus) for e in plan.events]
    sent, retries = 0, 0
    for attempt in range(PUT_ATTEMPTS):
        if not pending:
            break
        if attempt:
            retries += len(pending)
            time.sleep(0.2 * 2 ** attempt)
        failed: list[dict[str, Any]] = []
        for start in range(0, len(pending), PUT_EVENTS_BATCH):
            chunk = pending[start:start + PUT_EVENTS_BATCH]
            results = events_client.put_events(Entries=chunk)["Entries"]
            for entry, outcome in zip(chunk, results):
                if outcome.get("ErrorCode"):
                    failed.append(entry)
                else:
                    sent += 1
        pending = failed
    return {"sent": sent, "failed": len(pending), "retries": retries}


def _entry(envelope: dict[str, Any], bus: str) -> dict[str, Any]:
    return {"EventBusName": bus, "Source": envelope["source"],
            "DetailType": envelope["detail-type"],
            "Detail": orjson.dumps(envelope["detail"]).decode(),
            "Resources": envelope.get("resources", [])}


def start_archive_replay(events_client: Any, plan: ReplayPlan) -> dict[str, Any]:
    """Replay the archive over the events' time span, to the consumer's rule only."""
    start = min(e.time_ms for e in plan.events) / 1000
    end = max(e.time_ms for e in plan.events) / 1000 + 1
    name = f"eventscope-{plan.request_key[:20]}"
    bus_arn = events_client.describe_event_bus(Name=plan.bus)["Arn"]
    events_client.start_replay(ReplayName=name, EventSourceArn=plan.archive_arn,
                               EventStartTime=start, EventEndTime=end,
                               Destination={"Arn": bus_arn, "FilterArns": [plan.rule_arn]})
    return {"replay_name": name, "sent": len(plan.events), "failed": 0}


def send_to_targets(clients: dict[str, Any], plan: ReplayPlan) -> dict[str, Any]:
    """Send each marked envelope to the rule's SQS queues and Lambda functions."""
    sent, failed, skipped = 0, 0, []
    for arn in plan.targets:
        service = arn.split(":")[2]
        if service not in ("sqs", "lambda"):
            skipped.append(arn)
            continue
        for event in plan.events:
            body = orjson.dumps(marked_envelope(event, plan.request_key)).decode()
            try:
                ok = _send_one(clients, service, arn, body)
            except botocore.exceptions.ClientError as exc:  # this target only: go on
                log.warning("replay to %s failed: %s", arn, exc)
                ok = False
            sent, failed = sent + ok, failed + (not ok)
    return {"sent": sent, "failed": failed, "skipped_targets": skipped}


def _send_one(clients: dict[str, Any], service: str, arn: str, body: str) -> bool:
    if service == "sqs":
        _, _, _, _, account, name = arn.split(":", 5)
        url = clients["sqs"].get_queue_url(QueueName=name,
                                           QueueOwnerAWSAccountId=account)["QueueUrl"]
        clients["sqs"].send_message(QueueUrl=url, MessageBody=body)
        return True
    response = clients["lambda"].invoke(FunctionName=arn, InvocationType="Event",
                                        Payload=body.encode())
    return int(response.get("StatusCode", 0)) == 202
