"""Incremental rollup refreshes on both engines: a bulk ingest settles minutes behind what it
reads (each once, but for retries across a settle point), and refreshes of any part of the
dirty minutes, at any points between writes, leave the same rollups as a rebuild from scratch."""

from __future__ import annotations

import operator
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventscope import day_rollups, ingest, rollups, simulator
from eventscope.ingest import ingest_paths
from eventscope.records import BusEvent, Invocation
from eventscope.store import (Store, event_rollup, events, handling_rollup, invocation_rollup,
                              invocations, metadata, rollup_dirty)
from eventscope.tables import (DAY_MS, INVOCATIONS_SIDE, event_rollup_day, event_rollup_hour,
                               handling_rollup_day, handling_rollup_hour, invocation_rollup_day,
                               invocation_rollup_hour, latency_rollup, latency_rollup_day)
from tests.test_rollups import MIN, T0, _rows, assert_exact

ROLLUPS = (event_rollup, invocation_rollup, handling_rollup, latency_rollup)
DAY_ROLLUPS = (event_rollup_day, invocation_rollup_day, handling_rollup_day, latency_rollup_day,
               event_rollup_hour, invocation_rollup_hour, handling_rollup_hour)  # and hours
M0 = T0 - T0 % MIN  # a minute's start


def _tables(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """The rollup tables' rows, minute, hour and day ones, sums of float durations to 6 places (the
    order a database adds them in is its own)."""
    return {table.name: sorted((tuple(round(v, 6) if isinstance(v, float) else v for v in row)
                                for row in _rows(store, table)), key=repr)
            for table in (*ROLLUPS, *DAY_ROLLUPS)}


def assert_summaries_sum_minutes(store: Store) -> None:
    """Every day and hour table holds its minute table's rows summed per day or hour in
    Python (least and greatest where `day_rollups` says, sums to 4 places): the summaries
    checked against the minutes themselves, not against another run of the same SQL."""
    for minutes, summary, keys in day_rollups.PAIRS + day_rollups.HOUR_PAIRS:
        period = day_rollups.PERIOD_MS[summary]
        names = [c.name for c in minutes.columns]
        wanted: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in _rows(store, minutes):
            values = dict(zip(names, row))
            key = (values["minute_ms"] - values["minute_ms"] % period,
                   *(values[k] for k in keys))
            found = wanted.setdefault(key, {"minute_ms": key[0]})
            for name, value in values.items():
                if name == "minute_ms" or name in keys:
                    found[name] = value if name in keys else found[name]
                elif name not in found:
                    found[name] = value
                elif value is not None and found[name] is not None:
                    found[name] = (min if name in day_rollups.LEAST else max
                                   if name in day_rollups.GREATEST else operator.add)(
                        found[name], value)
                elif found[name] is None:
                    found[name] = value

        def exact(row: tuple[Any, ...]) -> tuple[Any, ...]:
            return tuple(round(v, 4) if isinstance(v, float) else v for v in row)

        expected = sorted((exact(tuple(group[name] for name in names))
                           for group in wanted.values()), key=repr)
        assert sorted(map(exact, _rows(store, summary)), key=repr) == expected, summary.name


def _stored_minutes(store: Store) -> set[int]:
    with store.engine.connect() as conn:
        times = conn.execute(sa.select(events.c.time_ms)).scalars().all()
        starts = conn.execute(sa.select(invocations.c.start_ms)).scalars().all()
    return {t - t % MIN for t in [*times, *starts]}


def _recorded_refreshes(store: Store, monkeypatch: pytest.MonkeyPatch
                        ) -> tuple[list[int | None], Counter[int]]:
    """The `before` of every refresh the store runs, and how often each minute is
    recomputed, recorded as the real functions run."""
    befores: list[int | None] = []
    recomputed: Counter[int] = Counter()
    refresh, recompute = store.refresh_rollups, rollups.recompute

    def recording_refresh(*args: Any, **kwargs: Any) -> int:
        befores.append(kwargs.get("before"))
        return refresh(*args, **kwargs)

    def recording_recompute(conn: Any, ranges: Any, *sides: Any) -> Any:
        recomputed.update(m for lo, hi in ranges for m in range(lo, hi, MIN))
        return recompute(conn, ranges, *sides)

    monkeypatch.setattr(store, "refresh_rollups", recording_refresh)
    monkeypatch.setattr(rollups, "recompute", recording_recompute)
    return befores, recomputed


def test_a_bulk_ingest_recomputes_a_minute_twice_only_just_behind_a_settle_point(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Events and then their logs, in one run of many batches: minutes are settled behind
    the batches as they are written, each once, except a minute within `SETTLE_MS` before
    a settle point that shares an event with one past it (a retry across the point): it is
    recomputed again with that one, and never a third time."""
    files = simulator.write_ndjson(simulator.simulate(
        simulator.CompanyConfig.bench(), seed=4, n_events=2000), tmp_path)
    monkeypatch.setattr(ingest, "BATCH_ROWS", 250)
    monkeypatch.setattr(ingest, "BLOCK_BYTES", 32 * 1024)
    befores, recomputed = _recorded_refreshes(store, monkeypatch)
    summary = ingest_paths(store, [str(files.events_path), str(files.logs_path)], workers=0)
    minutes = _stored_minutes(store)
    settle_points = [b for b in befores if b is not None]
    assert len(settle_points) > 3  # settled along the way
    assert set(recomputed) == minutes
    assert summary.rollup_minutes_refreshed == sum(recomputed.values())
    twice = {m for m, count in recomputed.items() if count > 1}
    assert max(recomputed.values()) <= 2
    assert len(twice) < len(minutes) // 100
    assert all(any(b - ingest.SETTLE_MS <= m < b for b in settle_points) for m in twice)
    assert store.dirty_minutes() == 0
    settled = _tables(store)
    assert settled == _from_scratch(store)


def test_a_refresh_before_a_time_leaves_later_minutes_dirty(store: Store) -> None:
    """`before` recomputes the minutes before it (and those they share an event with,
    before it); a later minute sharing an event is marked dirty rather than recomputed."""
    def call(rid: str, minute: int, event_id: str) -> Invocation:
        return Invocation(rid, "fn", "/aws/lambda/fn", "s", M0 + minute * MIN + 10, "error",
                          event_id, duration_ms=5.0, complete=True)

    store.write_batch([BusEvent(id=e, source="shop", detail_type="OrderPlaced", time_ms=M0,
                                detail="{}", size_bytes=100) for e in ("e1", "e2")],
                      [call("r1", 0, "e1")])
    store.refresh_rollups()
    store.write_batch((), [call("r2", -5, "e2"),  # alone
                           call("r1", -1, "e1"),  # shares e1 with minutes 0 and 3
                           call("r1", 3, "e1")], settle=False)
    assert store.refresh_rollups(before=M0 + MIN) == 3  # minutes -5, -1 and 0
    with store.engine.connect() as conn:
        dirty = conn.execute(sa.select(rollup_dirty.c.minute_ms)).scalars().all()
    assert dirty == [M0 + 3 * MIN]
    assert store.refresh_rollups() == 3  # minute 3, and -1 and 0 again through e1
    assert_exact(store)


# --- property: incremental refreshes == a refresh from scratch -------------------------------

CONSUMERS = ("billing-fn", "email-fn")


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[list[Any]], list[int | None]]:
    """Events and invocations over 40 minutes in random batches, each batch followed by no
    refresh, a whole refresh, or a refresh before a random minute."""
    n_events = draw(st.integers(0, 12))
    evs = [BusEvent(id=f"e{n}", source="shop", detail_type=draw(st.sampled_from(["A", "B"])),
                    time_ms=T0 + draw(st.integers(0, 40 * MIN)), detail="{}",
                    size_bytes=draw(st.integers(1, 900)),
                    version=draw(st.sampled_from(["1", "2", None])))
           for n in range(n_events)]
    calls = [Invocation(
        f"r{draw(st.integers(0, 8))}", consumer, f"/aws/lambda/{consumer}", "s",
        T0 + draw(st.integers(0, 40 * MIN)), draw(st.sampled_from(["ok", "error", "timeout"])),
        draw(st.sampled_from([*(e.id for e in evs), "e-unknown", None])),
        duration_ms=draw(st.sampled_from([None, 0.5, 120.0, 4321.0, 2e6])),
        error_type=draw(st.sampled_from([None, "E1"])), complete=draw(st.booleans()))
        for consumer in draw(st.lists(st.sampled_from(CONSUMERS), max_size=25))]
    items: list[Any] = draw(st.permutations(evs + calls))
    cuts = sorted(draw(st.sets(st.integers(0, len(items)), max_size=5)))
    batches = [items[a:b] for a, b in zip([0, *cuts], [*cuts, len(items)])]
    refresh = st.one_of(st.none(), st.just(-1), st.integers(0, 45).map(lambda m: T0 + m * MIN))
    return batches, [draw(refresh) for _ in batches]


def _clear(store: Store) -> None:
    with store.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name != "meta":
                conn.execute(table.delete())


def _from_scratch(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """The rollups rebuilt over the whole store: emptied, every minute marked, refreshed."""
    with store.engine.begin() as conn:
        for table in (*ROLLUPS, *DAY_ROLLUPS):
            conn.execute(table.delete())
        conn.execute(rollup_dirty.delete())
        rollups.prepare_rollups(conn, had_rollups=False)
    store.refresh_rollups()
    return _tables(store)


@settings(max_examples=30, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(history=histories())
def test_incremental_refreshes_equal_a_refresh_from_scratch(
        store: Store, history: tuple[list[list[Any]], list[int | None]]) -> None:
    """Random rows written in random batches, refreshed in part (`before`) or whole at random
    points: once the last refresh returns, the rollups are those of a full rebuild, and
    those of the raw rows counted in Python."""
    _clear(store)
    batches, refreshes = history
    for batch, before in zip(batches, refreshes):
        store.write_batch([x for x in batch if isinstance(x, BusEvent)],
                          [x for x in batch if isinstance(x, Invocation)], settle=False)
        if before is not None:
            store.refresh_rollups(chunk_minutes=7, before=None if before < 0 else before)
    store.refresh_rollups()
    incremental = _tables(store)
    assert_exact(store)
    assert_summaries_sum_minutes(store)
    assert incremental == _from_scratch(store)


@settings(max_examples=30, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(history=histories(), lag=st.sampled_from([0, MIN, 5 * MIN, 30 * MIN]))
def test_writers_settling_behind_a_lag_equal_a_refresh_from_scratch(
        store: Store, history: tuple[list[list[Any]], list[int | None]], lag: int) -> None:
    """Writers that settle their own batches' minutes behind a random lag (no reader
    refreshes): once a last writer settles with no lag, the rollups are a full rebuild's."""
    _clear(store)
    store.rollup_lag_ms = lag
    for batch in history[0]:
        store.write_batch([x for x in batch if isinstance(x, BusEvent)],
                          [x for x in batch if isinstance(x, Invocation)])
    store.rollup_lag_ms = 0
    store.settle_rollups()
    assert store.dirty_minutes() == 0
    settled = _tables(store)
    assert_exact(store)
    assert settled == _from_scratch(store)


def test_writers_refreshing_at_once_count_every_minute_once(store_url: str) -> None:
    """Several writers (collector processes) settling the same dirty minutes at the same
    moment, related minutes included: the rollups are a full rebuild's, nothing counted
    twice (on PostgreSQL one refresh transaction runs at a time)."""
    import threading

    from tests.test_rollups import company

    stores = [Store(sa.create_engine(store_url)) for _ in range(3)]
    stores[0].create_schema()
    try:
        for round_ in range(3):
            evs, calls = company(orders=40, seed=round_)
            tag = f"w{round_}-"
            stores[0].write_batch([BusEvent(**{**_fields(e), "id": tag + e.id}) for e in evs],
                                  [Invocation(**{**_fields(c), "request_id": tag + c.request_id,
                                                 "event_id": c.event_id and tag + c.event_id})
                                   for c in calls], settle=False)
            start = threading.Barrier(len(stores))

            def settle(store: Store, start: threading.Barrier = start) -> None:
                start.wait()
                store.refresh_rollups(chunk_minutes=3)

            threads = [threading.Thread(target=settle, args=(s,)) for s in stores]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        settled = _tables(stores[0])
        with stores[0].engine.connect() as conn:
            counted = conn.execute(sa.select(sa.func.sum(event_rollup.c.events))).scalar()
            stored = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar()
        assert counted == stored
        assert settled == _from_scratch(stores[0])
    finally:
        for store in stores:
            store.engine.dispose()


def _fields(record: Any) -> dict[str, Any]:
    from dataclasses import fields
    return {f.name: getattr(record, f.name) for f in fields(record)}


# --- property: events-only and logs-only batches, across a day, == a refresh from scratch -----

MIDNIGHT = T0 - T0 % DAY_MS + DAY_MS  # the day boundary the histories below straddle
W0 = MIDNIGHT - 20 * MIN


@st.composite
def split_histories(draw: st.DrawFn
                    ) -> tuple[list[list[Any]], list[int | None], int, bool]:
    """A bus's events and its consumers' invocations written apart, as an events file and a
    logs file are: batches holding only events or only invocations, interleaved at random
    (an event may come after the invocations that handled it), over 40 minutes around
    midnight. Invocations retry with their request id minutes later (across minute and day
    boundaries), and some ok ones get a late "Task timed out" line in a later batch. Each
    batch is followed by no refresh, a whole one, or one before a random minute (a settle
    point); then the refreshes' chunk size, and whether they defer days as a bulk ingest's
    do (`defer_days`)."""
    evs = [BusEvent(id=f"e{n}", source="shop", detail_type=draw(st.sampled_from(["A", "B"])),
                    time_ms=W0 + draw(st.integers(0, 40 * MIN)), detail="{}",
                    size_bytes=draw(st.integers(1, 900)),
                    version=draw(st.sampled_from(["1", None])))
           for n in range(draw(st.integers(0, 10)))]
    calls: list[Invocation] = []
    late: list[Invocation] = []
    for n in range(draw(st.integers(0, 10))):
        consumer = draw(st.sampled_from(CONSUMERS))
        event_id = draw(st.sampled_from([*(e.id for e in evs), "e-unknown", None]))
        start = W0 + draw(st.integers(0, 40 * MIN))
        for _attempt in range(draw(st.integers(1, 3))):
            outcome = draw(st.sampled_from(["ok", "error", "timeout"]))
            duration = float(draw(st.sampled_from([3, 120, 4321])))
            call = Invocation(f"r{n}", consumer, f"/aws/lambda/{consumer}", "s", start, outcome,
                              event_id, end_ms=start + int(duration), duration_ms=duration,
                              error_type=None if outcome == "ok" else "E1", complete=True)
            calls.append(call)
            if outcome == "ok" and draw(st.booleans()):  # its late timeout line
                late.append(Invocation(call.request_id, consumer, call.log_group, "s",
                                       start + int(duration) + draw(st.integers(0, 4000)),
                                       "timeout", None, error_type="Sandbox.Timedout"))
            start += draw(st.integers(1, 3)) * MIN + draw(st.integers(0, 59_000))
    batches = [*_cut(draw, evs), *_cut(draw, calls)]
    batches = draw(st.permutations(batches)) + _cut(draw, late)  # timeout lines come last
    refresh = st.one_of(st.none(), st.just(-1),
                        st.integers(0, 45).map(lambda m: W0 + m * MIN))
    return (batches, [draw(refresh) for _ in batches], draw(st.sampled_from([1, 3, 720])),
            draw(st.booleans()))


def _cut(draw: st.DrawFn, items: list[Any]) -> list[list[Any]]:
    """Items cut into batches at random points, in order."""
    cuts = sorted(draw(st.sets(st.integers(1, max(len(items) - 1, 1)), max_size=3)))
    return [part for part in (items[a:b] for a, b in zip([0, *cuts], [*cuts, len(items)]))
            if part]


@settings(max_examples=40, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(history=split_histories())
def test_events_only_and_logs_only_batches_equal_a_refresh_from_scratch(
        store: Store, history: tuple[list[list[Any]], list[int | None], int, bool]) -> None:
    """Batches of events alone and of invocations alone (each marks only its side of a
    minute), late events, retries across minutes and midnight, late timeouts, settled in
    part at random points (days deferred or not): once the last refresh returns, every
    minute, hour and day rollup table is a full rebuild's, and the minute ones those of the raw
    rows counted in Python."""
    _clear(store)
    batches, refreshes, chunk, defer = history
    for batch, before in zip(batches, refreshes):
        store.write_batch([x for x in batch if isinstance(x, BusEvent)],
                          [x for x in batch if isinstance(x, Invocation)], settle=False)
        if before is not None:
            store.refresh_rollups(chunk_minutes=chunk, before=None if before < 0 else before,
                                  defer_days=defer)
    store.refresh_rollups(chunk_minutes=chunk)
    assert store.dirty_minutes() == 0
    incremental = _tables(store)
    assert_exact(store)
    assert_summaries_sum_minutes(store)
    assert incremental == _from_scratch(store)


def test_a_minute_whose_invocations_alone_changed_keeps_its_event_rollup_rows(
        store: Store) -> None:
    """A logs-only batch marks its minutes for the invocation side only: the refresh leaves
    their `event_rollup` rows (and days) alone, even rows a rebuild would change, and
    recomputes the invocation side."""
    store.write_batch([BusEvent(id="e1", source="shop", detail_type="A", time_ms=M0,
                                detail="{}", size_bytes=10)])
    store.refresh_rollups()
    with store.engine.begin() as conn:  # a stand-in row only a recomputation would replace
        conn.execute(event_rollup.update().values(bytes_sum=999))
    store.write_batch((), [Invocation("r1", "fn", "/aws/lambda/fn", "s", M0 + 5, "ok", "e1",
                                      duration_ms=1.0, complete=True)], settle=False)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(rollup_dirty.c.sides)).scalars().all() == [
            INVOCATIONS_SIDE]
    store.refresh_rollups()
    assert [row[5] for row in _rows(store, event_rollup)] == [999]
    assert [row[7] for row in _rows(store, invocation_rollup)] == [1]


def test_a_deferring_refresh_leaves_a_day_with_a_later_mark_to_that_marks_refresh(
        store: Store) -> None:
    """With `defer_days`, a refresh before a point inside a day that holds a mark past the
    point leaves that day's rows as they were; the refresh of the mark recomputes them.
    Without it, the day's rows follow its minutes at once (a running writer's readers of
    whole days see them)."""
    def event(n: int, minute: int) -> BusEvent:
        return BusEvent(id=f"e{n}", source="shop", detail_type="A", time_ms=M0 + minute * MIN,
                        detail="{}", size_bytes=10)

    def day_events() -> list[int]:
        return [row[4] for row in _rows(store, event_rollup_day)]

    store.write_batch([event(1, 0), event(2, 5)], settle=False)
    store.refresh_rollups(before=M0 + 3 * MIN, defer_days=True)
    assert day_events() == []  # minute 0 recomputed, its day waits for minute 5's mark
    store.refresh_rollups()
    assert day_events() == [2]
    store.write_batch([event(3, 1), event(4, 6)], settle=False)
    store.refresh_rollups(before=M0 + 3 * MIN)
    assert day_events() == [3]
    store.refresh_rollups()
    assert day_events() == [4]
