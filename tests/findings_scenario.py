"""A small hand-built company for the findings tests: events, invocations, catalog, rules.

One order (o-1) placed, paid and cancelled; Billing handles everything (a double timeout on
OrderPaid), Warranty fails once then succeeds on OrderPlaced, handles OrderPaid with a log
clock 200 ms behind the event time, and never sees the cancellation; Loyalty is subscribed to
cancellations but has no invocations at all; a ProductViewed event has no consumer; one
Billing invocation carries no event id and one email-fn invocation names an unknown event.
"""

from __future__ import annotations

import pandas as pd

from eventscope.catalog.model import (Catalog, Consumer, EventType, Lifecycle, SchemaVersion,
                                      Subscription)
from eventscope.findings.frames import ATTEMPT_COLUMNS, EVENT_COLUMNS, SUBSCRIPTION_COLUMNS
from eventscope.records import BusEvent, Invocation

T0 = 1_700_000_000_000


def bus_events() -> list[BusEvent]:
    def event(id_: str, source: str, kind: str, offset: int, key: str | None, version: str,
              detail: str) -> BusEvent:
        return BusEvent(id=id_, source=source, detail_type=kind, time_ms=T0 + offset,
                        detail=detail, size_bytes=300 + len(detail), version=version,
                        correlation_key=key, account="123456789012", region="eu-west-1")
    return [
        event("e1", "shop", "OrderPlaced", 0, "o-1", "1",
              '{"orderId":"o-1","version":"1","email":"ann@example.com"}'),
        event("e2", "payments", "OrderPaid", 60_000, "o-1", "2",
              '{"orderId":"o-1","version":"2","card":"4111111111111111"}'),
        event("e3", "shop", "OrderCancelled", 120_000, "o-1", "1",
              '{"orderId":"o-1","version":"1"}'),
        event("e4", "web", "ProductViewed", 500, None, "1", '{"sku":"A-1","version":"1"}'),
    ]


def invocations() -> list[Invocation]:
    def call(rid: str, fn: str, event_id: str | None, offset: int, outcome: str,
             duration: float, error: tuple[str, str] | None = None) -> Invocation:
        return Invocation(request_id=rid, consumer=fn, log_group=f"/aws/lambda/{fn}",
                          log_stream="2023/11/14/[$LATEST]abc", start_ms=T0 + offset,
                          outcome=outcome, event_id=event_id, end_ms=T0 + offset + int(duration),
                          duration_ms=duration, error_type=error[0] if error else None,
                          error_message=error[1] if error else None, complete=True)
    return [
        call("r1", "billing-fn", "e1", 200, "ok", 100.0),
        call("r2", "warranty-fn", "e1", 300, "error", 50.0, ("ValueError", "bad sku A-1")),
        call("r2", "warranty-fn", "e1", 60_300, "ok", 70.0),  # async retry, same request id
        call("r3", "warranty-fn", "e2", 59_800, "ok", 30.0),  # log clock behind event time
        call("r4", "billing-fn", "e2", 61_000, "timeout", 3000.0,
             ("Sandbox.Timedout", "Task timed out after 3.00 seconds")),
        call("r4", "billing-fn", "e2", 62_000, "timeout", 3000.0,
             ("Sandbox.Timedout", "Task timed out after 3.00 seconds")),
        call("r5", "billing-fn", "e3", 120_100, "ok", 20.0),
        call("r6", "billing-fn", None, 100_000, "ok", 10.0),
        call("r7", "email-fn", "e-missing", 100_500, "error", 5.0, ("KeyError", "'orderId'")),
    ]


def catalog() -> Catalog:
    schema = {"type": "object", "required": ["orderId"],
              "properties": {"orderId": {"type": "string"}}}
    return Catalog(
        event_types=(
            EventType("OrderPlaced", "shop", "team-shop", versions=(SchemaVersion("1", schema),),
                      pii_fields=("detail.email",)),
            EventType("OrderPaid", "payments", "team-payments",
                      versions=(SchemaVersion("1", schema),)),
            EventType("OrderCancelled", "shop", "team-shop",
                      versions=(SchemaVersion("1", schema),)),
            EventType("OrderShipped", "shop", "team-shop"),
        ),
        consumers=(
            Consumer("Billing", "team-billing", functions=("billing-fn",), subscriptions=(
                Subscription("OrderPlaced"), Subscription("OrderPaid"),
                Subscription("OrderCancelled"))),
            Consumer("Warranty", "team-warranty", functions=("warranty-fn",), subscriptions=(
                Subscription("OrderPlaced"), Subscription("OrderPaid"))),
            Consumer("Loyalty", "team-loyalty", functions=("loyalty-fn",),
                     subscriptions=(Subscription("OrderCancelled"),)),
        ),
        lifecycles=(Lifecycle("order", "detail.orderId", starts=("OrderPlaced",),
                              advances=("OrderPaid", "OrderShipped"), ends=("OrderDelivered",),
                              cancellations=("OrderCancelled", "OrderReturned")),),
        teams={"team-warranty": {"webhook_url": None}},
    )


def events_frame() -> pd.DataFrame:
    rows = [{c: getattr(e, c) for c in EVENT_COLUMNS} for e in bus_events()]
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


def events_with_detail() -> pd.DataFrame:
    frame = events_frame()
    frame["detail"] = [e.detail for e in bus_events()]
    return frame


def attempts_frame() -> pd.DataFrame:
    by_id = {e.id: e for e in bus_events()}
    rows = []
    for i in invocations():
        event = by_id.get(i.event_id or "")
        rows.append({
            "request_id": i.request_id, "start_ms": i.start_ms, "consumer": i.consumer,
            "function": i.consumer, "event_id": i.event_id, "outcome": i.outcome,
            "duration_ms": i.duration_ms, "error_type": i.error_type,
            "error_message": i.error_message,
            "source": event.source if event else None,
            "detail_type": event.detail_type if event else None,
            "version": event.version if event else None,
            "event_time_ms": event.time_ms if event else None,
        })
    return pd.DataFrame(rows, columns=ATTEMPT_COLUMNS)


def rules_frame() -> pd.DataFrame:
    return pd.DataFrame([
        {"rule": "orders-to-billing", "source": "shop", "detail_type": "OrderPlaced",
         "target": "arn:aws:lambda:eu-west-1:123456789012:function:billing-fn",
         "consumer": "Billing"},
        {"rule": "orders-to-warranty", "source": "shop", "detail_type": "OrderPlaced",
         "target": "arn:aws:lambda:eu-west-1:123456789012:function:warranty-fn",
         "consumer": "Warranty"},
        {"rule": "orders-to-fraud", "source": "shop", "detail_type": "OrderPlaced",
         "target": "arn:aws:lambda:eu-west-1:123456789012:function:fraud-fn",
         "consumer": "fraud-fn"},
    ], columns=SUBSCRIPTION_COLUMNS)
