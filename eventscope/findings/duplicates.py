"""Duplicates and idempotency: repeated deliveries, events processed twice, producer re-sends.

Lambda's asynchronous retries reuse a request id, so a new request id for the same event and
consumer is a separate delivery (EventBridge at-least-once, a replay, two rules). Two or more
successful invocations of one consumer for one event are a likely idempotency bug. A producer
re-send is the same (source, detail-type, correlation key, payload) under different event
ids. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd

EXAMPLES = 5


def repeated_deliveries(attempts: pd.DataFrame) -> pd.DataFrame:
    """Per (consumer, event): deliveries (distinct request ids) and successful invocations."""
    attributed = attempts[attempts["event_id"].notna()]
    flagged = attributed.assign(is_ok=attributed["outcome"] == "ok")
    return flagged.groupby(["consumer", "event_id"]).agg(
        detail_type=("detail_type", "first"), deliveries=("request_id", "nunique"),
        successes=("is_ok", "sum")).reset_index()


def duplicates_by_consumer(attempts: pd.DataFrame) -> list[dict[str, Any]]:
    """Per consumer: events delivered more than once and events processed successfully twice."""
    return duplicates_from_pairs(repeated_deliveries(attempts))


def duplicates_from_pairs(per_event: pd.DataFrame) -> list[dict[str, Any]]:
    """`duplicates_by_consumer` from `repeated_deliveries`' rows (`events`: the rows of the
    consumer; when only the pairs delivered or processed more than once are given, the
    caller sets it from elsewhere)."""
    found = []
    for consumer, group in per_event.groupby("consumer"):
        redelivered = group[group["deliveries"] > 1]
        twice = group[group["successes"] > 1]
        if redelivered.empty and twice.empty:
            continue
        found.append({
            "consumer": consumer, "events": int(len(group)),
            "delivered_more_than_once": int(len(redelivered)),
            "processed_twice": int(len(twice)),
            "processed_twice_by_type": {str(k): int(v) for k, v in
                                        twice.groupby("detail_type").size().items()},
            "examples": sorted(twice["event_id"])[:EXAMPLES]
            or sorted(redelivered["event_id"])[:EXAMPLES],
        })
    return found


def producer_resends(events: pd.DataFrame) -> list[dict[str, Any]]:
    """Groups of events with the same source, type, key and payload under different ids."""
    keyed = events[events["correlation_key"].notna()]
    keyed = keyed.assign(payload_hash=[hashlib.sha1(d.encode()).hexdigest()[:16]
                                       for d in keyed["detail"]])
    groups = keyed.groupby(["source", "detail_type", "correlation_key", "payload_hash"])
    found = []
    for (source, detail_type, key, digest), group in groups:
        if group["id"].nunique() > 1:
            found.append({"source": source, "detail_type": detail_type, "correlation_key": key,
                          "payload_hash": digest, "event_ids": sorted(group["id"])})
    return found
