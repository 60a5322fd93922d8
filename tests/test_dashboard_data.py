"""The dashboard's shared rollup reads: one bucketed scan summed per window gives the same
totals as reading the window directly, the narrow invocation counts agree with the full
totals, summaries fed totals already read equal the summaries reading them, and the missing
subscriptions can be bounded to the latest cancellations. Both engines."""

from __future__ import annotations

import pandas as pd
import pytest

from eventscope.findings import load, summaries
from eventscope.records import BusEvent, Invocation
from eventscope.store import Store
from tests import findings_scenario as scenario

HOUR = 3_600_000
T0 = 1_714_550_400_000


def seeded(store: Store) -> Store:
    """The findings scenario plus cancelled orders spread over three hours (some retried)."""
    events, calls = scenario.bus_events(), scenario.invocations()
    for n in range(6):
        key, start = f"c-{n}", T0 + n * 30 * 60_000
        for index, kind in enumerate(["OrderPlaced", "OrderCancelled"]):
            event = BusEvent(id=f"{key}-{index}", source="shop", detail_type=kind,
                             time_ms=start + index * 90_000, detail='{"version":"1"}',
                             size_bytes=300 + n, version="1", correlation_key=key)
            events.append(event)
            if kind == "OrderPlaced":  # warranty never handles the cancellation
                failed = n % 3 == 0
                calls.append(Invocation(f"{event.id}-w", "warranty-fn",
                                        "/aws/lambda/warranty-fn", "s", event.time_ms + 100,
                                        "error" if failed else "ok", event.id,
                                        duration_ms=12.0,
                                        error_type="ValueError" if failed else None,
                                        complete=True))
            calls.append(Invocation(f"{event.id}-b", "billing-fn", "/aws/lambda/billing-fn",
                                    "s", event.time_ms + 200, "ok", event.id, duration_ms=30.0,
                                    complete=True))
    store.write_batch(events, calls)
    store.refresh_rollups()
    return store


def same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    keys = [c for c in load.CALL_KEYS if c in left.columns]
    order = lambda df: df.sort_values(keys, na_position="last").reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(order(left)[list(right.columns)], order(right),
                                  check_dtype=False)


@pytest.mark.parametrize("window", [(None, None), (T0 + 20 * 60_000, T0 + 2 * HOUR)])
def test_summed_buckets_equal_the_window_read_directly(store: Store,
                                                      window: tuple[int | None, int | None]
                                                      ) -> None:
    engine = seeded(store).engine
    for reader in (load.load_call_totals, load.load_call_counts, load.load_handling_totals):
        bucketed = reader(engine, *window, bucket_ms=HOUR)
        assert bucketed["bucket_ms"].nunique() > 1 or window[0] is not None
        same(load.without_buckets(bucketed), reader(engine, *window))


def test_call_counts_are_the_call_totals_without_durations(store: Store) -> None:
    engine = seeded(store).engine
    counts = load.load_call_counts(engine)
    same(counts, load.load_call_totals(engine)[list(counts.columns)])
    assert "d00" not in counts and "duration_sum_ms" not in counts


def test_summaries_fed_totals_equal_the_summaries_reading_them(store: Store) -> None:
    engine = seeded(store).engine
    calls, handling = load.load_call_counts(engine), load.load_handling_totals(engine)
    pd.testing.assert_frame_equal(summaries.top_errors(engine, calls=calls),
                                  summaries.top_errors(engine))
    pd.testing.assert_frame_equal(summaries.handled_kinds(engine, calls=calls),
                                  summaries.handled_kinds(engine))
    pd.testing.assert_frame_equal(
        summaries.final_failures(engine, consumers=["warranty-fn"], calls=calls),
        summaries.final_failures(engine, consumers=["warranty-fn"]))
    pd.testing.assert_frame_equal(summaries.failure_rates(engine, handling=handling),
                                  summaries.failure_rates(engine))
    totals = (load.load_event_totals(engine), calls, handling)
    assert sorted(summaries.build_graph(engine, totals=totals).edges(data=True)) == \
        sorted(summaries.build_graph(engine).edges(data=True))


def test_missing_subscriptions_of_the_latest_cancellations_only(store: Store) -> None:
    """Warranty handled every order's placement and no cancellation: all 7 cancelled orders
    (6 + the scenario's o-1) are affected; the latest 2 cancellations name the 2 newest."""
    engine = seeded(store).engine
    every = {m["consumer"]: m for m in summaries.observed_missing_subscriptions(engine)}
    latest = {m["consumer"]: m for m in summaries.observed_missing_subscriptions(
        engine, latest=2)}
    assert every["warranty-fn"]["orders"] == 7
    assert latest["warranty-fn"]["orders"] == 2
    assert latest["warranty-fn"]["examples"] == ["c-4", "c-5"]
    assert "billing-fn" not in latest
