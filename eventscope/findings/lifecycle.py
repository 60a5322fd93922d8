"""One order's life: every event in time order, every consumer's outcome, and the gaps.

Outcome of an event for one consumer: `ok` (succeeded at the first attempt), `retried_then_ok`
(failed, then succeeded), `failed` (no attempt succeeded), or `never_handled` (the consumer is
subscribed, in the catalog or the bus rules, but has no invocation for it). Invocations are
joined by event id, never by time, so a skewed log clock cannot move them to another event.
Gaps: lifecycle steps expected but missing (from the catalog's declared lifecycle steps and
their `requires`; without a declared lifecycle, inferred from the steps similar orders went
through, and said so in `gaps_basis`), and consumers that handled earlier events of the order
but not its later cancellation or return. Pure, and
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
                    subscriptions: Rows | None = None,
                    similar: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """The lifecycle of one correlation key as a JSON-ready dict (see docs/findings.md).

    `events`: the key's events (`id`, `source`, `detail_type`, `version`, `time_ms`);
    `attempts`: the invocations that handled them (`event_id`, `consumer` as the catalog
    names it, and ATTEMPT_FIELDS); `subscriptions`: the bus rules' routes, if known;
    `similar`: other orders' detail-types in time order (`load.similar_orders`), read only
    when no catalog lifecycle covers this order, to infer its expected steps."""
    ordered = sorted(plain_rows(events), key=lambda e: (e["time_ms"], e["id"]))
    by_event: dict[Any, list[Mapping[str, Any]]] = {}
    for row in plain_rows(attempts):
        if row["event_id"] is not None:
            by_event.setdefault(row["event_id"], []).append(row)
    routes = None if subscriptions is None else plain_rows(subscriptions)
    steps = [_step(event, sorted(by_event.get(event["id"], ()), key=_start), catalog, routes)
             for event in ordered]
    seen = [event["detail_type"] for event in ordered]
    if declared_lifecycles(seen, catalog):
        gaps, basis = missing_steps(ordered, catalog), declared_basis(seen, catalog)
    else:
        gaps, basis = inferred_gaps(seen, similar or {})
    return {"key": key, "events": steps, "gaps_basis": basis,
            "gaps": gaps + missed_cancellations(steps, catalog)}


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


def declared_lifecycles(seen: Iterable[str], catalog: Catalog | None) -> list[Lifecycle]:
    """The catalog's lifecycles the order takes part in (it has one of their steps)."""
    kinds = set(seen)
    return [lc for lc in (catalog.lifecycles if catalog else ()) if kinds & set(lc.all_types)]


def declared_basis(seen: Iterable[str], catalog: Catalog | None) -> str:
    """Where the order's expected steps come from, in words, when the catalog declares them."""
    names = ", ".join(repr(lc.name) for lc in declared_lifecycles(seen, catalog))
    return f"the catalog's declared lifecycle steps ({names})"


def missing_steps(events: Rows, catalog: Catalog | None) -> list[dict[str, Any]]:
    """Declared lifecycle steps the order should have passed through but has no event for."""
    seen = {event["detail_type"] for event in plain_rows(events)}
    gaps = []
    for lifecycle in declared_lifecycles(seen, catalog):
        gaps += [{"kind": "missing_step", "lifecycle": lifecycle.name, "detail_type": t}
                 for t in expected_steps(lifecycle, seen) if t not in seen]
    return gaps


def expected_steps(lifecycle: Lifecycle, seen: set[str]) -> list[str]:
    """The steps an entity that reached `seen` must have passed, in the lifecycle's order.

    A start always (when none was seen). With `requires`: every step required, directly or
    through another, by a step seen; a step nothing requires (one some entities take) and
    anything after a cancellation are never expected. Without it: the advances up to the
    furthest one seen, read as one path."""
    expected = set() if seen & set(lifecycle.starts) else set(lifecycle.starts[:1])
    if lifecycle.requires:
        stack = [t for t in seen if t in lifecycle.requires]
        while stack:
            for before in lifecycle.requires.get(stack.pop(), ()):
                if before not in expected:
                    expected.add(before)
                    stack.append(before)
    else:
        reached = [i for i, t in enumerate(lifecycle.advances) if t in seen]
        expected |= set(lifecycle.advances[: reached[-1] + 1]) if reached else set()
    return [t for t in dict.fromkeys(lifecycle.all_types) if t in expected]


INFER_SHARE = 0.9  # a step seen in this share of similar orders is expected
INFER_MIN_ORDERS = 5  # fewer similar orders than this: nothing is inferred


def inferred_gaps(seen: list[str], similar: Mapping[str, list[str]],
                  share: float = INFER_SHARE) -> tuple[list[dict[str, Any]], str]:
    """Without a declared lifecycle: the steps that at least `share` of the orders whose last
    step is this order's last step went through, and this order did not; and, in words, what
    that was inferred from (or why nothing could be)."""
    if not seen:
        return [], "no events: no steps expected"
    last = seen[-1]
    alike = [set(types) for types in similar.values() if types and types[-1] == last]
    if len(alike) < INFER_MIN_ORDERS:
        return [], (f"no lifecycle declared; {len(alike)} similar order(s) (last step "
                    f"{last}): too few to infer steps from")
    counts: dict[str, int] = {}
    for kinds in alike:
        for kind in kinds:
            counts[kind] = counts.get(kind, 0) + 1
    usual = [t for t, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
             if n >= share * len(alike)]
    basis = (f"inferred from {len(alike)} similar orders (last step {last}): steps "
             f"{share:.0%} of them went through, no lifecycle declared")
    gaps = [{"kind": "missing_step", "lifecycle": "inferred", "detail_type": t,
             "basis": f"inferred from {len(alike)} similar orders"}
            for t in usual if t not in set(seen)]
    return gaps, basis


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


def missed_handling(life: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Where an expected consumer never handled a step of the order (`order_lifecycle`'s
    answer): subscribed but never handled (`never_handled`), or a missed cancellation; one
    entry per (consumer, event) with the step's time, in time order, for the timeline."""
    steps = {step["id"]: step for step in life["events"]}
    found: dict[tuple[str, Any], dict[str, Any]] = {}
    for step in life["events"]:
        for consumer in step["consumers"]:
            if not consumer["attempts"]:
                found[(consumer["consumer"], step["id"])] = {
                    "consumer": consumer["consumer"], "detail_type": step["detail_type"],
                    "event_id": step["id"], "time_ms": step["time_ms"],
                    "why": "subscribed, never handled"}
    for gap in life["gaps"]:
        step = steps.get(gap.get("event_id"))
        if gap["kind"] == "missed_cancellation" and step is not None:
            found[(gap["consumer"], step["id"])] = {
                "consumer": gap["consumer"], "detail_type": step["detail_type"],
                "event_id": step["id"], "time_ms": step["time_ms"],
                "why": "handled earlier events of the order, never this cancellation"}
    return sorted(found.values(), key=lambda m: (m["time_ms"], m["consumer"]))
