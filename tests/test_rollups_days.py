"""Day and hour rollups: whole days read from the day tables, whole hours from the hour tables
and the minutes at a window's ends give the same totals as the raw rows, over windows
crossing days, in buckets of hours and days, after incremental writes, and on a store made
before the day or hour tables."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from eventscope import day_rollups
from eventscope.day_rollups import day_ranges
from eventscope.findings import failures, load
from eventscope.store import Store, open_store
from eventscope.tables import DAY_MS, HOUR_MS, MINUTE_MS, event_rollup_day
from tests.test_rollups import T0, company

DAYS = 3
SPAN = DAYS * DAY_MS
COUNTS = ["consumer", "detail_type", "version", "invocations", "failed", "errors", "timeouts"]


def _spread(orders: int = 40, seed: int = 5) -> tuple[list, list]:
    """`test_rollups.company`'s orders moved apart so they cover three days."""
    events, calls = company(orders, seed)
    step = SPAN // orders
    shift = {f"o{n}": n * step for n in range(orders)}
    moved = {e.id: shift[e.correlation_key] for e in events}
    events = [replace(e, time_ms=e.time_ms + moved[e.id]) for e in events]
    calls = [replace(c, start_ms=c.start_ms + moved.get(c.event_id, shift[
        f"o{c.request_id[1:].split('-')[0]}"] if c.request_id[0] in "ru" else 0))
        for c in calls]
    return events, calls


def _minute_window(since: int, until: int) -> tuple[int, int]:
    """The raw-row window a rollup read of [since, until) covers: whole minutes."""
    return since - since % MINUTE_MS, until + (-until) % MINUTE_MS


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows in key order, a missing key (None from SQL, NaN from a pandas group) as one."""
    keyed = df.astype({k: object for k in keys})
    keyed[keys] = keyed[keys].where(keyed[keys].notna(), "<missing>")
    return keyed.sort_values(keys).reset_index(drop=True)


def _counts_equal_raw(store: Store, since: int | None, until: int | None) -> None:
    raw_since, raw_until = (None, None) if since is None else _minute_window(since, until)
    raw = failures.failure_rates(load.load_attempts(store.engine, raw_since, raw_until))
    calls = load.load_call_totals(store.engine, since, until)
    handling = load.load_handling_totals(store.engine, since, until)
    rolled = failures.rates_from_totals(calls.assign(function=calls["consumer"]),
                                        handling.assign(function=handling["consumer"]), None)
    keys = ["consumer", "detail_type", "version"]
    pd.testing.assert_frame_equal(_sorted(rolled[COUNTS], keys), _sorted(raw[COUNTS], keys),
                                  check_dtype=False)
    events = load.load_events(store.engine, raw_since, raw_until)
    want = events.groupby(["source", "detail_type", "version"], dropna=False).agg(
        count=("id", "size"), first_ms=("time_ms", "min"), last_ms=("time_ms", "max"),
        max_size_bytes=("size_bytes", "max")).reset_index()
    got = load.load_event_totals(store.engine, since, until)[want.columns]
    keys = ["source", "detail_type", "version"]
    pd.testing.assert_frame_equal(_sorted(got, keys), _sorted(want, keys), check_dtype=False)


def test_day_ranges_cover_every_day_a_minute_range_touches() -> None:
    day = T0 - T0 % DAY_MS
    assert day_ranges([(day + 5 * MINUTE_MS, day + 6 * MINUTE_MS)]) == [(day, day + DAY_MS)]
    assert day_ranges([(day + DAY_MS - MINUTE_MS, day + DAY_MS + MINUTE_MS),
                       (day + 3 * DAY_MS, day + 3 * DAY_MS + MINUTE_MS)]) == [
        (day, day + 2 * DAY_MS), (day + 3 * DAY_MS, day + 4 * DAY_MS)]


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(since=st.integers(T0 - DAY_MS, T0 + SPAN + DAY_MS),
       length=st.integers(1, SPAN + DAY_MS))
@example(since=1_700_032_620_000, length=1)  # one minute, one event of no version
def test_window_totals_equal_raw_rows_across_days(store: Store, since: int,
                                                  length: int) -> None:
    if not store.counts()["events"]:
        store.write_batch(*_spread())
        store.refresh_rollups()
    _counts_equal_raw(store, since, since + length)


def test_day_rows_follow_incremental_writes(store: Store) -> None:
    """A second batch of orders landing in the same days, refreshed: day totals still equal
    raw rows, whole-store and per window."""
    events, calls = _spread(seed=5)
    store.write_batch(events[: len(events) // 2], calls[: len(calls) // 2])
    store.refresh_rollups()
    store.write_batch(events[len(events) // 2:], calls[len(calls) // 2:])
    more_events, more_calls = _spread(orders=25, seed=9)
    store.write_batch([replace(e, id="b" + e.id) for e in more_events],
                      [replace(c, request_id="b" + c.request_id,
                               event_id=c.event_id and "b" + c.event_id) for c in more_calls])
    _counts_equal_raw(store, None, None)  # the writes settled their minutes
    _counts_equal_raw(store, T0 + DAY_MS // 2, T0 + 2 * DAY_MS + 12_345)


def test_a_day_split_between_chunks_of_a_refresh_is_recomputed_once(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refresh in chunks far smaller than a day (every day split between many): each
    day's rows are recomputed once per side, by the last chunk holding its minutes, and the
    totals still equal raw rows."""
    store.rollup_lag_ms = None  # marks left for the refresh below
    store.write_batch(*_spread())
    recomputed: list[int] = []
    replace_rows = day_rollups._replace

    def recording(conn: sa.Connection, periods: list[tuple[int, int]], pairs: Any,
                  period: int) -> None:
        if period == DAY_MS:  # the hours of each chunk's minutes are redone by each
            recomputed.extend(day for lo, hi in periods for day in range(lo, hi, DAY_MS))
        replace_rows(conn, periods, pairs, period)

    monkeypatch.setattr(day_rollups, "_replace", recording)
    store.refresh_rollups(chunk_minutes=5)
    assert len(set(recomputed)) >= DAYS
    assert all(count <= 2 for count in Counter(recomputed).values())  # events, invocations
    _counts_equal_raw(store, None, None)
    _counts_equal_raw(store, T0 + DAY_MS // 2, T0 + 2 * DAY_MS + 12_345)


def test_a_store_made_before_day_rollups_gets_them_filled(store_url: str) -> None:
    store = open_store(store_url)
    store.write_batch(*_spread())
    store.refresh_rollups()
    with store.engine.begin() as conn:
        for table in ("event_rollup_day", "invocation_rollup_day", "handling_rollup_day"):
            conn.execute(sa.text(f"DROP TABLE {table}"))
    store.engine.dispose()
    reopened = open_store(store_url)
    with reopened.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(event_rollup_day)).scalar()
    _counts_equal_raw(reopened, None, None)
    reopened.engine.dispose()


def test_spread_data_covers_several_days() -> None:
    """The data the tests above use does cross day boundaries (else they checked nothing)."""
    events, _ = _spread()
    days = {e.time_ms // DAY_MS for e in events}
    assert len(days) >= DAYS


@settings(max_examples=300, deadline=None)
@given(offsets=st.sets(st.integers(0, 4 * DAY_MS // MINUTE_MS), max_size=400),
       max_minutes=st.integers(1, 300))
def test_a_refresh_cuts_its_minutes_between_days_unless_a_day_is_too_big(
        offsets: set[int], max_minutes: int) -> None:
    """`rollups.day_chunks` covers the dirty minutes in order, each group within the size
    limits `range_chunks` keeps, and splits a day (whose day rows each group recomputes)
    only when it holds more minutes than a group may (or more ranges than a statement)."""
    from eventscope.rollups import MAX_RANGES, day_chunks, minute_ranges
    minutes = sorted(T0 + offset * MINUTE_MS for offset in offsets)
    chunks = day_chunks(minutes, max_minutes)
    covered = [m for chunk in chunks for lo, hi in chunk for m in range(lo, hi, MINUTE_MS)]
    assert covered == minutes
    groups_of_day: dict[int, set[int]] = {}
    for number, chunk in enumerate(chunks):
        assert sum((hi - lo) // MINUTE_MS for lo, hi in chunk) <= max_minutes
        assert 0 < len(chunk) <= MAX_RANGES
        for lo, hi in chunk:
            for minute in range(lo, hi, MINUTE_MS):
                groups_of_day.setdefault(minute - minute % DAY_MS, set()).add(number)
    for day, groups in groups_of_day.items():
        own = [m for m in minutes if day <= m < day + DAY_MS]
        if len(groups) > 1:
            assert len(own) > max_minutes or len(minute_ranges(own)) > MAX_RANGES


# --- hours: series in buckets of hours, and how a window is split between the tables --------

BUCKETS = (15 * MINUTE_MS, HOUR_MS, 6 * HOUR_MS, DAY_MS, 7 * DAY_MS)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(since=st.integers(T0 - DAY_MS, T0 + SPAN + DAY_MS),
       length=st.integers(1, SPAN + DAY_MS), bucket=st.sampled_from(BUCKETS))
def test_bucketed_series_equal_raw_rows_bucketed(store: Store, since: int, length: int,
                                                 bucket: int) -> None:
    """Event counts and invocation counts per bucket (the dashboard's series), read from the
    day, hour and minute tables, are those of the raw rows counted per bucket of their
    minute; the bucketed rows also sum to the window's totals."""
    if not store.counts()["events"]:
        store.write_batch(*_spread())
        store.refresh_rollups()
    until = since + length
    raw_since, raw_until = _minute_window(since, until)
    events = load.load_events(store.engine, raw_since, raw_until)
    want = (events.assign(bucket_ms=events["time_ms"] - events["time_ms"] % bucket)
            .groupby(["bucket_ms", "detail_type"]).size().rename("count").reset_index())
    got = load.load_event_totals(store.engine, since, until, bucket_ms=bucket)
    got = got.groupby(["bucket_ms", "detail_type"])["count"].sum().reset_index()
    pd.testing.assert_frame_equal(_sorted(got, ["bucket_ms", "detail_type"]),
                                  _sorted(want, ["bucket_ms", "detail_type"]),
                                  check_dtype=False)
    attempts = load.load_attempts(store.engine, raw_since, raw_until)
    calls = (attempts.assign(bucket_ms=attempts["start_ms"] - attempts["start_ms"] % bucket)
             .groupby(["bucket_ms", "function"]).size().rename("invocations").reset_index())
    counted = load.load_call_counts(store.engine, since, until, bucket)
    counted = counted.groupby(["bucket_ms", "consumer"])["invocations"].sum().reset_index()
    pd.testing.assert_frame_equal(
        _sorted(counted.rename(columns={"consumer": "function"}), ["bucket_ms", "function"]),
        _sorted(calls, ["bucket_ms", "function"]), check_dtype=False)
    totals = load.load_call_counts(store.engine, since, until)
    assert int(totals["invocations"].sum()) == int(counted["invocations"].sum())


@settings(max_examples=500, deadline=None)
@given(low=st.none() | st.integers(0, 3 * DAY_MS // MINUTE_MS),
       length=st.integers(0, 3 * DAY_MS // MINUTE_MS),
       high_open=st.booleans(), bucket=st.none() | st.sampled_from(BUCKETS + (5 * MINUTE_MS,)),
       table=st.sampled_from([minutes for minutes, _, _ in day_rollups.PAIRS]))
def test_a_window_is_split_into_whole_days_hours_and_minutes(
        low: int | None, length: int, high_open: bool, bucket: int | None, table: Any) -> None:
    """`load._spans` covers the window's minutes exactly once: each part from the day table
    is whole days, from the hour table whole hours, and neither is read when the buckets
    split its period or the minute table has no such summary (latencies have no hours)."""
    start = None if low is None else T0 - T0 % DAY_MS + low * MINUTE_MS
    end = None if high_open else (start if start is not None else T0) + length * MINUTE_MS
    spans = load._spans(table, start, end, bucket)
    periods = {days: DAY_MS for _, days, _ in day_rollups.PAIRS}
    periods |= {hours: HOUR_MS for _, hours, _ in day_rollups.HOUR_PAIRS}
    periods[table] = MINUTE_MS
    for part, lo, hi in spans:
        assert part in periods and day_rollups.PERIOD_MS.get(part, MINUTE_MS) == periods[part]
        assert bucket is None or periods[part] == MINUTE_MS or bucket % periods[part] == 0
        for bound in (lo, hi):
            assert bound is None or bound % periods[part] == 0
    # an open end (None) reaches past any time; look at a stretch of days around the window
    first, last = T0 - T0 % DAY_MS - 2 * DAY_MS, T0 - T0 % DAY_MS + 7 * DAY_MS

    def clip(lo: int | None, hi: int | None) -> range:
        return range(first if lo is None else max(lo, first),
                     last if hi is None else min(hi, last), MINUTE_MS)

    covered = sorted(m for _, lo, hi in spans for m in clip(lo, hi))
    assert covered == list(clip(start, end))
    if table.name == "latency_rollup":
        assert all(periods[part] != HOUR_MS for part, _, _ in spans)
