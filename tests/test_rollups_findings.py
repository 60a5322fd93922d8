"""Findings read from rollups equal the same findings computed from every raw row."""

from __future__ import annotations

import math
from datetime import date
import random

import pandas as pd
import pytest

from eventscope.findings import failures, summaries
from eventscope.findings.frames import records, resolve_consumers
from eventscope.findings.graph import build_graph, graph_json
from eventscope.findings.check import CheckInputs, Thresholds, run_check, run_check_summaries
from eventscope.findings.load import load_attempts, load_events, load_samples, load_type_summary
from eventscope.records import Invocation
from eventscope.store import DURATION_EDGES_MS, Store
from tests import findings_scenario as scenario
from tests.test_rollups import company

EXACT = [c for c in failures.RATE_COLUMNS if c not in ("p50_ms", "p95_ms")]


def _filled(store: Store) -> None:
    evs, calls = company(orders=40, seed=2)
    store.write_batch(evs + scenario.bus_events(), calls + scenario.invocations())


def _frames_equal(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True),
                                  check_dtype=False)


@pytest.mark.parametrize("with_catalog", [False, True])
def test_failure_rates_from_rollups_equal_raw(store: Store, with_catalog: bool) -> None:
    _filled(store)
    catalog = scenario.catalog() if with_catalog else None
    raw = failures.failure_rates(resolve_consumers(load_attempts(store.engine), catalog))
    rolled = summaries.failure_rates(store.engine, catalog)
    _frames_equal(rolled[EXACT], raw[EXACT])


@pytest.mark.parametrize("bucket_ms", [60_000, 300_000])
def test_bucketed_rates_from_rollups_equal_raw(store: Store, bucket_ms: int) -> None:
    _filled(store)
    raw = failures.failure_rates(load_attempts(store.engine), bucket_ms)
    rolled = summaries.failure_rates(store.engine, bucket_ms=bucket_ms)
    columns = EXACT[:3] + ["bucket_ms"] + EXACT[3:]
    _frames_equal(rolled[columns], raw[columns])


def test_bucket_percentiles_fall_in_the_buckets_around_the_exact_quantile() -> None:
    """The estimate lies between the bucket of the value just below the exact (interpolated)
    quantile and the bucket of the value just above it."""
    rng = random.Random(4)
    edges = [0.0, *DURATION_EDGES_MS, float("inf")]
    for _ in range(200):
        values = sorted(rng.choice([rng.uniform(0, 50), rng.uniform(0, 5000), 3e6])
                        for _ in range(rng.randint(1, 40)))
        counts = [0] * (len(DURATION_EDGES_MS) + 1)
        for v in values:
            counts[sum(v >= e for e in DURATION_EDGES_MS)] += 1
        for q in (0.5, 0.95):
            rank = q * (len(values) - 1)
            below, above = values[math.floor(rank)], values[math.ceil(rank)]
            low = max(e for e in edges if e <= below)
            high = min(min(e for e in edges if e > above), values[-1])
            estimate = failures.bucket_percentile(counts, q, values[-1])
            assert low <= estimate <= high


def test_final_failures_and_top_errors_from_rollups_equal_raw(store: Store) -> None:
    _filled(store)
    attempts = load_attempts(store.engine)
    _frames_equal(summaries.final_failures(store.engine), failures.final_failures(attempts))
    want = failures.top_errors(attempts)
    got = summaries.top_errors(store.engine)
    assert records(got[want.columns]) == records(want)


def test_selection_by_consumer_and_type(store: Store) -> None:
    _filled(store)
    attempts = load_attempts(store.engine)
    chosen = attempts[(attempts["consumer"] == "billing-fn")
                      & (attempts["detail_type"] == "OrderPaid")]
    want = failures.failure_rates(chosen)
    got = summaries.failure_rates(store.engine, consumers=["billing-fn"],
                                  detail_types=["OrderPaid"])
    _frames_equal(got[EXACT], want[EXACT])
    _frames_equal(summaries.final_failures(store.engine, consumers=["billing-fn"],
                                           detail_types=["OrderPaid"]),
                  failures.final_failures(chosen))


@pytest.mark.parametrize("with_catalog", [False, True])
def test_graph_from_rollups_equals_raw(store: Store, with_catalog: bool) -> None:
    _filled(store)
    catalog = scenario.catalog() if with_catalog else None
    raw = build_graph(load_events(store.engine),
                      resolve_consumers(load_attempts(store.engine), catalog), catalog)
    assert graph_json(summaries.build_graph(store.engine, catalog)) == graph_json(raw)


def _without_percentiles(found: list) -> list[dict]:
    result = []
    for finding in found:
        item = finding.as_dict()
        if item["kind"] == "failure_rate":
            item["evidence"] = {k: v for k, v in item["evidence"].items()
                                if k not in ("p50_ms", "p95_ms")}
        result.append(item)
    return result


@pytest.mark.parametrize("with_catalog", [False, True])
def test_check_from_rollups_equals_check_from_raw(store: Store, with_catalog: bool) -> None:
    _filled(store)
    store.write_batch([], [Invocation("dup", "billing-fn", "/aws/lambda/billing-fn", "s",
                                      scenario.T0 + 130_000, "ok", "e3", complete=True)])
    catalog = scenario.catalog() if with_catalog else None
    engine = store.engine
    inputs = CheckInputs(events=load_events(engine),
                         attempts=resolve_consumers(load_attempts(engine), catalog),
                         type_summary=load_type_summary(engine), samples=load_samples(engine))
    thresholds = Thresholds(min_invocations=1, final_failures_warning=1)
    raw, raw_skipped = run_check(inputs, catalog, thresholds, date(2024, 1, 1))
    rolled, skipped = run_check_summaries(summaries.check_summaries(engine, catalog), catalog,
                                          thresholds, date(2024, 1, 1))
    kinds = {f.kind for f in raw}
    assert {"failure_rate", "final_failures", "processed_twice",
            "missing_subscription"} <= kinds
    assert _without_percentiles(rolled) == _without_percentiles(raw)
    assert skipped == raw_skipped


def test_window_invocation_counts_equal_raw_for_whole_minutes(store: Store) -> None:
    """With a minute-aligned window, invocation counts equal the raw rows started in it."""
    _filled(store)
    since, until = scenario.T0 + 120_000 - scenario.T0 % 60_000, scenario.T0 + 900_000
    until -= until % 60_000
    columns = ["consumer", "detail_type", "version", "invocations", "failed", "errors",
               "timeouts"]
    raw = failures.failure_rates(load_attempts(store.engine, since, until))
    rolled = summaries.failure_rates(store.engine, since_ms=since, until_ms=until)
    key = ["consumer", "detail_type", "version"]
    _frames_equal(rolled[columns].sort_values(key, na_position="last").reset_index(drop=True),
                  raw[columns].sort_values(key, na_position="last").reset_index(drop=True))
