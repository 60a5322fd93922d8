"""The read model both faces call: the CLI and the dashboard get their answers from here.

Owns composing the store reads (`load`), the rollup-backed summaries (`summaries`) and the
pure findings into the answers a face shows, so the two faces cannot drift apart: the
catalog a `--catalog PATH` names, the bus-rules snapshot in the findings' `subscriptions`
shape, missing subscriptions with all their evidence (catalog, bus rules, data), latency per
event type → consumer pair, and the stored-event reader of the contract checks. No face
keeps SQL or analysis of its own (tests/test_layering.py holds them to it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from eventscope.catalog.loader import load_catalog
from eventscope.catalog.model import Catalog, EventType
from eventscope.contracts.checks import EventSource, events_of_version
from eventscope.findings import latency as latency_module
from eventscope.findings import load, summaries
from eventscope.findings import subscriptions as subscriptions_module
from eventscope.findings.frames import resolve_consumers
from eventscope.store import Store

def dead_letters(engine: Engine, now_ms: int | None = None) -> list[dict[str, Any]]:
    """The dead-letter queues the tap watches, latest sample each (see `load.load_dead_letters`):
    what `check` grades as `dead_letters` and a page shows as the DLQ tile."""
    return load.load_dead_letters(engine, now_ms)


def load_catalog_file(path: str | None) -> Catalog | None:
    """The catalog at `path`, or None without a path (catalog-based findings are then
    skipped); a broken catalog raises `CatalogError` with every problem."""
    return None if path is None else load_catalog(path)


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


def bus_subscriptions(engine: Engine, catalog: Catalog | None = None) -> pd.DataFrame | None:
    """The latest bus-rules snapshot as the findings' `subscriptions` frame, each target's
    function named as the catalog consumer that owns it (as in attempts); None when rules
    were never collected."""
    rules = load.load_bus_subscriptions(engine)
    if rules is None or catalog is None:
        return rules
    owners = {name: (owner.name if (owner := catalog.consumer_for_function(name)) else name)
              for name in rules["consumer"].dropna().unique()}
    return rules.assign(consumer=rules["consumer"].map(owners))


def missing_subscriptions(engine: Engine, catalog: Catalog | None = None,
                          since_ms: int | None = None, until_ms: int | None = None,
                          latest: int | None = None) -> list[dict[str, Any]]:
    """Missing subscriptions with all their evidence: declared gaps from the catalog and the
    latest bus-rules snapshot (`static`, needs a catalog's lifecycles) merged with the gaps
    seen in the data (`observed`: orders cancelled in [since_ms, until_ms), of the `latest`
    cancellations when given)."""
    static = (subscriptions_module.static_missing(catalog, bus_subscriptions(engine, catalog))
              if catalog is not None else [])
    observed = summaries.observed_missing_subscriptions(engine, catalog, since_ms, until_ms,
                                                        latest)
    return subscriptions_module.missing_subscriptions(static, observed)


def latency(engine: Engine, catalog: Catalog | None = None, since_ms: int | None = None,
            until_ms: int | None = None, per_function: int | None = None,
            total: int | None = None) -> pd.DataFrame:
    """Event time → first invocation / first success per (detail-type, consumer) pair
    (`latency.PAIR_COLUMNS`) over the invocations started in the window; of each function's
    latest `per_function` invocations only, when given, and about `total` in all when given
    (`load.load_latest_attempts`: index reads)."""
    attempts = (load.load_attempts(engine, since_ms, until_ms) if per_function is None else
                load.load_latest_attempts(engine, since_ms, until_ms, per_function, total))
    return latency_module.latency_by_pair(resolve_consumers(attempts, catalog))


def stored_event_source(store: Store, sample: int) -> EventSource:
    """The contract checks' `live` input: for an event type and version, the (id, detail
    JSON) of its newest `sample` stored events of that version. Types versioned by a `.vN`
    detail-type suffix are read under that suffix; the others by reading each payload's
    version the type's `version-from` way (`events_of_version`), whatever version the store
    recorded."""
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
