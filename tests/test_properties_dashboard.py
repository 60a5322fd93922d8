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
from tests.store_shapes import (FUNCTIONS, KINDS, ORDERS, EngineTracker, StoreShape,
                                no_cancellation, store_shapes, unattributed_only, write)

SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
DEEP_LINKS = st_.fixed_dictionaries({  # query parameters pages read, per page
    "lifecycle": st_.fixed_dictionaries({"order": st_.sampled_from(
        [o for o in ORDERS if o] + ["e0", "zzz"])}),
    "failures": st_.fixed_dictionaries({"consumer": st_.sampled_from(FUNCTIONS),
                                        "type": st_.sampled_from([k for _, k in KINDS])}),
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
