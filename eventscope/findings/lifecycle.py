"""One order's life: every event in time order, every consumer's outcome, and the gaps.

Outcome of an event for one consumer: `ok` (succeeded at the first attempt), `retried_then_ok`
(failed, then succeeded), `failed` (no attempt succeeded), or `never_handled` (the consumer is
subscribed, in the catalog or the bus rules, but has no invocation for it). Invocations are
joined by event id, never by time, so a skewed log clock cannot move them to another event.
Gaps: lifecycle steps expected but missing (from the catalog's lifecycles), and consumers
that handled earlier events of the order but not its later cancellation or return. Pure.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from eventscope.catalog.model import Catalog, Lifecycle
from eventscope.findings.frames import DEFAULT_CANCELLATIONS, clean

ATTEMPT_FIELDS = ["request_id", "function", "start_ms", "outcome", "duration_ms", "error_type",
                  "error_message"]


def outcome_of(outcomes: list[str]) -> str:
    """The final outcome of a consumer's attempts (in start order) at one event."""
    if not outcomes:
        return "never_handled"
    if "ok" not in outcomes:
        return "failed"
    return "ok" if outcomes[0] == "ok" else "retried_then_ok"


def subscribers(detail_type: str, catalog: Catalog | None,
                subscriptions: pd.DataFrame | None) -> set[str]:
    """Consumers that should receive a type: declared in the catalog or routed by bus rules."""
    names = ({c.name for c in catalog.consumers if c.subscribes_to(detail_type)} if catalog
             else set())
    if subscriptions is not None and not subscriptions.empty:
        routed = subscriptions[subscriptions["detail_type"] == detail_type]["consumer"]
        names |= set(routed.dropna())
    return names


def cancellation_types(catalog: Catalog | None) -> set[str]:
    """The detail-types that cancel or reverse a lifecycle (catalog, else the defaults)."""
    if catalog and catalog.lifecycles:
        return {t for lifecycle in catalog.lifecycles for t in lifecycle.cancellations}
    return set(DEFAULT_CANCELLATIONS)


def order_lifecycle(key: str, events: pd.DataFrame, attempts: pd.DataFrame,
                    catalog: Catalog | None = None,
                    subscriptions: pd.DataFrame | None = None) -> dict[str, Any]:
    """The lifecycle of one correlation key as a JSON-ready dict (see docs/findings.md)."""
    ordered = events.sort_values(["time_ms", "id"])
    by_event = {eid: group.sort_values("start_ms")
                for eid, group in attempts.groupby("event_id")}
    steps = [_step(row, by_event.get(row["id"]), catalog, subscriptions)
             for row in ordered.to_dict("records")]
    return {"key": key, "events": steps,
            "gaps": missing_steps(ordered, catalog) + missed_cancellations(steps, catalog)}


def _step(event: dict[str, Any], handled: pd.DataFrame | None, catalog: Catalog | None,
          subscriptions: pd.DataFrame | None) -> dict[str, Any]:
    consumers: dict[str, list[dict[str, Any]]] = {}
    if handled is not None:
        for row in handled.to_dict("records"):
            consumers.setdefault(row["consumer"], []).append(
                {k: clean(row[k]) for k in ATTEMPT_FIELDS})
    for name in subscribers(event["detail_type"], catalog, subscriptions):
        consumers.setdefault(name, [])
    return {
        **{k: clean(event[k]) for k in ("id", "source", "detail_type", "version", "time_ms")},
        "consumers": [{"consumer": name, "outcome": outcome_of([a["outcome"] for a in tries]),
                       "attempts": tries} for name, tries in sorted(consumers.items())],
    }


def missing_steps(events: pd.DataFrame, catalog: Catalog | None) -> list[dict[str, Any]]:
    """Lifecycle steps the order should have passed through but has no event for."""
    seen = set(events["detail_type"])
    gaps = []
    for lifecycle in (catalog.lifecycles if catalog else ()):
        if seen & set(lifecycle.all_types):
            gaps += [{"kind": "missing_step", "lifecycle": lifecycle.name, "detail_type": t}
                     for t in _expected(lifecycle, seen) if t not in seen]
    return gaps


def _expected(lifecycle: Lifecycle, seen: set[str]) -> list[str]:
    """Starts always; advances up to the furthest one seen; the end once an end is seen."""
    reached = [i for i, t in enumerate(lifecycle.advances) if t in seen]
    expected = list(lifecycle.starts) if not seen & set(lifecycle.starts) else []
    expected += list(lifecycle.advances[: reached[-1] + 1]) if reached else []
    return expected


def missed_cancellations(steps: list[dict[str, Any]],
                         catalog: Catalog | None) -> list[dict[str, Any]]:
    """Consumers that handled an earlier event of the order but never its cancellation."""
    cancelling = cancellation_types(catalog)
    gaps = []
    for index, step in enumerate(steps):
        if step["detail_type"] not in cancelling:
            continue
        earlier = {c["consumer"] for s in steps[:index] for c in s["consumers"] if c["attempts"]}
        handled = {c["consumer"] for c in step["consumers"] if c["attempts"]}
        gaps += [{"kind": "missed_cancellation", "consumer": name,
                  "detail_type": step["detail_type"], "event_id": step["id"]}
                 for name in sorted(earlier - handled)]
    return gaps
