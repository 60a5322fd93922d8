"""Latency from the latency rollup: the SQL bucket is the Python one on both engines, the
histogram percentiles stay within 5 % of the exact ones, and `read.latency` over the store
gives `latency_by_pair`'s exact counts and maxima with approximate p50/p95. (That the rollup
rows equal a from-scratch recompute after any batches is `tests/test_rollups.py`'s
`assert_exact`, which every rollup test runs.)"""

from __future__ import annotations

import bisect
import math
from dataclasses import replace

import pandas as pd
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from eventscope.findings import load, read
from eventscope.findings.latency import (MEASURES, PAIR, PAIR_COLUMNS, histogram_quantile,
                                         latency_by_pair, latency_from_histograms)
from eventscope.rollups import latency_bucket
from eventscope.store import Store
from eventscope.tables import DAY_MS, LATENCY_EDGES_MS, metadata
from tests.test_rollups import company

RELATIVE_ERROR = 0.05
EXACT = ["events", "skewed", "first_max_ms", "success_events", "success_max_ms"]
APPROXIMATE = ["first_p50_ms", "first_p95_ms", "success_p50_ms", "success_p95_ms"]
LATENCIES = st.integers(min_value=0, max_value=30 * DAY_MS - 1)  # below the open bucket


def histogram(values: list[int]) -> list[tuple[int, int, float]]:
    """(bucket, count, max) rows of `values`, sorted by bucket, as the rollup holds them."""
    rows: dict[int, tuple[int, float]] = {}
    for value in values:
        count, top = rows.get(bisect.bisect_right(LATENCY_EDGES_MS, value), (0, 0.0))
        rows[bisect.bisect_right(LATENCY_EDGES_MS, value)] = (count + 1, max(top, value))
    return [(bucket, count, top) for bucket, (count, top) in sorted(rows.items())]


def close(approximate: float, exact: float) -> bool:
    if math.isnan(exact):
        return math.isnan(approximate)
    return abs(approximate - exact) <= RELATIVE_ERROR * exact + 1e-6


def assert_latency_close(found: pd.DataFrame, exact: pd.DataFrame) -> None:
    """The same pairs with the same counts and maxima; p50/p95 within 5 %."""
    assert list(found.columns) == PAIR_COLUMNS
    keys = list(PAIR)
    found, exact = (f.sort_values(keys).reset_index(drop=True) for f in (found, exact))
    pd.testing.assert_frame_equal(found[keys + EXACT], exact[keys + EXACT], check_dtype=False)
    for column in APPROXIMATE:
        for approximate, wanted in zip(found[column].astype(float), exact[column].astype(float)):
            assert close(approximate, wanted), (column, approximate, wanted)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(LATENCIES, min_size=1, max_size=200),
       q=st.one_of(st.sampled_from([0.0, 0.5, 0.95, 1.0]), st.floats(0, 1)))
@example(values=[19, 20, 21, 22], q=0.5)
@example(values=[0, 30 * DAY_MS - 1], q=0.95)
def test_histogram_quantiles_are_within_five_percent_of_the_exact_ones(values: list[int],
                                                                       q: float) -> None:
    exact = float(pd.Series(values, dtype=float).quantile(q))
    assert close(histogram_quantile(histogram(values), q), exact)


def test_an_empty_histogram_has_no_quantile() -> None:
    assert math.isnan(histogram_quantile([], 0.5))
    assert latency_from_histograms(pd.DataFrame(
        columns=[*PAIR, "measure", "bucket", "events", "skewed", "latency_max_ms"])
    ).columns.tolist() == [*PAIR, *MEASURES]


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.one_of(LATENCIES, st.integers(0, 100),
                                 st.sampled_from(LATENCY_EDGES_MS),
                                 st.integers(30 * DAY_MS, 10**12)), min_size=1, max_size=20))
def test_the_sql_bucket_is_the_python_bucket_on_both_engines(store: Store,
                                                             values: list[int]) -> None:
    """`latency_bucket` (a CASE tree) puts every latency where `bisect` does, edges included."""
    with store.engine.connect() as conn:
        found = [conn.execute(sa.select(latency_bucket(sa.literal(v, sa.BigInteger)))).scalar()
                 for v in values]
    assert found == [bisect.bisect_right(LATENCY_EDGES_MS, v) for v in values]


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), orders=st.integers(1, 40),
       stretch=st.sampled_from([1, 7, 1000]))
def test_latency_from_the_rollup_is_latency_by_pair_within_the_bucket_error(
        store: Store, seed: int, orders: int, stretch: int) -> None:
    """Random orders written in two batches (latencies stretched to cover short and long
    buckets): the rollup read gives every pair of the exact read, counts, skewed and maxima
    equal, p50/p95 within 5 %."""
    with store.engine.begin() as conn:  # hypothesis reuses the store: start empty
        for table in reversed(metadata.sorted_tables):
            if table.name != "meta":
                conn.execute(table.delete())
    events, calls = company(orders, seed)
    calls = [replace(c, start_ms=events[0].time_ms + (c.start_ms - events[0].time_ms) * stretch)
             for c in calls]
    store.write_batch(events[: len(events) // 2], calls[: len(calls) // 2])
    store.write_batch(events[len(events) // 2:], calls[len(calls) // 2:])
    exact = latency_by_pair(load.load_attempts(store.engine))
    found = read.latency(store.engine, None)
    assert_latency_close(found, exact)
    assert not found.empty or exact.empty

