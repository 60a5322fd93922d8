"""Missing subscriptions, the article's warranty story, from declarations and from data.

Static: a consumer that subscribes (in the catalog, or through a bus rule) to a lifecycle's
events but not to one of its cancellations. From data: orders cancelled or returned where a
consumer handled earlier events of the order but never the cancellation. Either alone is a
finding; both together are stronger evidence. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from eventscope.catalog.model import Catalog

EXAMPLES = 5


def _subscribed(catalog: Catalog | None, rules: pd.DataFrame | None
                ) -> dict[str, dict[str, set[str]]]:
    """{"catalog": {consumer: types}, "bus_rules": {consumer: types}} for the given inputs."""
    views: dict[str, dict[str, set[str]]] = {}
    if catalog is not None:
        views["catalog"] = {c.name: {s.detail_type for s in c.subscriptions}
                            for c in catalog.consumers}
    if rules is not None:
        routed = rules.dropna(subset=["consumer", "detail_type"])
        views["bus_rules"] = {name: set(group["detail_type"])
                              for name, group in routed.groupby("consumer")}
    return views


def static_missing(catalog: Catalog, rules: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """(consumer, cancellation type) pairs missing in the catalog and/or the bus rules."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for view, by_consumer in _subscribed(catalog, rules).items():
        for lifecycle in catalog.lifecycles:
            acting = set(lifecycle.starts + lifecycle.advances + lifecycle.ends)
            for consumer, types in by_consumer.items():
                if not types & acting:
                    continue
                for missing in lifecycle.cancellations:
                    if missing not in types:
                        entry = found.setdefault((consumer, missing), {
                            "consumer": consumer, "detail_type": missing,
                            "lifecycle": lifecycle.name, "subscribed_to": set(), "views": []})
                        entry["views"].append(view)
                        entry["subscribed_to"] |= types & acting
    return [{**e, "subscribed_to": sorted(e["subscribed_to"])} for _, e in sorted(found.items())]


def observed_missing(events: pd.DataFrame, attempts: pd.DataFrame,
                     cancellations: set[str]) -> list[dict[str, Any]]:
    """Per (consumer, cancellation type): orders where the consumer saw earlier events only:
    their count, the first EXAMPLES keys (sorted) and `affected`, every one of them (order,
    the cancellation's event id and time; latest first)."""
    named = events["correlation_key"].notna() & (events["correlation_key"] != "")  # "": none
    keyed = events[named][["id", "correlation_key", "detail_type", "time_ms"]]
    cancels = keyed[keyed["detail_type"].isin(cancellations)]
    handled = attempts[attempts["event_id"].notna()][["consumer", "event_id"]].drop_duplicates()
    seen = handled.merge(keyed, left_on="event_id", right_on="id")
    first_seen = seen.groupby(["consumer", "correlation_key"], as_index=False)["time_ms"].min()
    return missing_from(cancels, first_seen,
                        handled[handled["event_id"].isin(cancels["id"])])


def missing_from(cancels: pd.DataFrame, first_seen: pd.DataFrame,
                 handled_cancels: pd.DataFrame) -> list[dict[str, Any]]:
    """`observed_missing` from what it is made of (the store computes these in SQL):
    `cancels` (id, correlation_key, detail_type, time_ms: the orders' cancellation events),
    `first_seen` (consumer, correlation_key, time_ms: when each consumer first handled an
    event of each order) and `handled_cancels` (consumer, event_id: who handled which
    cancellation)."""
    if cancels.empty or first_seen.empty:  # nothing cancelled, or nobody handled anything
        return []
    pairs = cancels.merge(first_seen, on="correlation_key", suffixes=("", "_first"))
    pairs = pairs[pairs["time_ms_first"] < pairs["time_ms"]]
    # pairs whose consumer did not handle the cancellation itself (a join, not a Python set:
    # iterating a hundred thousand Arrow-backed strings took most of this function's time)
    done = handled_cancels[["consumer", "event_id"]].drop_duplicates().rename(
        columns={"event_id": "id"})
    flagged = pairs.merge(done, on=["consumer", "id"], how="left", indicator=True)
    return missed_cancellations(flagged[flagged["_merge"] == "left_only"])


def missed_cancellations(missed: pd.DataFrame) -> list[dict[str, Any]]:
    """`observed_missing`'s list from the cancellations missed (consumer, id,
    correlation_key, detail_type, time_ms: a consumer that handled an earlier event of the
    order and not this cancellation; the store finds them in SQL)."""
    found = []
    for (consumer, detail_type), group in missed.groupby(["consumer", "detail_type"]):
        first = group.sort_values(["time_ms", "id"]).drop_duplicates("correlation_key")
        affected = [{"order": key, "event_id": event_id, "time_ms": int(time_ms)}
                    for key, event_id, time_ms in sorted(
                        zip(first["correlation_key"], first["id"], first["time_ms"]),
                        key=lambda row: (-row[2], row[0]))]
        orders = sorted(first["correlation_key"])
        found.append({"consumer": consumer, "detail_type": detail_type,
                      "orders": len(orders), "examples": orders[:EXAMPLES],
                      "affected": affected})
    return found


def missing_subscriptions(static: list[dict[str, Any]],
                          observed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Static and observed evidence merged per (consumer, type), with its strength."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for item in static:
        merged[(item["consumer"], item["detail_type"])] = {
            "consumer": item["consumer"], "detail_type": item["detail_type"],
            "lifecycle": item["lifecycle"], "static": item, "observed": None}
    for item in observed:
        entry = merged.setdefault((item["consumer"], item["detail_type"]), {
            "consumer": item["consumer"], "detail_type": item["detail_type"],
            "lifecycle": None, "static": None, "observed": None})
        entry["observed"] = item
    for entry in merged.values():
        both = entry["static"] is not None and entry["observed"] is not None
        entry["evidence"] = "declarations_and_data" if both else (
            "declarations" if entry["static"] is not None else "data")
    return [merged[k] for k in sorted(merged)]
