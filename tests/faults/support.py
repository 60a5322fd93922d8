"""Shared pieces of the fault tests: real-shaped EventBridge envelopes sent to the tap queue
over moto's HTTP server, and the ledger checks every case ends with (nothing lost, nothing
duplicated).

An envelope is what an EventBridge rule delivers to an SQS target: the message body is the
event as JSON (`version` "0", `id`, `detail-type`, `source`, `account`, `time`, `region`,
`resources`, `detail`), per the EventBridge user guide's "Amazon EventBridge events" page.
Sending it straight to the queue skips moto's slower put_events without changing what the
collector reads.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from eventscope.collectors.tap import install_tap
from eventscope.collectors.tap_collector import TapSettings
from eventscope.store import Store, events as events_table, quarantine

BUS = "faults-bus"


def envelope(event_id: str | None = None, order_id: str = "ord-1", *,
             source: str = "com.shop.orders", detail_type: str = "OrderPlaced",
             time: str = "2026-11-30T10:00:00Z", note: str = "") -> dict[str, Any]:
    """One EventBridge event as its rule target receives it (`note` pads its detail)."""
    detail: dict[str, Any] = {"version": "1", "orderId": order_id, "amount": 12.5}
    if note:
        detail["note"] = note
    return {"version": "0", "id": event_id or str(uuid.uuid4()), "detail-type": detail_type,
            "source": source, "account": "123456789012", "time": time, "region": "us-east-1",
            "resources": [], "detail": detail}


def send(sqs: Any, url: str, bodies: Iterable[dict[str, Any] | str]) -> None:
    """Send each body (an envelope, or raw text) as one message, ten per call."""
    texts = [b if isinstance(b, str) else json.dumps(b) for b in bodies]
    for start in range(0, len(texts), 10):
        response = sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": text} for i, text in enumerate(texts[start:start + 10])])
        assert not response.get("Failed"), response


def install(sqs: Any, events: Any, visibility: int = 2) -> tuple[str, str]:
    """The tap installed on a fresh bus: (queue URL, DLQ URL), with a short visibility."""
    events.create_event_bus(Name=BUS)
    url = install_tap(sqs, events, BUS).queue_url
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(visibility)})
    dlq = sqs.get_queue_url(QueueName=f"eventscope-tap-{BUS}-dlq")["QueueUrl"]
    return url, dlq


def tap_settings(url: str, dlq: str | None = None, **overrides: Any) -> TapSettings:
    return TapSettings(queue_url=url, wait_seconds=0, store_retry_seconds=0, dlq_url=dlq,
                       **overrides)


def stored_ids(store_or_engine: Store | sa.engine.Engine) -> Counter[str]:
    """How many times each event id is stored (the primary key makes 2 impossible; the
    count is what the test asserts, not an assumption)."""
    engine = getattr(store_or_engine, "engine", store_or_engine)
    with engine.connect() as conn:
        return Counter(conn.execute(sa.select(events_table.c.id)).scalars())


def quarantined(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            sa.select(quarantine.c.origin, quarantine.c.position, quarantine.c.reason))]


def depth(sqs: Any, url: str) -> int:
    """Messages on a queue, visible or in flight."""
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"])


def assert_exactly_once(store: Store, expected: Iterable[str]) -> None:
    """Every expected id stored exactly once, and nothing else stored."""
    found = stored_ids(store)
    wanted = set(expected)
    missing = wanted - set(found)
    extra = set(found) - wanted
    assert not missing, f"{len(missing)} event(s) lost, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} unexpected event(s) stored, e.g. {sorted(extra)[:3]}"
    assert max(found.values(), default=1) == 1
