"""Every finding is a total function: on any store shape (tests/store_shapes.py), written into
a real store on SQLite and PostgreSQL, each answers (possibly empty) and never raises; and
where the right answer is plain from what was written, it is that answer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from functools import lru_cache
from typing import Any

import orjson
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from eventscope.catalog.loader import load_catalog
from eventscope.catalog.model import Catalog, Consumer
from eventscope.findings import load, read, summaries
from eventscope.findings.check import (CheckInputs, Finding, Thresholds, failure_findings_from,
                                       run_check, run_check_summaries)
from eventscope.findings.deprecated import deprecated_from_summary, deprecated_in_use
from eventscope.findings.duplicates import (duplicates_by_consumer, producer_resends,
                                            repeated_deliveries)
from eventscope.findings.failures import (RATE_COLUMNS, delivery_failures, failure_rates,
                                          final_failures, per_event, top_errors)
from eventscope.findings.frames import (DELIVERY_COLUMNS, FAILED, frame, records,
                                        resolve_consumers)
from eventscope.findings.graph import build_graph, graph_json, to_dot, to_mermaid
from eventscope.findings.latency import latency, latency_by_pair
from eventscope.findings.lifecycle import cancellation_types, order_lifecycle
from eventscope.findings.payloads import (payload_sizes, payload_sizes_from_totals, pii_fields,
                                          redact)
from eventscope.findings.subscriptions import (missing_subscriptions, observed_missing,
                                               static_missing)
from eventscope.findings.undocumented import (schema_drift, summarise_types, undocumented_events,
                                              validate_samples)
from eventscope.records import BusEvent, Invocation, Outcome
from eventscope.rollups import minute_of
from eventscope.store import Store, open_store
from eventscope.tables import invocations as invocations_table
from tests.store_shapes import (ORDERS, T0, WINDOW, StoreShape, no_cancellation, store_shapes,
                                unattributed_only, write)

TODAY = date(2026, 1, 1)
MINUTE = 60_000
HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=HEALTH)
SLOW = settings(max_examples=12, deadline=None, suppress_health_check=HEALTH)  # many findings


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.engine.dispose()


@lru_cache(maxsize=None)
def example_catalog(path: str) -> Catalog:
    return load_catalog(path)


def catalog_of(shape: StoreShape) -> Catalog | None:
    return None if shape.catalog is None else example_catalog(str(shape.catalog))


LOOKUPS = st.sampled_from([*[o for o in ORDERS if o], "e0", "id-", "nothing-here", "o", ""])


@SLOW
@given(shape=store_shapes(), query=LOOKUPS)
@example(shape=StoreShape(), query="ord-1")
@example(shape=no_cancellation(), query="ord-1")
def test_every_raw_finding_answers_on_any_store_shape(store: Store, shape: StoreShape,
                                                      query: str) -> None:
    """Failures, graph, lifecycle, undocumented, subscriptions, duplicates, deprecated,
    payloads/PII, latency and `run_check` on raw frames: none raises, on any store."""
    write(store, shape)
    engine, catalog = store.engine, catalog_of(shape)
    rules = read.bus_subscriptions(engine, catalog)
    events = load.load_events(engine, with_detail=True)
    attempts = resolve_consumers(load.load_attempts(engine), catalog)
    samples, type_summary = load.load_samples(engine), load.load_type_summary(engine)
    windowed = resolve_consumers(load.load_attempts(engine, *WINDOW), catalog)

    for calls in (attempts, windowed):
        records(failure_rates(calls))
        records(failure_rates(calls, bucket_ms=60_000))
        records(final_failures(calls))
        records(top_errors(calls))
        records(per_event(calls))
        records(latency(calls))
        records(latency_by_pair(calls))
        repeated_deliveries(calls)
        duplicates_by_consumer(calls)
    producer_resends(events)
    built = build_graph(events, attempts, catalog, rules)
    graph_json(built), to_dot(built), to_mermaid(built)

    for key in load.find_correlation_keys(engine, query):
        found_events, found_attempts = load.load_lifecycle(engine, key)
        order_lifecycle(key, found_events, resolve_consumers(found_attempts, catalog), catalog,
                        rules)
    cancels = cancellation_types(catalog)
    observed = observed_missing(events, attempts, cancels)
    static = static_missing(catalog, rules) if catalog is not None else []
    missing_subscriptions(static, observed)

    payload_sizes(events)
    pii_fields(samples, attempts, catalog)
    for detail in samples["detail"]:
        redact(orjson.loads(detail))
    if catalog is not None:
        undocumented_events(type_summary, catalog, attempts, samples)
        undocumented_events(summarise_types(events), catalog, attempts, samples)
        schema_drift(validate_samples(samples, catalog))
        deprecated_in_use(catalog, events, attempts, TODAY)
        deprecated_from_summary(catalog, type_summary, attempts, TODAY)
    inputs = CheckInputs(events=events, attempts=attempts, type_summary=type_summary,
                         samples=samples, subscriptions=rules)
    found, _ = run_check(inputs, catalog, Thresholds(min_invocations=1), TODAY)
    [f.as_dict() for f in found]


@SLOW
@given(shape=store_shapes())
@example(shape=StoreShape())
@example(shape=no_cancellation())
@example(shape=unattributed_only())
def test_every_store_finding_answers_on_any_store_shape(store: Store, shape: StoreShape) -> None:
    """The rollup-backed findings (`summaries`, what the CLI and the dashboard call), over the
    whole store and over a window, bucketed or not: none raises, on any store."""
    write(store, shape)
    engine, catalog = store.engine, catalog_of(shape)
    rules = read.bus_subscriptions(engine, catalog)
    for since, until in ((None, None), WINDOW, (WINDOW[1], None)):
        records(summaries.failure_rates(engine, catalog, since, until))
        records(summaries.failure_rates(engine, catalog, since, until, bucket_ms=300_000))
        records(summaries.final_failures(engine, catalog, since, until))
        records(summaries.top_errors(engine, catalog, since, until))
        records(summaries.handled_kinds(engine, catalog, since, until))
        graph_json(summaries.build_graph(engine, catalog, rules, since, until))
        summaries.observed_missing_subscriptions(engine, catalog, since, until, latest=5)
        read.missing_subscriptions(engine, catalog, since, until, latest=5)
        records(read.latency(engine, catalog, since, until))
        records(read.latency(engine, catalog, since, until, per_function=2, total=5))
        payload_sizes_from_totals(load.load_event_totals(engine, since, until))
    for since, until in ((None, None), WINDOW):  # the dashboard's path: totals per time
        calls = load.without_buckets(load.load_call_counts(engine, since, until, 300_000))
        handling = load.without_buckets(load.load_handling_totals(engine, since, until,
                                                                  300_000))  # bucket, summed
        totals = (load.load_event_totals(engine, since, until), calls, handling)
        graph_json(summaries.build_graph(engine, catalog, rules, since, until, totals=totals))
        records(summaries.failure_rates(engine, catalog, calls=load.load_call_totals(
            engine, since, until), handling=handling))
        records(summaries.handled_kinds(engine, catalog, calls=calls))
        records(summaries.final_failures(engine, catalog, since, until, calls=calls))
        records(summaries.top_errors(engine, catalog, since, until, calls=calls))
    consumers = sorted(set(summaries.handled_kinds(engine, catalog)["consumer"]))[:1]
    records(summaries.failure_rates(engine, catalog, consumers=consumers))
    records(summaries.final_failures(engine, catalog, consumers=consumers))
    records(summaries.top_errors(engine, catalog, consumers=consumers,
                                 detail_types=["OrderCreated"]))
    summaries.duplicates(engine, catalog)
    checked = replace(summaries.check_summaries(engine, catalog, rules),
                      contract_results=load.load_contract_results(store))
    found, _ = run_check_summaries(checked, catalog, Thresholds(min_invocations=1), TODAY)
    [f.as_dict() for f in found]


@SETTINGS
@given(shape=store_shapes())
def test_failure_counts_equal_what_was_written(store: Store, shape: StoreShape) -> None:
    """Invocations and failed invocations, over the store and in the window, raw and from the
    rollups, are the rows written (in the window's minutes, the rollups' resolution)."""
    write(store, shape)
    engine, catalog = store.engine, catalog_of(shape)
    for since, until in ((None, None), WINDOW):
        written = shape.invocations_in_minutes(since, until)
        failed = sum(i.outcome in FAILED for i in written)
        rolled = summaries.failure_rates(engine, catalog, since, until)
        assert (rolled["invocations"].sum(), rolled["failed"].sum()) == (len(written), failed)
    raw = failure_rates(resolve_consumers(load.load_attempts(engine), catalog))
    assert raw["invocations"].sum() == len(shape.invocations)
    assert raw["failed"].sum() == sum(i.outcome in FAILED for i in shape.invocations)


def expected_final_failures(shape: StoreShape) -> set[tuple[str, str]]:
    """(function, event id) pairs of stored events whose every attempt failed."""
    stored = {e.id for e in shape.events}
    outcomes: dict[tuple[str, str], list[str]] = {}
    for call in shape.invocations:
        if call.event_id in stored:
            outcomes.setdefault((call.consumer, call.event_id), []).append(call.outcome)
    return {pair for pair, seen in outcomes.items() if all(o in FAILED for o in seen)}


@SETTINGS
@given(shape=store_shapes(catalog=False))
def test_final_failures_are_the_events_every_attempt_failed_on(store: Store,
                                                               shape: StoreShape) -> None:
    """Raw and rollup-backed final failures are exactly the pairs whose attempts all failed."""
    write(store, shape)
    expected = expected_final_failures(shape)
    raw = final_failures(load.load_attempts(store.engine))
    rolled = summaries.final_failures(store.engine)
    assert set(zip(raw["consumer"], raw["event_id"])) == expected
    assert set(zip(rolled["consumer"], rolled["event_id"])) == expected


# A catalog whose consumers own several functions, rename one, and take a name another function
# keeps: the drill-downs must count one consumer's attempts of one event as one pair.
SHARED = Catalog(consumers=(
    Consumer("Billing", "payments", functions=("billing-fn", "Shared Fn")),
    Consumer("fraud-check", "risk", functions=("fn-ü",)),
    Consumer("Invoices", "finance", functions=("invoice-generator",))))
CATALOGS = st.sampled_from(["shape's", "none", "shared"])
WINDOWS = st.sampled_from([(None, None), WINDOW, (WINDOW[1], None), (None, WINDOW[0])])


def chosen_catalog(shape: StoreShape, choice: str) -> Catalog | None:
    return {"shape's": catalog_of(shape), "none": None, "shared": SHARED}[choice]


def first_tried_in(attempts: pd.DataFrame, since: int | None,
                   until: int | None) -> pd.DataFrame:
    """The attempts of the (consumer, event) pairs first tried in [since, until) widened to
    whole minutes (the rollups' resolution), every one of their attempts kept: the raw
    answer a windowed drill-down gives."""
    first = attempts.groupby(["consumer", "event_id"])["start_ms"].transform("min")
    keep = first == first
    if since is not None:
        keep &= first >= minute_of(since)
    if until is not None:
        keep &= first < minute_of(until + 60_000 - 1)
    return attempts[keep]


@SETTINGS
@given(shape=store_shapes(), window=WINDOWS, choice=CATALOGS)
def test_final_failures_counted_in_sql_are_the_raw_ones(store: Store, shape: StoreShape,
                                                        window: tuple[int | None, int | None],
                                                        choice: str) -> None:
    """The store's final failures (one statement, rows per pair) are `final_failures` of the
    raw attempts of the pairs first tried in the window, row for row and in order, also when
    one consumer owns several functions."""
    write(store, shape)
    catalog = chosen_catalog(shape, choice)
    attempts = resolve_consumers(load.load_attempts(store.engine), catalog)
    want = final_failures(first_tried_in(attempts, *window))
    assert records(summaries.final_failures(store.engine, catalog, *window)) == records(want)


# Retries of a few events at a few start times: ties in start_ms (broken by the request id,
# ids that are prefixes of one another, differ in case or are not ASCII), attempts with no
# error type, no message or neither, a last attempt without the message an earlier one has.
RETRY_STARTS = [T0 - 2 * MINUTE, T0 - MINUTE - 1, T0 - MINUTE, T0 - MINUTE + 1, T0 - 1]
RETRY_IDS = ["r", "r1", "r10", "r2", "R1", "r-1", "ü", "z"]
RETRY_FUNCTIONS = ["billing-fn", "Shared Fn", "fraud-check"]  # two share a consumer in SHARED
RETRY_ERRORS = [None, ("ValueError", "bad sku A-1"), ("Error", None), (None, "no type"),
                ("KeyError", "'orderId' ann@example.com")]


def _retry(request_id: str, function: str, start_ms: int, event_id: str, outcome: Outcome,
           error: tuple[str | None, str | None] | None) -> Invocation:
    return Invocation(request_id=request_id, consumer=function,
                      log_group=f"/aws/lambda/{function}", log_stream="s", start_ms=start_ms,
                      outcome=outcome, event_id=event_id, duration_ms=5.0,
                      error_type=error[0] if error else None,
                      error_message=error[1] if error else None, complete=True)


def _retried_event(index: int) -> BusEvent:
    return BusEvent(id=f"e{index}", source="com.shop.orders", detail_type="OrderCreated",
                    time_ms=T0 - 3 * MINUTE, detail="{}", size_bytes=300, version="1")


@st.composite
def retried_failures(draw: st.DrawFn) -> StoreShape:
    """Up to three events and up to twelve attempts at them by the RETRY_FUNCTIONS at the
    RETRY_STARTS, mostly failing (the rest succeed, so some pairs are no final failure)."""
    events = [_retried_event(index) for index in range(draw(st.integers(1, 3)))]
    taken: set[tuple[str, int]] = set()
    calls = []
    for _ in range(draw(st.integers(0, 12))):
        request_id, start = draw(st.sampled_from(RETRY_IDS)), draw(st.sampled_from(RETRY_STARTS))
        if (request_id, start) in taken:
            continue
        taken.add((request_id, start))
        outcome: Outcome = draw(st.sampled_from(["error", "error", "timeout", "ok"]))
        calls.append(_retry(request_id, draw(st.sampled_from(RETRY_FUNCTIONS)), start,
                            draw(st.sampled_from(events)).id, outcome,
                            None if outcome == "ok" else draw(st.sampled_from(RETRY_ERRORS))))
    return StoreShape(events, calls)


# billing-fn's last attempt (tied in start_ms, later by its id) has a type and no message,
# an earlier one both, the first neither; Shared Fn's (the same consumer in SHARED, the
# pair's last attempt then) a message and no type
TIED = StoreShape([_retried_event(0)], [
    _retry("r", "billing-fn", T0 - MINUTE, "e0", "timeout", None),
    _retry("r1", "billing-fn", T0 - MINUTE + 1, "e0", "error", ("ValueError", "bad sku A-1")),
    _retry("r10", "billing-fn", T0 - MINUTE + 1, "e0", "error", ("Error", None)),
    _retry("r2", "Shared Fn", T0 - MINUTE + 1, "e0", "error", (None, "no type"))])


@SETTINGS
@given(shape=retried_failures(), window=WINDOWS, choice=st.sampled_from(["none", "shared"]))
@example(shape=TIED, window=(None, None), choice="none")
@example(shape=TIED, window=(None, None), choice="shared")
def test_final_failures_last_errors_are_the_raw_ones(store: Store, shape: StoreShape,
                                                     window: tuple[int | None, int | None],
                                                     choice: str) -> None:
    """Each final failure's last error type and last message (computed in the statement
    that groups the pair's attempts) are the last non-null ones in (start, request id) order
    of the raw attempts, also when starts tie, when the last attempt lacks the message an
    earlier one has, and when one consumer's functions share a pair."""
    write(store, shape)
    catalog = None if choice == "none" else SHARED
    attempts = resolve_consumers(load.load_attempts(store.engine), catalog)
    want = final_failures(first_tried_in(attempts, *window))
    got = summaries.final_failures(store.engine, catalog, *window)
    assert records(got) == records(want)


def _kinds_and_consumers(shape: StoreShape) -> st.SearchStrategy[tuple[list[str], list[str]]]:
    """A selection as the CLI takes it: detail-types and consumers, each maybe one the store
    does not hold."""
    kinds = sorted({e.detail_type for e in shape.events} | {"NoSuchType"})
    names = sorted({c.consumer for c in shape.invocations} | {"Billing", "no-such-consumer"})
    return st.tuples(st.lists(st.sampled_from(kinds), max_size=2, unique=True),
                     st.lists(st.sampled_from(names), max_size=2, unique=True))


@SETTINGS
@given(data=st.data(), window=WINDOWS, choice=CATALOGS, latest=st.integers(1, 4))
def test_the_latest_final_failures_are_the_first_rows_of_them_all(
        store: Store, data: st.DataObject, window: tuple[int | None, int | None], choice: str,
        latest: int) -> None:
    """`failures`' bounded read (each function's newest failed invocations) gives the first
    `latest` rows of every final failure, row for row and in order, whatever the window,
    the catalog (one consumer owning several functions included), the detail-types and the
    consumers asked for (those the store does not hold included)."""
    shape = data.draw(st.one_of(store_shapes(), retried_failures()))
    kinds, consumers = data.draw(_kinds_and_consumers(shape))
    write(store, shape)
    catalog = chosen_catalog(shape, choice)
    every = summaries.final_failures(store.engine, catalog, *window, consumers=consumers,
                                     detail_types=kinds)
    got = summaries.final_failures(store.engine, catalog, *window, consumers=consumers,
                                   detail_types=kinds, latest=latest)
    assert records(got) == records(every.head(latest))


def _paid_event(index: int) -> BusEvent:
    return replace(_retried_event(index), detail_type="OrderPaid")


# Each: billing-fn's final failure e0 first, then a newer failed invocation of a pair that
# is no answer (it succeeded once; it was first tried before the window; its event is of
# another type): asked for one row, the bounded read must pass over it to e0.
NO_ANSWER_FIRST = {
    "succeeded once": (StoreShape([_retried_event(0), _retried_event(1)], [
        _retry("a", "billing-fn", T0 - 2 * MINUTE, "e0", "error", ("ValueError", "x")),
        _retry("b", "billing-fn", T0 - 2 * MINUTE, "e1", "ok", None),
        _retry("c", "billing-fn", T0 - 1, "e1", "error", ("ValueError", "y"))]), (None, None),
        ()),
    "first tried before the window": (StoreShape([_retried_event(0), _retried_event(1)], [
        _retry("a", "billing-fn", T0 + 1, "e0", "error", ("ValueError", "x")),
        _retry("b", "billing-fn", T0 - 1, "e1", "error", None),
        _retry("c", "billing-fn", T0 + MINUTE, "e1", "timeout", None)]), (T0, None), ()),
    "another type": (StoreShape([_retried_event(0), _paid_event(1)], [
        _retry("a", "billing-fn", T0 - 2 * MINUTE, "e0", "error", ("ValueError", "x")),
        _retry("b", "billing-fn", T0 - 1, "e1", "error", None)]), (None, None),
        ("OrderCreated",)),
}


@pytest.mark.parametrize("case", sorted(NO_ANSWER_FIRST))
def test_the_latest_final_failure_is_found_past_newer_failures_that_are_none(
        store: Store, case: str) -> None:
    """The bounded read counts only final failures of the selection towards its limit: a
    newer failed invocation of a pair that succeeded once, was first tried before the
    window, or is of a type not asked for does not take the one row asked for."""
    shape, window, kinds = NO_ANSWER_FIRST[case]
    write(store, shape)
    got = summaries.final_failures(store.engine, None, *window, detail_types=kinds, latest=1)
    assert list(zip(got["consumer"], got["event_id"])) == [("billing-fn", "e0")]


def test_a_functions_latest_final_failures_include_its_consumers_pairs_it_tried(
        store: Store) -> None:
    """Asked for one function of a consumer owning two, the bounded read finds the pair it
    tried whose last attempt its sibling made, and not the pair only its sibling tried."""
    write(store, StoreShape([_retried_event(0), _retried_event(1)], [
        _retry("a", "billing-fn", T0 - 2 * MINUTE, "e0", "error", None),
        _retry("b", "Shared Fn", T0 - MINUTE, "e0", "timeout", None),
        _retry("c", "Shared Fn", T0 - 1, "e1", "error", None)]))
    got = summaries.final_failures(store.engine, SHARED, consumers=["billing-fn"], latest=5)
    assert records(got) == records(summaries.final_failures(store.engine, SHARED,
                                                            consumers=["billing-fn"]))
    assert list(zip(got["consumer"], got["event_id"], got["attempts"])) == [("Billing", "e0", 2)]


@pytest.mark.parametrize("choice", ["none", "shared"])
def test_a_consumer_the_store_does_not_hold_has_no_final_failures(store: Store,
                                                                  choice: str) -> None:
    """Asked for a consumer no stored function belongs to, the final failures are none (not
    every consumer's), bounded or not."""
    write(store, TIED)
    catalog = None if choice == "none" else SHARED
    assert not summaries.final_failures(store.engine, catalog).empty
    for latest in (None, 5):
        assert summaries.final_failures(store.engine, catalog, consumers=["nobody"],
                                        latest=latest).empty


@pytest.mark.parametrize("choice", ["none", "shared"])
def test_checks_drill_downs_read_the_functions_once(store: Store, choice: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`check_summaries` finds which functions share a consumer once for its three
    drill-downs (final failures, duplicates, cancelled orders), and each answers as it
    does alone."""
    write(store, TIED)
    catalog = None if choice == "none" else SHARED
    reads: list[int] = []
    real = load.load_functions

    def counted(engine: Any) -> list[str]:
        reads.append(1)
        return real(engine)

    monkeypatch.setattr(load, "load_functions", counted)
    checked = summaries.check_summaries(store.engine, catalog)
    assert len(reads) == 1
    examples, _ = summaries.final_failure_examples(store.engine, catalog)
    assert not examples.empty and records(checked.final_failures) == records(examples)
    assert checked.duplicates == summaries.duplicates(store.engine, catalog)
    assert checked.observed_missing == summaries.observed_missing_subscriptions(store.engine,
                                                                                catalog)
    assert len(reads) == 4  # standalone, each reads them itself


TEXTS = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
                max_size=6)  # PostgreSQL text holds no NUL
ATTEMPT_ROWS = st.lists(st.tuples(st.sampled_from(["e0", "e1"]),
                                  st.integers(-2**63 + 1, 2**63 - 1) | st.sampled_from([0, 1, -1]),
                                  TEXTS, st.none() | TEXTS),
                        max_size=8, unique_by=lambda row: (row[2], row[1]))


@SETTINGS
@given(rows=ATTEMPT_ROWS)
@example(rows=[("e0", 5, "a b", "x"), ("e0", 5, "a", "y")])  # a space in the id
@example(rows=[("e0", 5, "a", "x"), ("e0", 5, "a\t", "y")])  # an id below the separator
@example(rows=[("e0", -10, "r", "x"), ("e0", -5, "r", "y"), ("e1", -1, "r", None)])
def test_last_non_null_is_the_value_of_the_last_attempt_holding_one(
        store: Store, rows: list[tuple[str, int, str, str | None]]) -> None:
    """The aggregate behind the last error type and message is, per group, the non-null value
    of the greatest (start_ms, request_id) that has one (None when none has; ids compared
    by code point, as Python compares them), for any 64-bit start and any request id and
    value text (spaces, prefixes of one another, non-ASCII)."""
    i = invocations_table.c
    with store.engine.begin() as conn:
        conn.execute(invocations_table.delete())
        if rows:
            conn.execute(invocations_table.insert(), [
                {"event_id": event_id, "start_ms": start, "request_id": request_id,
                 "error_type": value, "consumer": "f", "log_group": "g", "log_stream": "s",
                 "outcome": "error", "complete": True, "log_format": "text"}
                for event_id, start, request_id, value in rows])
    dialect = store.engine.dialect.name
    last = load._last_non_null(i.error_type, dialect).label("last")
    grouped = sa.select(i.event_id, last).group_by(i.event_id).subquery()
    with store.engine.connect() as conn:
        got = dict(conn.execute(sa.select(grouped.c.event_id,
                                          load._unpacked(grouped.c.last, dialect))).all())
    want: dict[str, str | None] = {}
    for event_id in {row[0] for row in rows}:
        held = [(start, request_id, value) for e, start, request_id, value in rows
                if e == event_id and value is not None]
        want[event_id] = max(held)[2] if held else None
    assert got == want


def _final_findings(found: list[Finding]) -> list[dict[str, Any]]:
    return sorted((f.as_dict() for f in found if f.kind == "final_failures"),
                  key=lambda f: orjson.dumps(f["subject"], option=orjson.OPT_SORT_KEYS))


@SETTINGS
@given(shape=store_shapes(), window=WINDOWS, choice=CATALOGS)
def test_checks_final_failures_from_rollup_counts_equal_the_raw_ones(
        store: Store, shape: StoreShape, window: tuple[int | None, int | None],
        choice: str) -> None:
    """`check`'s final-failures findings from the rollup's counts and the newest flagged
    minutes' examples are those graded on every raw final failure: counts, severities and
    the examples first tried last."""
    write(store, shape)
    catalog = chosen_catalog(shape, choice)
    attempts = resolve_consumers(load.load_attempts(store.engine), catalog)
    thresholds = Thresholds(final_failures_warning=1, final_failures_error=2)
    no_rates = frame([], RATE_COLUMNS)
    want = failure_findings_from(no_rates, final_failures(first_tried_in(attempts, *window)),
                                 thresholds)
    examples, counts = summaries.final_failure_examples(store.engine, catalog, *window)
    got = failure_findings_from(no_rates, examples, thresholds, counts)
    assert _final_findings(got) == _final_findings(want)


@SETTINGS
@given(shape=store_shapes(catalog=False), window=WINDOWS)
def test_the_newest_flagged_minutes_hold_each_kinds_newest_final_failure(
        store: Store, shape: StoreShape, window: tuple[int | None, int | None]) -> None:
    """Read with `newest=1`, the final failures hold every function x type's final failure
    first tried last (the bound `check` reads with, at one example instead of five)."""
    write(store, shape)
    want = final_failures(first_tried_in(load.load_attempts(store.engine), *window))
    newest = want.sort_values(["first_ms", "consumer", "event_id"],
                              ascending=[False, True, True]).groupby(
        ["consumer", "detail_type"]).head(1)
    got = load.load_final_failures(store.engine, since_ms=window[0], until_ms=window[1],
                                   newest=1)
    assert set(zip(newest["consumer"], newest["event_id"])) <= set(
        zip(got["consumer"], got["event_id"]))


@SETTINGS
@given(shape=store_shapes(catalog=False), window=WINDOWS)
def test_duplicates_counted_in_sql_are_the_raw_ones(store: Store, shape: StoreShape,
                                                    window: tuple[int | None, int | None]
                                                    ) -> None:
    """The store's duplicates (pairs counted in one statement) are `duplicates_by_consumer`
    of the raw attempts of the pairs first tried in the window; only `events` comes from
    the rollup (every pair of the consumer there)."""
    write(store, shape)
    raw = duplicates_by_consumer(first_tried_in(load.load_attempts(store.engine), *window))
    got = summaries.duplicates(store.engine, None, *window)
    assert [{k: v for k, v in d.items() if k != "events"} for d in got] == \
        [{k: v for k, v in d.items() if k != "events"} for d in raw]


@SETTINGS
@given(shape=store_shapes())
@example(shape=no_cancellation())
def test_no_cancellation_in_the_data_means_no_observed_missing_subscription(
        store: Store, shape: StoreShape) -> None:
    """Without a cancellation event nothing is missing by data; without a catalog nothing is
    missing at all; with one, only by declaration."""
    shape.events = [e for e in shape.events if e.detail_type not in
                    ("OrderCancelled", "OrderReturned")]
    write(store, shape)
    catalog = catalog_of(shape)
    observed = summaries.observed_missing_subscriptions(store.engine, catalog)
    raw = observed_missing(load.load_events(store.engine), resolve_consumers(
        load.load_attempts(store.engine), catalog), cancellation_types(catalog))
    assert observed == [] and raw == []
    static = static_missing(catalog, read.bus_subscriptions(store.engine, catalog)) \
        if catalog else []
    found = missing_subscriptions(static, observed)
    if catalog is None:
        assert found == []
    assert all(m["evidence"] == "declarations" for m in found)


@SETTINGS
@given(shape=store_shapes())
def test_event_totals_equal_the_events_written_in_the_window(store: Store,
                                                             shape: StoreShape) -> None:
    """Event totals over the store and the window count the events written there."""
    write(store, shape)
    for since, until in ((None, None), WINDOW):
        totals = load.load_event_totals(store.engine, since, until)
        assert int(totals["count"].sum()) == len(shape.events_in_minutes(since, until))


DELIVERIES = st.lists(st.fixed_dictionaries({
    "time_ms": st.integers(0, 2**53), "rule": st.sampled_from(["r1", "r 2"]),
    "target": st.sampled_from(["arn:aws:lambda:eu-west-1:1:function:a", "arn:aws:sqs:q"]),
    "event_id": st.none() | st.sampled_from(["e0", "e1"]),
    "outcome": st.sampled_from(["ok", "failed", "retrying", "dead_lettered"]),
    "error_code": st.none() | st.sampled_from(["Throttling", "NoPermissions"])}), max_size=8)


@settings(max_examples=100, deadline=None)
@given(rows=DELIVERIES)
def test_delivery_failures_count_every_attempt_and_failure(rows: list[dict]) -> None:
    """Per-target delivery failures from the bus's logs: every row is an attempt, every
    outcome but ok a failure, also with no rows at all."""
    table = delivery_failures(frame(rows, DELIVERY_COLUMNS))
    assert int(table["attempts"].sum()) == len(rows)
    assert int(table["failed"].sum()) == sum(r["outcome"] != "ok" for r in rows)
