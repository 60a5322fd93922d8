"""One order's life: every event in time order, every consumer's outcome, and the gaps.

Outcome of an event for one consumer: `ok` (succeeded at the first attempt), `retried_then_ok`
(failed, then succeeded), `failed` (no attempt succeeded), or `never_handled` (the consumer is
subscribed, in the catalog or the bus rules, but has no invocation for it). Invocations are
joined by event id, never by time, so a skewed log clock cannot move them to another event.
Gaps: lifecycle steps expected but missing (from the catalog's lifecycles), and consumers
that handled earlier events of the order but not its later cancellation or return. Pure, and
on plain rows (dicts, as `load.lifecycle_rows` reads them): no pandas on the lookup path, so
the lookup answers in milliseconds and `eventscope lifecycle` starts fast. DataFrames of the
same columns are accepted too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Union

from eventscope.findings.columns import DEFAULT_CANCELLATIONS

if TYPE_CHECKING:
    import pandas as pd

    from eventscope.catalog.model import Catalog, Lifecycle

Rows = Union[Iterable[Mapping[str, Any]], "pd.DataFrame"]

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
                subscriptions: Rows | None) -> set[str]:
    """Consumers that should receive a type: declared in the catalog or routed by bus rules
    (`subscriptions`: rows with `detail_type` and `consumer`)."""
    names = ({c.name for c in catalog.consumers if c.subscribes_to(detail_type)}
             if catalog else set())
    if subscriptions is not None:
        names |= {row["consumer"] for row in plain_rows(subscriptions)
                  if row["detail_type"] == detail_type and row["consumer"] is not None}
    return names


def cancellation_types(catalog: Catalog | None) -> set[str]:
    """The detail-types that cancel or reverse a lifecycle (catalog, else the defaults)."""
    if catalog and catalog.lifecycles:
        return {t for lifecycle in catalog.lifecycles for t in lifecycle.cancellations}
    return set(DEFAULT_CANCELLATIONS)


def plain_rows(rows: Rows) -> list[Mapping[str, Any]]:
    """Rows as mappings of plain values: a DataFrame's records with NaN as None and numpy
    scalars as Python's, or the given mappings as they are (read, never changed)."""
    if hasattr(rows, "to_dict"):
        return [{k: _plain(v) for k, v in row.items()} for row in rows.to_dict("records")]
    return list(rows)


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return None if type(value).__name__ in ("NAType", "NaTType") else value


def order_lifecycle(key: str, events: Rows, attempts: Rows, catalog: Catalog | None = None,
                    subscriptions: Rows | None = None) -> dict[str, Any]:
    """The lifecycle of one correlation key as a JSON-ready dict (see docs/findings.md).

    `events`: the key's events (`id`, `source`, `detail_type`, `version`, `time_ms`);
    `attempts`: the invocations that handled them (`event_id`, `consumer` as the catalog
    names it, and ATTEMPT_FIELDS); `subscriptions`: the bus rules' routes, if known."""
    ordered = sorted(plain_rows(events), key=lambda e: (e["time_ms"], e["id"]))
    by_event: dict[Any, list[Mapping[str, Any]]] = {}
    for row in plain_rows(attempts):
        if row["event_id"] is not None:
            by_event.setdefault(row["event_id"], []).append(row)
    routes = None if subscriptions is None else plain_rows(subscriptions)
    steps = [_step(event, sorted(by_event.get(event["id"], ()), key=_start), catalog, routes)
             for event in ordered]
    return {"key": key, "events": steps,
            "gaps": missing_steps(ordered, catalog) + missed_cancellations(steps, catalog)}


def _start(attempt: Mapping[str, Any]) -> Any:
    return attempt["start_ms"]


def _step(event: Mapping[str, Any], handled: list[Mapping[str, Any]],
          catalog: Catalog | None,
          subscriptions: list[Mapping[str, Any]] | None) -> dict[str, Any]:
    consumers: dict[str, list[dict[str, Any]]] = {}
    for row in handled:
        consumers.setdefault(row["consumer"], []).append({k: row[k] for k in ATTEMPT_FIELDS})
    for name in subscribers(event["detail_type"], catalog, subscriptions):
        consumers.setdefault(name, [])
    return {
        **{k: event[k] for k in ("id", "source", "detail_type", "version", "time_ms")},
        "consumers": [{"consumer": name, "outcome": outcome_of([a["outcome"] for a in tries]),
                       "attempts": tries} for name, tries in sorted(consumers.items())],
    }


def missing_steps(events: Rows, catalog: Catalog | None) -> list[dict[str, Any]]:
    """Lifecycle steps the order should have passed through but has no event for."""
    seen = {event["detail_type"] for event in plain_rows(events)}
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
