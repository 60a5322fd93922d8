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
    loaded = _sorted(load_attempts(store.engine), by).astype(object).where(lambda d: d.notna(),
                                                                           None)
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
    assert (summary.loc["OrderPaid", "count"],
            summary.loc["OrderPaid", "source"]) == (1, "payments")


# --- the faces' small reads (dashboard and CLI call these same functions) ---

def test_an_empty_store_is_empty_until_an_event_or_an_invocation(store: Store) -> None:
    """Either table holding a row makes the store non-empty; the time bounds follow events."""
    from eventscope.findings import load
    assert load.store_is_empty(store.engine)
    assert (load.latest_event_ms(store.engine), load.earliest_event_ms(store.engine)) == \
        (None, None)
    store.write_batch([], invocations()[:1])
    assert not load.store_is_empty(store.engine)
    assert load.latest_event_ms(store.engine) is None  # logs but no events


def test_event_time_bounds_are_the_oldest_and_newest_event(store: Store) -> None:
    from eventscope.findings import load
    times = [e.time_ms for e in bus_events()]
    _filled(store)
    assert (load.earliest_event_ms(store.engine), load.latest_event_ms(store.engine)) == \
        (min(times), max(times))


def test_recent_events_are_the_windows_newest_first_and_limited(store: Store) -> None:
    """The window is [since, until) of event time; `limit` keeps the newest."""
    from eventscope.findings import load
    _filled(store)
    t0 = bus_events()[0].time_ms
    assert list(load.load_recent_events(store.engine)["id"]) == ["e3", "e2", "e4", "e1"]
    assert list(load.load_recent_events(store.engine, limit=2)["id"]) == ["e3", "e2"]
    assert list(load.load_recent_events(store.engine, t0 + 500, t0 + 120_000)["id"]) == \
        ["e2", "e4"]
    assert load.load_recent_events(store.engine, t0 + 10**9).empty


def test_event_details_by_id_skip_unknown_ids(store: Store) -> None:
    from eventscope.findings import load
    _filled(store)
    assert load.load_event_details(store.engine, ()) == {}
    assert load.load_event_details(store.engine, ("e3", "nope")) == {
        "e3": '{"orderId":"o-1","version":"1"}'}


def _snapshot(store: Store, snapshot_ms: int, rules: list[tuple[str, str, str | None, str]],
              bus: str = "shop-bus") -> None:
    """Write one `collect rules` snapshot: (rule name, state, pattern JSON, target name)."""
    from eventscope.collectors.rules_collector import rule_row, target_row
    from eventscope.tables import rule_snapshots, rule_targets
    store.write_rows({
        rule_snapshots: [rule_row(bus, snapshot_ms, {"Name": name, "State": state,
                                                     "EventPattern": pattern})
                         for name, state, pattern, _ in rules],
        rule_targets: [target_row(bus, name, snapshot_ms, {
            "Id": "t", "Arn": f"arn:aws:lambda:eu-west-1:123456789012:function:{target}"})
            for name, _, _, target in rules]})


def test_bus_subscriptions_read_the_latest_snapshot_of_each_bus(store: Store) -> None:
    """Only the newest snapshot counts; disabled, scheduled and unreadable rules are left
    out; a pattern that lists no detail-type gives a row with detail_type None."""
    from eventscope.findings import load
    assert load.load_bus_subscriptions(store.engine) is None
    _snapshot(store, 1, [("old", "ENABLED", '{"detail-type":["OrderPaid"]}', "old-fn")])
    _snapshot(store, 2, [
        ("warranty", "ENABLED", '{"source":["shop"],"detail-type":["OrderPlaced","OrderPaid"]}',
         "warranty-fn"),
        ("paused", "DISABLED", '{"detail-type":["OrderCancelled"]}', "paused-fn"),
        ("nightly", "ENABLED", None, "batch-fn"),
        ("broken", "ENABLED", '{"detail-type":', "broken-fn"),
        ("prefixed", "ENABLED", '{"detail-type":[{"prefix":"Order"}]}', "audit-fn")])
    _snapshot(store, 1, [("other", "ENABLED", '{"detail-type":["OrderCancelled"]}',
                          "loyalty-fn")], bus="other-bus")
    rows = load.load_bus_subscriptions(store.engine)
    found = sorted((r["consumer"], r["source"], r["detail_type"])
                   for r in rows.astype(object).where(rows.notna(), None).to_dict("records"))
    assert found == [("audit-fn", None, None), ("loyalty-fn", None, "OrderCancelled"),
                     ("warranty-fn", "shop", "OrderPaid"), ("warranty-fn", "shop", "OrderPlaced")]
    assert list(rows.columns) == ["rule", "source", "detail_type", "target", "consumer"]


def test_latest_attempts_keep_each_functions_newest_in_the_window(store: Store) -> None:
    """At most `per_function` invocations per function, the newest, joined to their events."""
    from eventscope.findings import load
    _filled(store)
    t0 = bus_events()[0].time_ms
    latest = load.load_latest_attempts(store.engine, per_function=1)
    assert sorted(zip(latest["consumer"], latest["start_ms"] - t0)) == [
        ("billing-fn", 120_100), ("email-fn", 100_500), ("warranty-fn", 60_300)]
    windowed = load.load_latest_attempts(store.engine, t0, t0 + 1_000, per_function=5)
    assert sorted(windowed["request_id"]) == ["r1", "r2"]
    assert set(windowed["detail_type"]) == {"OrderPlaced"}
    assert load.load_latest_attempts(store.engine, t0 + 10**9).empty
    shared = load.load_latest_attempts(store.engine, per_function=5, total=6)  # 2 each
    assert sorted(shared.groupby("consumer").size().to_dict().items()) == [
        ("billing-fn", 2), ("email-fn", 1), ("warranty-fn", 2)]
    assert len(load.load_latest_attempts(store.engine, per_function=5, total=1)) == 3


def test_each_value_finds_every_distinct_type_by_index_seeks(store: Store) -> None:
    """The loose index scan behind the samples gives what SELECT DISTINCT gives, on both
    engines, for types that sort awkwardly (empty, case, accents, astral characters, a
    prefix of another), nothing on an empty store, and SQLite seeks instead of scanning."""
    import sqlalchemy as sa

    from eventscope.findings.load import each_value
    from eventscope.tables import events
    query = each_value(events.c.detail_type)
    with store.engine.connect() as conn:
        assert conn.execute(query).scalars().all() == []
    kinds = ["", " ", "A", "a", "Order", "OrderPlaced", "é", "e", "\U0001F600", "z" * 300]
    store.write_batch([BusEvent(id=f"e{n}", source="s", detail_type=kind, time_ms=1_000 + n,
                                detail="{}", size_bytes=2, version="1")
                       for n, kind in enumerate(kinds * 3)])
    with store.engine.connect() as conn:
        found = conn.execute(query).scalars().all()
        assert sorted(found) == sorted(kinds) == sorted(
            conn.execute(sa.select(events.c.detail_type).distinct()).scalars().all())
        if store.engine.dialect.name == "sqlite":
            sql = str(query.compile(store.engine))
            plan = " ".join(str(r) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert "SCAN events" not in plan, plan


def test_final_failures_read_the_flagged_minutes_from_the_failed_invocations_index(
        store: Store) -> None:
    """The index of failed invocations is partial on both engines (new stores; older ones
    get it on open, tests/test_store_open.py), and SQLite reads the flagged minutes'
    failed invocations from it alone, with no row of the table."""
    import sqlalchemy as sa

    from eventscope.findings.load import _flagged_pairs
    if store.engine.dialect.name == "sqlite":
        definition = "SELECT sql FROM sqlite_master WHERE name = 'ix_invocations_failed'"
    else:
        definition = ("SELECT indexdef FROM pg_indexes WHERE indexname = "
                      "'ix_invocations_failed' AND schemaname = current_schema()")
    with store.engine.connect() as conn:
        made = conn.execute(sa.text(definition)).scalar()
        assert made is not None and "WHERE" in made and "'ok'" in made, made
        if store.engine.dialect.name == "sqlite":
            sql = str(_flagged_pairs(("final_failures",), (), None, None).compile(
                store.engine, compile_kwargs={"literal_binds": True}))
            plan = " ".join(str(r) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert "COVERING INDEX ix_invocations_failed" in plan, plan
