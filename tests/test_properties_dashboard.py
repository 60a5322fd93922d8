"""Every dashboard page under Streamlit's AppTest on any store shape (tests/store_shapes.py),
in every time window, on SQLite and PostgreSQL: no exception; and the overview's totals are
the rows written inside the window."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import streamlit as st
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st_

from eventscope.dashboard.views import WINDOWS, window_for
from eventscope.store import Store, open_store
from tests.dashboard_harness import PAGES, page
from tests.store_shapes import (FUNCTIONS, KINDS, ORDERS, T0, EngineTracker, StoreShape,
                                no_cancellation, store_shapes, unattributed_only, write)

SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
DEEP_LINKS = st_.fixed_dictionaries({  # query parameters pages read, per page
    "lifecycle": st_.fixed_dictionaries({"order": st_.sampled_from(
        [o for o in ORDERS if o] + ["e0", "zzz"])}),
    "failures": st_.fixed_dictionaries({"consumer": st_.sampled_from(FUNCTIONS),
                                        "type": st_.sampled_from([k for _, k in KINDS])},
                                       optional={"error": st_.sampled_from(
                                           ["ValueError", "Sandbox.Timedout", "nope"])}),
    "graph": st_.fixed_dictionaries({"node": st_.sampled_from(
        [f"type:{k}" for _, k in KINDS] + ["consumer:billing-fn", "nope"])}, optional={
        "focus": st_.sampled_from([f"type:{k}" for _, k in KINDS] + [
            "consumer:billing-fn", "producer:shop", "team:nope", "edge:x>y", ""]),
        "hops": st_.sampled_from(["1", "2", "x"]), "whole": st_.just("1")}),
})


@pytest.fixture
def store(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    opened = open_store(store_url)
    monkeypatch.setenv("EVENTSCOPE_DB", opened.engine.url.render_as_string(hide_password=False))
    monkeypatch.delenv("EVENTSCOPE_ENVIRONMENTS", raising=False)
    yield opened
    opened.engine.dispose()



def use(store: Store, engines: EngineTracker, shape: StoreShape,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Write the shape and point the dashboard at it, with no data cached from the last one."""
    write(store, shape)
    if shape.catalog is None:
        monkeypatch.delenv("EVENTSCOPE_CATALOG", raising=False)
    else:
        monkeypatch.setenv("EVENTSCOPE_CATALOG", str(shape.catalog))
    st.cache_data.clear()
    st.cache_resource.clear()
    engines.dispose()


@SETTINGS
@given(shape=store_shapes(max_events=8, max_invocations=10),
       window=st_.sampled_from(list(WINDOWS)), links=DEEP_LINKS)
@example(shape=StoreShape(), window="all", links={})
@example(shape=no_cancellation(), window="1h", links={})
@example(shape=no_cancellation(), window="15m", links={"lifecycle": {"order": "ord-1"}})
@example(shape=unattributed_only(), window="all", links={})
def test_every_page_renders_on_any_store_shape(store: Store, engines: EngineTracker,
                                               shape: StoreShape, window: str,
                                               links: dict[str, dict[str, str]],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Each of the seven pages, in a drawn window and with drawn deep links, runs without
    an exception."""
    use(store, engines, shape, monkeypatch)
    for name in PAGES:
        query = {"window": window, **links.get(name, {})}
        at = page(name, **query)
        assert not at.exception, (name, query, [e.value for e in at.exception])


@SETTINGS
@given(shape=store_shapes(max_events=8, max_invocations=10),
       window=st_.sampled_from(list(WINDOWS)))
@example(shape=no_cancellation(), window="1h")
def test_overview_totals_are_the_rows_written_in_the_window(
        store: Store, engines: EngineTracker, shape: StoreShape, window: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The overview's event and invocation totals equal the rows written in the window (whole
    minutes: the rollups' resolution), in every window."""
    use(store, engines, shape, monkeypatch)
    at = page("overview", window=window)
    assert not at.exception, [e.value for e in at.exception]
    if not shape.events and not shape.invocations:
        assert any("empty" in i.value for i in at.info)
        return
    latest = max((e.time_ms for e in shape.events), default=None)
    chosen = window_for(window, latest)
    events = len(shape.events_in_minutes(chosen.since_ms, chosen.until_ms))
    calls = len(shape.invocations_in_minutes(chosen.since_ms, chosen.until_ms))
    labels = [link.label for link in at.get("page_link")]
    assert f"{events:,} events" in labels, labels
    assert f"of {calls:,} invocations" in labels, labels


def failing_in_three_ways() -> StoreShape:
    """Two events every attempt at failed (a ValueError twice, once as a timeout; a
    timeout typed Sandbox.Timedout), beside an untyped error: the error types by count
    (2, 1) are not in name order, and one is a timeout's only."""
    from eventscope.records import BusEvent, Invocation
    kind = KINDS[0]
    events = [BusEvent(id=f"e{n}", source=kind[0], detail_type=kind[1], time_ms=T0 - 60_000 * n,
                       detail="{}", size_bytes=300, version="1", correlation_key=f"ord-{n}")
              for n in (1, 2)]
    attempts = [("r1", "e1", "error", "ValueError"), ("r2", "e1", "timeout", "ValueError"),
                ("r3", "e2", "timeout", "Sandbox.Timedout"), ("r4", "e2", "error", None)]
    return StoreShape(events=events, invocations=[Invocation(
        request_id=request, consumer=FUNCTIONS[0], log_group=f"/aws/lambda/{FUNCTIONS[0]}",
        log_stream="2026/01/01/[$LATEST]0123abcd", start_ms=T0 - 50_000 + 1_000 * n,
        outcome=outcome, event_id=event, error_type=error, error_message=error and "bad",
        complete=True) for n, (request, event, outcome, error) in enumerate(attempts)])


SELECTIONS = st_.tuples(st_.sampled_from(["", *FUNCTIONS]),
                        st_.sampled_from(["", *(kind for _, kind in KINDS)]))


@settings(SETTINGS, max_examples=60)  # no page rendered: store writes and reads only
@given(shape=store_shapes(max_events=8, max_invocations=10), selection=SELECTIONS)
@example(shape=failing_in_three_ways(), selection=("", ""))
@example(shape=failing_in_three_ways(), selection=(FUNCTIONS[0], KINDS[0][1]))
def test_the_error_types_offered_hold_every_final_failures_last_one(
        store: Store, engines: EngineTracker, shape: StoreShape,
        selection: tuple[str, str]) -> None:
    """The failures page's error types (read from the invocation rollup, not from every
    final failure) hold the last error type of every final failure of the selection, most
    failed invocations first, and nothing that is not an error type of a failed one."""
    from eventscope.dashboard import triage
    from eventscope.findings import load, summaries
    write(store, shape)
    engines.dispose()
    consumer, detail_type = selection
    offered = triage.failed_error_types(load.load_call_counts(store.engine), consumer,
                                        detail_type)
    finals = summaries.final_failures(store.engine, None, consumers=[consumer] if consumer
                                      else [], detail_types=[detail_type] if detail_type else [])
    assert set(finals["last_error_type"].dropna()) <= set(offered)
    kinds = {e.id: e.detail_type for e in shape.events}
    failed = [i for i in shape.invocations if i.outcome != "ok" and i.error_type is not None
              and (not consumer or i.consumer == consumer)
              and (not detail_type or kinds.get(i.event_id) == detail_type)]
    counts = {t: sum(i.error_type == t for i in failed) for t in {i.error_type for i in failed}}
    assert offered == sorted(counts, key=lambda t: (-counts[t], t))
