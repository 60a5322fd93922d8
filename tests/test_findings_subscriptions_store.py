"""Missing subscriptions seen in the data, read from the store (aggregated in SQL over the
covering indexes) equal the pure `subscriptions.observed_missing` over the same orders' raw
events and attempts, on both engines, for random orders, windows and `latest` limits; and the
reads use the covering indexes (SQLite's plan says so)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventscope.catalog.model import Catalog, Consumer
from eventscope.findings import load, summaries
from eventscope.findings.frames import resolve_consumers
from eventscope.findings.subscriptions import observed_missing
from eventscope.records import BusEvent, Invocation
from eventscope.store import Store
from eventscope.tables import metadata

T0 = 1_700_000_000_000
CANCELS = {"OrderCancelled", "OrderReturned"}
TYPES = ["OrderPlaced", "OrderPaid", "OrderShipped", *sorted(CANCELS)]
FUNCTIONS = ["billing-fn", "warranty-fn", "mail-fn"]
CATALOGS = {  # none; one renaming a function; one whose consumer owns two functions
    "none": None,
    "renaming": Catalog(consumers=(Consumer("Mail", "crm", functions=("mail-fn",)),)),
    "sharing": Catalog(consumers=(Consumer("Shop", "ops",
                                           functions=("billing-fn", "warranty-fn")),)),
}

orders = st.lists(st.tuples(
    st.lists(st.tuples(st.sampled_from(TYPES), st.integers(0, 600)), min_size=1, max_size=5),
    st.lists(st.tuples(st.integers(0, 4), st.sampled_from(FUNCTIONS),
                       st.sampled_from(["ok", "error"])), max_size=8)), min_size=1, max_size=12)


def _write(store: Store, drawn: list) -> None:
    events, calls = [], []
    for n, (kinds, handled) in enumerate(drawn):
        ids = []
        for m, (kind, second) in enumerate(kinds):
            ids.append(f"o{n}-e{m}")
            events.append(BusEvent(id=ids[-1], source="shop", detail_type=kind,
                                   time_ms=T0 + second * 1000 + n * 10 + m, version="1",
                                   correlation_key=f"o{n}", detail='{"orderId": "o%d"}' % n,
                                   size_bytes=100))
        for k, (which, function, outcome) in enumerate(handled):
            calls.append(Invocation(request_id=f"r{n}-{k}", consumer=function,
                                    log_group=f"/aws/lambda/{function}", log_stream="s",
                                    start_ms=T0 + 700_000 + k, outcome=outcome,
                                    event_id=ids[which % len(ids)]))
    store.write_batch(events, calls)


def _pure(store: Store, since: int | None, until: int | None,
          latest: int | None, catalog: Catalog | None = None) -> list[dict]:
    """`observed_missing` over the raw rows of the orders a store read covers."""
    attempts = resolve_consumers(load.load_attempts(store.engine), catalog)
    events = load.load_events(store.engine)
    cancelled = events[events["detail_type"].isin(CANCELS) & events["correlation_key"].notna()]
    if since is not None:
        cancelled = cancelled[cancelled["time_ms"] >= since]
    if until is not None:
        cancelled = cancelled[cancelled["time_ms"] < until]
    if latest is not None:
        cancelled = cancelled.sort_values("time_ms", ascending=False).head(latest)  # no ties
    return observed_missing(events[events["correlation_key"].isin(
        cancelled["correlation_key"])], attempts, CANCELS)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(drawn=orders, since=st.one_of(st.none(), st.integers(0, 600)),
       span=st.one_of(st.none(), st.integers(1, 600)),
       latest=st.one_of(st.none(), st.integers(1, 5)), catalog=st.sampled_from(sorted(CATALOGS)))
def test_store_read_equals_the_pure_finding(store: Store, drawn: list, since: int | None,
                                            span: int | None, latest: int | None,
                                            catalog: str) -> None:
    """Also with a catalog renaming a function (the missed cancellations found in SQL) and
    one whose consumer owns two functions (what either handled, the consumer handled)."""
    with store.engine.begin() as conn:  # hypothesis reuses the store: start empty
        for table in reversed(metadata.sorted_tables):
            if table.name != "meta":
                conn.execute(table.delete())
    _write(store, drawn)
    since_ms = None if since is None else T0 + since * 1000
    until_ms = None if since_ms is None or span is None else since_ms + span * 1000
    expected = _pure(store, since_ms, until_ms, latest, CATALOGS[catalog])
    found = summaries.observed_missing_subscriptions(store.engine, CATALOGS[catalog], since_ms,
                                                     until_ms, latest)
    assert found == expected


def test_the_order_reads_use_only_covering_indexes(store: Store) -> None:
    """SQLite reads the orders' events and who handled them from the indexes alone."""
    if store.engine.dialect.name != "sqlite":
        return  # PostgreSQL plans by its statistics; the indexes are the same
    with store.engine.connect() as conn:
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT invocations.consumer, events.correlation_key, "
            "min(events.time_ms) FROM events JOIN invocations ON invocations.event_id = "
            "events.id WHERE events.correlation_key IN ('o1', 'o2') "
            "GROUP BY invocations.consumer, events.correlation_key"))
    assert "COVERING INDEX ix_events_order_cover" in plan
    assert "COVERING INDEX ix_invocations_event_consumer" in plan


def test_the_missed_cancellations_probe_only_covering_indexes(store: Store) -> None:
    """SQLite answers the probes of `load.missed_select` (who handled a cancellation, who
    handled an earlier event of its order) from the covering indexes alone."""
    if store.engine.dialect.name != "sqlite":
        return  # PostgreSQL plans by its statistics; the indexes are the same
    compiled = load.missed_select(sorted(CANCELS)).compile(
        dialect=store.engine.dialect, compile_kwargs={"literal_binds": True})
    with store.engine.connect() as conn:
        plan = [str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]
    probes = [step for step in plan if step.startswith("SEARCH") and "invocations" in step
              or "ix_events_order_cover" in step]
    assert len(probes) == 3 and all("COVERING INDEX" in step for step in probes), plan


def test_an_empty_store_has_no_observed_gap(store: Store) -> None:
    assert summaries.observed_missing_subscriptions(store.engine) == []


def test_a_consumer_that_missed_a_cancellation_is_found(store: Store) -> None:
    """The drawn data can hold a gap (else the comparison above checked nothing)."""
    _write(store, [([("OrderPlaced", 0), ("OrderCancelled", 60)], [(0, "billing-fn", "ok")])])
    found = summaries.observed_missing_subscriptions(store.engine)
    assert [(m["consumer"], m["detail_type"], m["orders"]) for m in found] == [
        ("billing-fn", "OrderCancelled", 1)]
