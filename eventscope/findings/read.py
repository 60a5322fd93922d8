"""The read model both faces call: the CLI and the dashboard get their answers from here.

Owns composing the store reads (`load`), the rollup-backed summaries (`summaries`) and the
pure findings into the answers a face shows, so the two faces cannot drift apart: the
catalog a `--catalog PATH` names, one order's lifecycle (plain rows, no pandas: this module
imports its heavier companions only in the functions that need them), the bus-rules snapshot
in the findings' `subscriptions` shape, missing subscriptions with all their evidence
(catalog, bus rules, data), latency per event type → consumer pair, and the stored-event reader of
the contract checks. No face keeps SQL or analysis of its own (tests/test_layering.py holds them to
it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from eventscope.findings import load
from eventscope.findings.columns import SUBSCRIPTION_COLUMNS, owner_name
from eventscope.findings.lifecycle import declared_lifecycles, order_lifecycle
# the stored detail of an event whose payload retention cleared: faces show it as such
from eventscope.tables import PRUNED_DETAIL  # noqa: F401

if TYPE_CHECKING:  # the heavier modules are imported by the functions that use them, so a
    # lifecycle lookup (and the CLI's start-up) never imports pandas, networkx or jsonschema
    import pandas as pd

    from eventscope.catalog.model import Catalog, EventType
    from eventscope.contracts.checks import EventSource
    from eventscope.store import Store


def dead_letters(engine: Engine, now_ms: int | None = None) -> list[dict[str, Any]]:
    """The dead-letter queues the tap watches, latest sample each (see `load.load_dead_letters`):
    what `check` grades as `dead_letters` and a page shows as the DLQ tile."""
    return load.load_dead_letters(engine, now_ms)


def load_catalog_file(path: str | None) -> Catalog | None:
    """The catalog at `path`, or None without a path (catalog-based findings are then
    skipped); a broken catalog raises `CatalogError` with every problem."""
    if path is None:
        return None
    from eventscope.catalog.loader import load_catalog
    return load_catalog(path)


def find_orders(engine: Engine, query: str) -> list[str]:
    """The correlation keys an order id, event id or key prefix names (index reads); the
    query in its stored form (`stored_form`)."""
    return load.find_correlation_keys(engine, query)


# A typed query as the store holds it (what redaction replaces becomes its token): the faces
# search with it and echo it, never the typed value.
stored_form = load.stored_form


def lifecycle(engine: Engine, key: str, catalog: Catalog | None = None) -> dict[str, Any]:
    """One order's lifecycle (`lifecycle.order_lifecycle`'s dict): its events, every
    consumer's outcome, with the bus rules' routes, from index reads and plain rows; without
    a catalog lifecycle for its events, its expected steps inferred from similar orders."""
    events, attempts = load.lifecycle_rows(engine, key)
    for attempt in attempts:
        attempt["function"] = attempt["function"] or attempt["consumer"]
        attempt["consumer"] = owner_name(attempt["function"], catalog)
    seen = [e["detail_type"] for e in sorted(events, key=lambda e: (e["time_ms"], e["id"]))]
    similar = (load.similar_orders(engine, seen[-1], key)
               if seen and not declared_lifecycles(seen, catalog) else None)
    return order_lifecycle(key, events, attempts, catalog,
                           bus_subscription_rows(engine, catalog), similar)


def shown_url(url: str) -> str:
    """A store URL as shown to people: without its password, also when it does not parse."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):  # no scheme, a port that is not a number
        scheme, sep, rest = url.partition("://")
        userinfo, at, host = rest.rpartition("@")
        if not (sep and at and ":" in userinfo):
            return url
        return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


def bus_subscription_rows(engine: Engine, catalog: Catalog | None = None
                          ) -> list[dict[str, Any]] | None:
    """The latest bus-rules snapshot of every bus (rows of SUBSCRIPTION_COLUMNS), each
    target's function named as the catalog consumer that owns it (as in attempts); None when
    rules were never collected."""
    rows = [row for bus in load.rule_buses(engine) for row in load.subscription_rows(engine, bus)]
    if not rows:
        return None
    return [{**row, "consumer": owner_name(row["consumer"], catalog)} for row in rows]


def bus_rules(engine: Engine, catalog: Catalog | None = None) -> list[dict[str, Any]] | None:
    """The enabled pattern rules of the latest snapshot of every bus, as the graph matches
    them against types (`graph.build_graph`'s `rules`): rule, bus, pattern (the JSON text),
    consumers (each target named as the catalog consumer owning it, as in attempts).
    None when rules were never collected; only rules that deliver to consumers
    (`load.delivers_to_consumers`)."""
    buses = load.rule_buses(engine)
    if not buses:
        return None
    return [{"rule": rule["rule_name"], "bus": bus, "pattern": rule["event_pattern"],
             "consumers": sorted({owner_name(load.target_name(t["arn"], t["target_id"]),
                                             catalog) for t in rule["targets"]})}
            for bus in buses for rule in load.latest_rules(engine, bus)
            if load.delivers_to_consumers(rule)]


def bus_subscriptions(engine: Engine, catalog: Catalog | None = None) -> pd.DataFrame | None:
    """`bus_subscription_rows` as the findings' `subscriptions` frame."""
    rows = bus_subscription_rows(engine, catalog)
    return None if rows is None else load.frame(rows, SUBSCRIPTION_COLUMNS)


def affected_orders(missing: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every order a missing subscription affected, one row each (`consumer`, `detail_type`,
    `order`, `event_id` of the cancellation, `time_ms`), findings in their order, latest
    cancellation first: what the faces list and page."""
    return [{"consumer": m["consumer"], "detail_type": m["detail_type"], **order}
            for m in missing for order in (m["observed"] or {}).get("affected", [])]


def missing_subscriptions(engine: Engine, catalog: Catalog | None = None,
                          since_ms: int | None = None, until_ms: int | None = None,
                          latest: int | None = None) -> list[dict[str, Any]]:
    """Missing subscriptions with all their evidence: declared gaps from the catalog and the
    latest bus-rules snapshot (`static`, needs a catalog's lifecycles) merged with the gaps
    seen in the data (`observed`: orders cancelled in [since_ms, until_ms), of the `latest`
    cancellations when given)."""
    from eventscope.findings import subscriptions as subscriptions_module
    from eventscope.findings import summaries
    static = (subscriptions_module.static_missing(catalog, bus_subscriptions(engine, catalog))
              if catalog is not None else [])
    observed = summaries.observed_missing_subscriptions(engine, catalog, since_ms, until_ms,
                                                        latest)
    return subscriptions_module.missing_subscriptions(static, observed)


def latency(engine: Engine, catalog: Catalog | None = None, since_ms: int | None = None,
            until_ms: int | None = None, per_function: int | None = None,
            total: int | None = None) -> pd.DataFrame:
    """Event time → first invocation / first success per (detail-type, consumer) pair
    (`latency.PAIR_COLUMNS`). Without `per_function`: from the latency rollup, over the
    (function, event) pairs first tried in the window (minute resolution; p50/p95
    approximate, `latency.APPROXIMATE`). With it: exactly, over each function's latest
    `per_function` invocations started in the window, about `total` in all when given
    (`load.load_latest_attempts`: index reads)."""
    from eventscope.findings import latency as latency_module
    if per_function is None:
        from eventscope.findings.summaries import with_consumers
        return latency_module.latency_from_histograms(
            with_consumers(load.load_latency_totals(engine, since_ms, until_ms), catalog))
    from eventscope.findings.frames import resolve_consumers
    attempts = load.load_latest_attempts(engine, since_ms, until_ms, per_function, total)
    return latency_module.latency_by_pair(resolve_consumers(attempts, catalog))


def stored_event_source(store: Store, sample: int) -> EventSource:
    """The contract checks' `live` input: for an event type and version, the (id, detail
    JSON) of its newest `sample` stored events of that version. Types versioned by a `.vN`
    detail-type suffix are read under that suffix; the others by reading each payload's
    version the type's `version-from` way (`events_of_version`), whatever version the store
    recorded."""
    from eventscope.contracts.checks import events_of_version

    def events(event_type: EventType, version: str) -> Iterator[tuple[str, str]]:
        name = event_type.detail_type
        if event_type.version_from == "detail-type-suffix":
            rows = store.iter_event_details(f"{name}.v{version}", event_type.source, None,
                                            limit=sample)
            return ((event_id, detail) for event_id, _, detail in rows)
        rows = store.iter_event_details(name, event_type.source, None)
        return events_of_version(event_type, version,
                                 ((event_id, name, detail) for event_id, _, detail in rows),
                                 sample)
    return events


def retention(engine: Engine) -> dict[str, Any]:
    """The store's retention as readers show it: days per kind, every kind's horizon at the
    last prune (`kept_since`), the kinds a prune removed rows of (`trimmed_before`)."""
    from eventscope.retention import read_retention
    return read_retention(engine).as_dict()


def retention_summary(engine: Engine) -> str | None:
    """One line saying what the store keeps since when (None: never pruned)."""
    from eventscope.retention import read_retention
    return read_retention(engine).summary()


def retention_notes(engine: Engine, since_ms: int | None, needs: tuple[str, ...]
                    ) -> list[str]:
    """Plain reasons to show with a finding over [since_ms, ...) reading the `needs` kinds
    (`RAW`, `rollup_needs`) when its window starts before rows retention removed."""
    from eventscope.retention import read_retention
    return read_retention(engine).notes(since_ms, needs)


RAW: tuple[str, ...] = ("raw",)  # findings over raw rows: latency, lifecycles, drill-downs


def rollup_needs(since_ms: int | None, bucket_ms: int | None = None) -> tuple[str, ...]:
    """The summaries a rollup-backed finding reads (`load._spans`): whole days from the
    daily ones, a window's partial first day or sub-day buckets from the per-minute ones."""
    from eventscope.tables import DAY_MS, MINUTE_MS
    partial = since_ms is not None and (since_ms - since_ms % MINUTE_MS) % DAY_MS != 0
    if partial or (bucket_ms and bucket_ms % DAY_MS):
        return ("minute_rollups", "day_rollups")
    return ("day_rollups",)
