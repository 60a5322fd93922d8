"""Loading findings' inputs from a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from tests.findings_scenario import attempts_frame, bus_events, events_frame, invocations

from eventscope.findings.load import (find_correlation_keys, load_attempts, load_events,
                                      load_lifecycle, load_samples, load_type_summary)
from eventscope.records import BusEvent
from eventscope.store import Store


def _filled(store: Store) -> Store:
    store.write_batch(bus_events(), invocations())
    return store


def _sorted(df, by):
    return df.sort_values(by).reset_index(drop=True)


def test_loaded_events_and_attempts_match_the_hand_built_frames(store: Store) -> None:
    """The join of invocations to events gives exactly the frames the analyses are tested on."""
    _filled(store)
    assert _sorted(load_events(store.engine), "id").to_dict("records") == \
        _sorted(events_frame(), "id").to_dict("records")
    by = ["request_id", "start_ms"]
    loaded = _sorted(load_attempts(store.engine), by).astype(object).where(lambda d: d.notna(), None)
    expected = _sorted(attempts_frame(), by).astype(object).where(lambda d: d.notna(), None)
    assert loaded.to_dict("records") == expected.to_dict("records")


def test_unattributed_invocations_have_no_event_columns(store: Store) -> None:
    """An invocation with no event id, and one naming an unknown event, load with type None."""
    attempts = load_attempts(_filled(store).engine)
    unattributed = attempts[attempts["detail_type"].isna()]
    assert sorted(unattributed["request_id"]) == ["r6", "r7"]


def test_windows_filter_by_event_time_and_start_time(store: Store) -> None:
    """since/until select events by their time and attempts by their start."""
    _filled(store)
    t0 = bus_events()[0].time_ms
    assert sorted(load_events(store.engine, since_ms=t0 + 1)["id"]) == ["e2", "e3", "e4"]
    assert sorted(load_attempts(store.engine, until_ms=t0 + 1000)["request_id"]) == ["r1", "r2"]
    assert list(load_attempts(store.engine, functions=["email-fn"])["request_id"]) == ["r7"]


def test_lifecycle_lookup_by_order_id_event_id_and_prefix(store: Store) -> None:
    """An order id, one of its event ids, or a prefix of the key all find the order."""
    _filled(store)
    store.write_batch([BusEvent(id="e5", source="shop", detail_type="OrderPlaced",
                                time_ms=1, detail="{}", size_bytes=2, correlation_key="o-2")])
    assert find_correlation_keys(store.engine, "o-1") == ["o-1"]
    assert find_correlation_keys(store.engine, "e2") == ["o-1"]
    assert find_correlation_keys(store.engine, "o-") == ["o-1", "o-2"]
    assert find_correlation_keys(store.engine, "zzz") == []
    events, attempts = load_lifecycle(store.engine, "o-1")
    assert sorted(events["id"]) == ["e1", "e2", "e3"]
    assert sorted(attempts["request_id"]) == ["r1", "r2", "r2", "r3", "r4", "r4", "r5"]


def test_lifecycle_lookup_uses_indexes_not_a_scan(store: Store) -> None:
    """SQLite's plan for both lifecycle queries searches an index (PostgreSQL: same indexes)."""
    if store.engine.dialect.name != "sqlite":
        return
    from eventscope.findings import load
    import sqlalchemy as sa
    with store.engine.connect() as conn:
        for statement in (load._event_select().where(
                load.events.c.correlation_key == "o-1"),
                load._attempt_select().where(load.invocations.c.event_id.in_(["e1"]))):
            sql = str(statement.compile(store.engine, compile_kwargs={"literal_binds": True}))
            plan = " ".join(str(r) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert "SCAN invocations" not in plan and "SCAN events" not in plan, plan


def test_samples_and_type_summary(store: Store) -> None:
    """Samples carry details; the summary counts per source, type and version."""
    _filled(store)
    samples = load_samples(store.engine, per_type=1)
    assert sorted(samples["id"]) == ["e1", "e2", "e3", "e4"]
    assert samples.set_index("id").loc["e3", "detail"] == '{"orderId":"o-1","version":"1"}'
    summary = load_type_summary(store.engine).set_index("detail_type")
    assert (summary.loc["OrderPaid", "count"], summary.loc["OrderPaid", "source"]) == (1, "payments")
