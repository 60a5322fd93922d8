"""The read model both faces call (`eventscope.findings.read`): the catalog a path names, the
bus rules in the findings' shape, missing subscriptions with all their evidence, latency per
pair, the contracts' stored-event reader, and store URLs shown without passwords."""

from __future__ import annotations

from pathlib import Path

import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventscope.catalog.loader import CatalogError, load_catalog
from eventscope.catalog.model import EventType, SchemaVersion
from eventscope.findings import read
from eventscope.findings.frames import ATTEMPT_COLUMNS, resolve_consumers
from eventscope.findings.latency import PAIR_COLUMNS, latency, latency_by_pair
from eventscope.records import BusEvent
from eventscope.store import Store
from tests.findings_scenario import T0, attempts_frame, bus_events, catalog, invocations
from tests.test_findings_load import _snapshot
from tests.test_latency_rollup import assert_latency_close

DASHBOARD_CATALOG = Path(__file__).parent / "data" / "dashboard" / "catalog"


def test_load_catalog_file_reads_a_folder_and_none_without_a_path(tmp_path: Path) -> None:
    assert read.load_catalog_file(None) is None
    assert read.load_catalog_file(str(DASHBOARD_CATALOG)) == load_catalog(DASHBOARD_CATALOG)
    with pytest.raises(CatalogError):
        read.load_catalog_file(str(tmp_path / "missing"))


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql+psycopg://ann:s3cret@db:5432/events",
     "postgresql+psycopg://ann:***@db:5432/events"),
    ("sqlite:////var/lib/eventscope.db", "sqlite:////var/lib/eventscope.db"),
    ("not a url at all", "not a url at all"),
    ("pg sql://ann:s3cret@host/db", "pg sql://ann:***@host/db"),
    ("postgresql://ann:s3cret@host:port/db", "postgresql://ann:***@host:port/db"),
])
def test_shown_url_never_shows_a_password(url: str, shown: str) -> None:
    """Parsed or not, the password of a store URL is masked."""
    assert read.shown_url(url) == shown
    assert "s3cret" not in read.shown_url(url)


def test_bus_subscriptions_name_functions_as_catalog_consumers(store: Store) -> None:
    """warranty-fn's rule row says Warranty (its catalog consumer, as in attempts); a
    function no consumer lists keeps its name; without a catalog names stay as read."""
    _snapshot(store, 1, [("w", "ENABLED", '{"detail-type":["OrderPlaced"]}', "warranty-fn"),
                         ("f", "ENABLED", '{"detail-type":["OrderPlaced"]}', "fraud-fn")])
    assert read.bus_subscriptions(store.engine) is not None
    assert sorted(read.bus_subscriptions(store.engine)["consumer"]) == ["fraud-fn", "warranty-fn"]
    assert sorted(read.bus_subscriptions(store.engine, catalog())["consumer"]) == \
        ["Warranty", "fraud-fn"]


def test_missing_subscriptions_merge_catalog_rules_and_data(store: Store) -> None:
    """The scenario's Warranty gap: the catalog and the rules declare it and o-1's
    cancellation shows it; Billing's rule routes OrderPlaced only, a gap by the rules alone."""
    store.write_batch(bus_events(), invocations())
    assert [(m["consumer"], m["evidence"]) for m in read.missing_subscriptions(store.engine)] \
        == [("warranty-fn", "data")]
    _snapshot(store, 1, [("w", "ENABLED", '{"detail-type":["OrderPlaced"]}', "warranty-fn"),
                         ("b", "ENABLED", '{"detail-type":["OrderPlaced"]}', "billing-fn")])
    found = {(m["consumer"], m["detail_type"]): m
             for m in read.missing_subscriptions(store.engine, catalog())}
    warranty = found[("Warranty", "OrderCancelled")]
    assert warranty["evidence"] == "declarations_and_data"
    assert warranty["static"]["views"] == ["catalog", "bus_rules"]
    assert warranty["observed"]["examples"] == ["o-1"]
    billing = found[("Billing", "OrderCancelled")]
    assert (billing["evidence"], billing["static"]["views"]) == ("declarations", ["bus_rules"])


def test_missing_subscriptions_in_a_window_without_the_cancellation(store: Store) -> None:
    """A window before o-1's cancellation sees no data gap; the declared one stays."""
    store.write_batch(bus_events(), invocations())
    found = read.missing_subscriptions(store.engine, catalog(), T0, T0 + 60_000)
    assert [(m["consumer"], m["detail_type"], m["evidence"]) for m in found] == [
        ("Billing", "OrderReturned", "declarations"),
        ("Warranty", "OrderCancelled", "declarations"),
        ("Warranty", "OrderReturned", "declarations")]


def test_latency_from_the_store_equals_latency_by_pair_on_its_attempts(store: Store) -> None:
    """The read gives `latency_by_pair` of the window's attempts, consumers from the catalog
    (from the latency rollup: p50/p95 within its 5 %); a per-function sample reads only each
    function's newest invocations, exactly."""
    store.write_batch(bus_events(), invocations())
    expected = latency_by_pair(resolve_consumers(attempts_frame(), catalog()))
    found = read.latency(store.engine, catalog())
    assert_latency_close(found, expected)
    assert list(found.columns) == PAIR_COLUMNS
    sampled = read.latency(store.engine, None, per_function=1)
    assert sorted(zip(sampled["detail_type"], sampled["consumer"])) == [
        ("OrderCancelled", "billing-fn"), ("OrderPlaced", "warranty-fn")]
    assert read.latency(store.engine, None, T0 + 10**9).empty


def test_stored_event_source_reads_the_newest_events_of_a_version(store: Store) -> None:
    """(id, detail) of the newest `sample` events of the type and version; a type versioned
    by a `.vN` detail-type suffix is read under the suffixed name."""
    events = [BusEvent(id=f"p{n}", source="shop", detail_type="OrderPlaced", time_ms=T0 + n,
                       detail=orjson.dumps({"n": n}).decode(), size_bytes=8, version=v)
              for n, v in enumerate(["1", "2", "1", "1"])]
    events.append(BusEvent(id="s1", source="shop", detail_type="OrderShipped.v2",
                           time_ms=T0, detail="{}", size_bytes=2, version=None))
    store.write_batch(events)
    source = read.stored_event_source(store, sample=2)
    placed = EventType("OrderPlaced", "shop", "team", versions=(SchemaVersion("1", {}),))
    assert list(source(placed, "1")) == [("p3", '{"n":3}'), ("p2", '{"n":2}')]
    shipped = EventType("OrderShipped", "shop", "team", versions=(SchemaVersion("2", {}),),
                        version_from="detail-type-suffix")
    assert list(source(shipped, "2")) == [("s1", "{}")]


# --- latency is total, and right, on any attempts frame ---

@st.composite
def attempt_frames(draw: st.DrawFn) -> pd.DataFrame:
    """Random attempts: a few events, consumers and outcomes; missing event ids and times,
    clocks ahead of or behind the event time, retries."""
    events = draw(st.lists(st.tuples(st.sampled_from(["A", "B", None]),
                                     st.one_of(st.none(), st.integers(0, 10_000))),
                           min_size=0, max_size=4))
    rows = []
    for n in range(draw(st.integers(0, 25))):
        index = draw(st.integers(-1, len(events) - 1))
        kind, time = events[index] if index >= 0 else (None, None)
        rows.append({"request_id": f"r{n}", "start_ms": draw(st.integers(-5_000, 20_000)),
                     "consumer": draw(st.sampled_from(["c1", "c2", "c3"])),
                     "function": None, "event_id": f"e{index}" if index >= 0 else None,
                     "outcome": draw(st.sampled_from(["ok", "error", "timeout"])),
                     "duration_ms": 1.0, "error_type": None, "error_message": None,
                     "source": "s" if index >= 0 else None, "detail_type": kind,
                     "version": None, "event_time_ms": time})
    return pd.DataFrame(rows, columns=ATTEMPT_COLUMNS)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attempt_frames())
def test_latency_never_raises_and_its_numbers_hold_together(attempts: pd.DataFrame) -> None:
    """Per pair: events = distinct events handled with a known time; skewed and successes
    at most that; p50 <= p95 <= max; the first latency is never negative."""
    for table, keys in ((latency(attempts), ["consumer"]),
                        (latency_by_pair(attempts), ["detail_type", "consumer"])):
        known = attempts.dropna(subset=["event_id", "event_time_ms", *keys])
        assert int(table["events"].sum()) == len(known.drop_duplicates([*keys, "event_id"]))
        assert (table["skewed"] <= table["events"]).all()
        assert (table["success_events"] <= table["events"]).all()
        assert (table["first_p50_ms"] <= table["first_p95_ms"]).all()
        assert (table["first_p95_ms"] <= table["first_max_ms"]).all()
        assert (table["first_p50_ms"] >= 0).all()
        ok = known[known["outcome"] == "ok"].drop_duplicates([*keys, "event_id"])
        assert int(table["success_events"].sum()) == len(ok)


def test_latency_by_pair_splits_a_consumer_by_event_type() -> None:
    """Warranty's OrderPlaced: first try 300 ms after the event, success (a retry) 60.3 s;
    its OrderPaid invocation starts 200 ms 'before' the event: skewed, counted as 0."""
    rows = {(r["detail_type"], r["consumer"]): r for r in latency_by_pair(
        resolve_consumers(attempts_frame(), catalog())).to_dict("records")}
    assert set(rows) == {("OrderPlaced", "Billing"), ("OrderPlaced", "Warranty"),
                         ("OrderPaid", "Billing"), ("OrderPaid", "Warranty"),
                         ("OrderCancelled", "Billing")}
    placed, paid = rows[("OrderPlaced", "Warranty")], rows[("OrderPaid", "Warranty")]
    assert (placed["events"], placed["first_p50_ms"], placed["success_p95_ms"]) == \
        (1, 300, 60_300)
    assert (paid["skewed"], paid["first_max_ms"], paid["success_events"]) == (1, 0, 1)
    assert rows[("OrderPaid", "Billing")]["success_events"] == 0  # two timeouts
