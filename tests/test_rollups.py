"""Rollup tables on both engines: after any sequence of writes and refreshes, every rollup
row equals a from-scratch aggregate of the raw rows (computed here in plain Python)."""

from __future__ import annotations

import bisect
import random
import threading
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from eventscope.events import envelope_of
from eventscope.ingest import ingest_paths
from eventscope.records import BusEvent, Invocation
from eventscope.store import (DURATION_EDGES_MS, Store, event_rollup, events, handling_rollup,
                              invocation_rollup, invocations, open_store)
from eventscope.tables import INVOCATIONS_SIDE, LATENCY_EDGES_MS, latency_rollup
from tests.findings_scenario import bus_events

T0 = 1_700_000_000_000
MIN = 60_000


def _rows(store: Store, table: sa.Table) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        return sorted((tuple(_plain(v) for v in row) for row in conn.execute(sa.select(table))),
                      key=repr)


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, float) else value


def _bucket(duration: float) -> int:
    return sum(1 for edge in DURATION_EDGES_MS if duration >= edge)


def expected(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """The three rollups recomputed in Python from every raw row."""
    with store.engine.connect() as conn:
        evs = {r.id: r for r in conn.execute(sa.select(events))}
        calls = list(conn.execute(sa.select(invocations)))
    by_event: dict[tuple, list] = defaultdict(list)
    for e in evs.values():
        by_event[(e.time_ms - e.time_ms % MIN, e.source, e.detail_type, e.version)].append(e)
    event_rows = [(*k, len(v), sum(e.size_bytes for e in v), max(e.size_bytes for e in v),
                   min(e.time_ms for e in v), max(e.time_ms for e in v))
                  for k, v in by_event.items()]
    kind = {}
    for c in calls:
        e = evs.get(c.event_id)
        kind[c] = (e.source, e.detail_type, e.version) if e else (None, None, None)
    by_call: dict[tuple, list] = defaultdict(list)
    for c in calls:
        by_call[(c.start_ms - c.start_ms % MIN, c.consumer, *kind[c], c.outcome,
                 c.error_type)].append(c)
    call_rows = []
    for k, v in by_call.items():
        durations = [c.duration_ms for c in v if c.duration_ms is not None]
        buckets = [0] * (len(DURATION_EDGES_MS) + 1)
        for d in durations:
            buckets[_bucket(d)] += 1
        call_rows.append((*k, len(v), len(durations), float(sum(durations)),
                          max(durations) if durations else None, min(c.start_ms for c in v),
                          max(c.start_ms for c in v), *buckets))
    pairs: dict[tuple, list] = defaultdict(list)
    for c in calls:
        if c.event_id is not None:
            pairs[(c.consumer, c.event_id)].append(c)
    by_pair: dict[tuple, list] = defaultdict(list)
    for (consumer, _), v in pairs.items():
        first = min(c.start_ms for c in v)
        by_pair[(first - first % MIN, consumer, *kind[v[0]])].append(v)
    pair_rows = []
    for k, group in by_pair.items():
        failed = [sum(c.outcome != "ok" for c in v) for v in group]
        pair_rows.append((*k, len(group), sum(len(v) for v in group),
                          sum(0 < f < len(v) for f, v in zip(failed, group)),
                          sum(f == len(v) for f, v in zip(failed, group)),
                          sum(len({c.request_id for c in v}) > 1 for v in group),
                          sum(sum(c.outcome == "ok" for c in v) > 1 for v in group)))
    return {"events": sorted(event_rows, key=repr), "invocations": sorted(call_rows, key=repr),
            "handling": sorted(pair_rows, key=repr)}


def expected_latency(store: Store) -> list[tuple[Any, ...]]:
    """The latency rollup recomputed in Python: per (function, stored event) pair in the
    minute of its first attempt, its latency to the first attempt (clipped at 0, counted as
    skewed) and to the first success, bucketed by `bisect` over the edges."""
    with store.engine.connect() as conn:
        evs = {r.id: r for r in conn.execute(sa.select(events))}
        calls = list(conn.execute(sa.select(invocations)))
    pairs: dict[tuple, list] = defaultdict(list)
    for c in calls:
        if c.event_id in evs:
            pairs[(c.consumer, c.event_id)].append(c)
    rows: dict[tuple, list[int]] = {}

    def add(key: tuple, latency: int, skewed: bool) -> None:
        row = rows.setdefault((*key, bisect.bisect_right(LATENCY_EDGES_MS, latency)),
                              [0, 0, latency])
        row[0], row[1], row[2] = row[0] + 1, row[1] + skewed, max(row[2], latency)

    for (consumer, event_id), v in pairs.items():
        e, first = evs[event_id], min(c.start_ms for c in v)
        kind = (first - first % MIN, consumer, e.source, e.detail_type)
        add((*kind, "first"), max(first - e.time_ms, 0), first < e.time_ms)
        oks = [c.start_ms for c in v if c.outcome == "ok"]
        if oks:
            add((*kind, "success"), max(min(oks) - e.time_ms, 0), False)
    return sorted(((*k, *v) for k, v in rows.items()), key=repr)


def assert_exact(store: Store) -> None:
    want = expected(store)
    assert _rows(store, event_rollup) == want["events"]
    assert _rows(store, invocation_rollup) == want["invocations"]
    assert _rows(store, handling_rollup) == want["handling"]
    assert _rows(store, latency_rollup) == expected_latency(store)


def company(orders: int = 30, seed: int = 3) -> tuple[list[BusEvent], list[Invocation]]:
    """Orders spread over minutes, retries up to 7 minutes later, unknown and missing events."""
    rng = random.Random(seed)
    evs, calls = [], []
    for n in range(orders):
        t = T0 + n * 37_000
        for step, kind in enumerate(("OrderPlaced", "OrderPaid")):
            event = BusEvent(id=f"e{n}-{step}", source="shop", detail_type=kind,
                             time_ms=t + step * 50_000, detail="{}",
                             size_bytes=rng.randint(200, 900),
                             version=rng.choice(["1", "2", None]), correlation_key=f"o{n}")
            evs.append(event)
            for fn in ("billing-fn", "email-fn"):
                start = event.time_ms + rng.randint(10, 90_000)
                rid = f"r{n}-{step}-{fn}"
                for attempt in range(rng.choice([1, 1, 2, 3])):
                    outcome = rng.choice(["ok", "error", "timeout"])
                    calls.append(Invocation(
                        rid if attempt < 2 else rid + "x", fn, f"/aws/lambda/{fn}", "s",
                        start + attempt * 200_000, outcome, event.id,
                        duration_ms=None if rng.random() < 0.1 else float(rng.choice(
                            [0.5, 3, 99.9, 1000, 4321, 2e6])),
                        error_type=None if outcome == "ok" else rng.choice(["E1", None]),
                        complete=True))
        calls.append(Invocation(f"u{n}", "billing-fn", "/aws/lambda/billing-fn", "s",
                                t + 5, "ok", None if n % 2 else "e-unknown", duration_ms=1.0,
                                complete=True))
    return evs, calls


def test_rollups_equal_raw_aggregates_after_a_normal_write(store: Store) -> None:
    evs, calls = company()
    store.write_batch(evs, calls, settle=False)  # as `eventscope ingest` writes
    assert store.dirty_minutes() > 0
    assert store.refresh_rollups() > 0
    assert store.dirty_minutes() == 0
    assert_exact(store)


def test_a_writer_settles_the_rollups_of_its_batch(store: Store) -> None:
    """A plain write leaves no dirty minute: the writer recomputed them, so a reader that
    never refreshes reads current rollups."""
    evs, calls = company()
    store.write_batch(evs, calls)
    assert store.dirty_minutes() == 0
    assert_exact(store)


def test_a_writer_with_a_lag_settles_only_minutes_behind_it(store: Store) -> None:
    """With `rollup_lag_ms`, minutes within the lag before the batch's oldest row stay dirty
    for a later batch; the ones behind it are current."""
    evs, calls = company()
    store.rollup_lag_ms = 5 * 60_000
    store.write_batch(evs[:10], [c for c in calls if c.start_ms < evs[10].time_ms])
    waiting = store.dirty_minutes()
    assert waiting > 0
    later = [replace(e, id="late-" + e.id, time_ms=e.time_ms + 3_600_000) for e in evs[:1]]
    store.write_batch(later)
    assert store.dirty_minutes() == 1  # the new minute, within the lag of itself
    store.rollup_lag_ms = 0
    store.settle_rollups()
    assert_exact(store)


def test_ingest_refreshes_rollups(store: Store, tmp_path: Path) -> None:
    """`ingest_paths` leaves no dirty minute: rollups are current when it returns."""
    path = tmp_path / "bus.ndjson"
    path.write_bytes(b"".join(orjson.dumps(envelope_of(e)) + b"\n" for e in bus_events()))
    ingest_paths(store, [str(path)])
    assert store.dirty_minutes() == 0
    assert len(_rows(store, event_rollup)) > 0
    assert_exact(store)


def test_events_arriving_after_their_invocations_are_attributed(store: Store) -> None:
    evs, calls = company()
    store.write_batch((), calls)
    store.refresh_rollups()
    assert_exact(store)
    unknown_before = sum(r[5] for r in _rows(store, handling_rollup) if r[3] is None)
    store.write_batch(evs, ())
    store.refresh_rollups()
    assert_exact(store)
    assert sum(r[5] for r in _rows(store, handling_rollup) if r[3] is None) < unknown_before


def test_an_incomplete_invocation_later_completed(store: Store) -> None:
    evs, calls = company(orders=3)
    partial = Invocation("late", "billing-fn", "/aws/lambda/billing-fn", "s", T0 + 61_000, "ok",
                         evs[0].id)
    store.write_batch(evs, calls + [partial])
    store.refresh_rollups()
    assert_exact(store)
    store.write_batch((), [replace(partial, outcome="timeout", duration_ms=3000.0,
                                   error_type="Sandbox.Timedout", complete=True)])
    store.refresh_rollups()
    assert_exact(store)
    assert any(r[5] == "timeout" and r[6] == "Sandbox.Timedout"
               for r in _rows(store, invocation_rollup))


def test_reingesting_the_same_rows_changes_nothing(store: Store) -> None:
    evs, calls = company()
    store.write_batch(evs, calls)
    store.refresh_rollups()
    before = {t.name: _rows(store, t) for t in (event_rollup, invocation_rollup, handling_rollup)}
    store.write_batch(evs, calls)
    assert store.dirty_minutes() == 0  # nothing new: nothing to recompute
    store.write_batch(evs[:5], calls[:5])
    store.refresh_rollups()
    assert {t.name: _rows(store, t) for t in (event_rollup, invocation_rollup,
                                             handling_rollup)} == before
    assert_exact(store)


def test_refreshes_interleaved_with_writes_in_any_order(store: Store) -> None:
    """Rows written in shuffled small batches (retries before first attempts, events late),
    refreshed at random points, in small chunks: still exact."""
    evs, calls = company(orders=40, seed=11)
    rng = random.Random(5)
    items: list[Any] = evs + calls
    rng.shuffle(items)
    for start in range(0, len(items), 17):
        batch = items[start:start + 17]
        store.write_batch([x for x in batch if isinstance(x, BusEvent)],
                          [x for x in batch if isinstance(x, Invocation)])
        if rng.random() < 0.5:
            store.refresh_rollups(chunk_minutes=rng.choice([1, 3, 50]))
    store.refresh_rollups(chunk_minutes=2)
    assert_exact(store)


def test_a_write_committing_during_a_refresh_keeps_its_mark(store_url: str) -> None:
    """A batch open while a refresh runs: the refresh waits on its mark and reads its rows,
    or leaves the mark; either way nothing is lost once the refresh returns."""
    store = open_store(store_url)
    evs, calls = company(orders=3)
    store.write_batch(evs, calls)  # minutes dirty, not refreshed
    extra = Invocation("race", "billing-fn", "/aws/lambda/billing-fn", "s", evs[0].time_ms + 7,
                       "error", evs[0].id, duration_ms=5.0, complete=True)
    minute = extra.start_ms - extra.start_ms % MIN
    with store.engine.connect() as conn:
        txn = conn.begin()
        store._execute(conn, store._upsert_invocation, [extra])
        store._execute(conn, store._mark_dirty, [{"minute_ms": minute, "sides": INVOCATIONS_SIDE}])
        refresher = threading.Thread(target=store.refresh_rollups)
        refresher.start()
        time.sleep(0.5)
        txn.commit()
    refresher.join(timeout=30)
    assert not refresher.is_alive()
    if store.dirty_minutes():
        store.refresh_rollups()
    assert_exact(store)
    store.engine.dispose()


def test_a_store_made_before_rollups_gets_every_minute_marked(store_url: str) -> None:
    """Opening a store whose rollup tables are missing marks every stored minute dirty."""
    store = open_store(store_url)
    evs, calls = company(orders=5)
    store.write_batch(evs, calls)
    with store.engine.begin() as conn:
        for table in ("rollup_dirty", "event_rollup", "invocation_rollup", "handling_rollup"):
            conn.execute(sa.text(f"DROP TABLE {table}"))
    store.engine.dispose()
    reopened = open_store(store_url)
    assert reopened.dirty_minutes() > 0
    reopened.refresh_rollups()
    assert_exact(reopened)
    reopened.engine.dispose()


def test_refresh_handles_thousands_of_scattered_minutes(store: Store) -> None:
    """Dirty minutes with gaps between them (one range each) refresh in statements SQLite
    accepts: more than 200 ranges OR-ed together used to exceed its expression depth."""
    from eventscope.records import BusEvent
    from eventscope.tables import event_rollup

    events = [BusEvent(id=f"e-{n}", source="s", detail_type="T", time_ms=n * 120_000,
                       detail="{}", size_bytes=10) for n in range(1500)]
    store.write_batch(events, settle=False)
    assert store.refresh_rollups() == 1500
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(event_rollup.c.minute_ms, event_rollup.c.events)).all()
    assert sorted(rows) == [(n * 120_000, 1) for n in range(1500)]  # each minute, nothing else


def test_an_outcome_learnt_late_updates_the_rollups(store: Store) -> None:
    """ok -> timeout, by a re-emitted invocation and by a late line read alone, on stores
    whose rollups were current: both minutes are recomputed (and the pairs' minutes)."""
    evs, calls = company(orders=6)
    known = {e.id for e in evs}
    oks = [i for i, c in enumerate(calls) if c.outcome == "ok" and c.event_id in known][:2]
    calls[oks[1]] = done = replace(calls[oks[1]], end_ms=calls[oks[1]].start_ms + 100)
    store.write_batch(evs, calls)
    store.refresh_rollups()
    first = replace(calls[oks[0]], outcome="timeout", error_type="Sandbox.Timedout")
    late = Invocation(done.request_id, done.consumer, done.log_group, done.log_stream,
                      done.end_ms + 1, "timeout", error_type="Sandbox.Timedout")
    store.write_batch((), [first, late])
    store.refresh_rollups()
    assert_exact(store)
    with store.engine.connect() as conn:
        outcomes = dict(conn.execute(sa.select(invocations.c.request_id, invocations.c.outcome)
                                     .where(invocations.c.start_ms.in_(
                                         [first.start_ms, done.start_ms]))).all())
    assert outcomes == {first.request_id: "timeout", done.request_id: "timeout"}


def test_readers_read_what_the_writers_left_and_can_say_how_stale_it_is(store: Store) -> None:
    """A finding's read does no writer work: minutes a writer left dirty stay dirty, and
    `load.rollup_lag` names how many and the oldest."""
    from eventscope.findings import load

    evs, calls = company()
    store.write_batch(evs, calls, settle=False)
    waiting = store.dirty_minutes()
    oldest = min(min(e.time_ms for e in evs), min(c.start_ms for c in calls))
    load.load_call_totals(store.engine)
    load.load_final_failures(store.engine)
    assert load.rollup_lag(store.engine) == (waiting, oldest - oldest % MIN)
