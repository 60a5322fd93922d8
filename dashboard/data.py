"""The dashboard's one data module: the store engine, cached loaders, the page context.

Every page reads the store through here: `st.cache_resource` holds one opened store per URL,
`st.cache_data` (with a TTL) holds the frames, keyed by store URL, window and catalog path.
Each loader is a thin wrapper over the findings layer, the same functions the CLI calls
(`eventscope.findings.read`, `.summaries`, `.load`): this module holds caching, the page
context and the window's arguments, never SQL or analysis. Whole-window views read the
per-minute rollups (never every raw row); drill-downs (one order, a selection's final
failures and errors, payload samples) are indexed raw reads limited to the selection.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from eventscope.catalog.model import Catalog
from eventscope.errors import EventscopeError
from eventscope.findings import (duplicates as duplicates_module, load, payloads, read, summaries,
                                 triage, undocumented)
from eventscope.findings.check import Finding, Thresholds
from eventscope.findings.graph import graph_json
from eventscope.store import Store, open_store, resolve_url

from eventscope.dashboard.views import Window, bucket_ms_for

TTL_SECONDS = 30
ENV_DB = "EVENTSCOPE_DB"
ENV_CATALOG = "EVENTSCOPE_CATALOG"
ENV_ENVIRONMENTS = "EVENTSCOPE_ENVIRONMENTS"
CONTEXT_KEY = "eventscope_context"
log = logging.getLogger("eventscope.dashboard")


@dataclass(frozen=True)
class Context:
    """What the shared sidebar decided for this run: store, window, catalog, PII reveal."""

    url: str
    shown_url: str
    window_name: str
    window: Window
    catalog_path: str | None
    reveal_pii: bool


def context() -> Context:
    """The context the router set for this run."""
    found: Context = st.session_state[CONTEXT_KEY]
    return found


def environments() -> dict[str, str]:
    """Named stores (bus / environment -> URL): $EVENTSCOPE_DB as 'default', plus the JSON
    object in $EVENTSCOPE_ENVIRONMENTS (set by `eventscope dashboard --env NAME=URL`)."""
    named = {"default": resolve_url(os.environ.get(ENV_DB))}
    extra = os.environ.get(ENV_ENVIRONMENTS)
    if extra:
        try:
            parsed = json.loads(extra)
        except ValueError:
            parsed = {}
        named.update({str(k): resolve_url(str(v)) for k, v in parsed.items()
                      if isinstance(parsed, dict)})
    return named


def shown_url(url: str) -> str:
    """The URL without its password, for display."""
    return read.shown_url(url)


def catalog_path() -> str | None:
    return os.environ.get(ENV_CATALOG) or None


@st.cache_resource(show_spinner=False)
def store(url: str) -> Store:
    """The opened store behind a URL (an error when a SQLite file is missing)."""
    return open_store(url, must_exist=True)


def store_problem(url: str) -> str | None:
    """Why the store cannot be opened, or None."""
    try:
        store(url)
    except EventscopeError as error:
        return str(error)
    return None


@st.cache_resource(show_spinner=False)
def _catalog(path: str) -> tuple[Catalog | None, str | None]:
    try:
        return read.load_catalog_file(path), None
    except EventscopeError as error:
        return None, str(error)


def catalog(path: str | None) -> tuple[Catalog | None, str | None]:
    """(catalog, problem): (None, None) when no catalog is configured."""
    if not path:
        return None, None
    return _catalog(path)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def is_empty(url: str) -> bool:
    """Whether the store holds no event and no invocation (two one-row reads, not counts)."""
    return load.store_is_empty(_engine(url))


def _engine(url: str) -> Any:
    return store(url).engine


def _selection(consumer: str, detail_type: str) -> dict[str, Any]:
    return {"consumers": [consumer] if consumer else [],
            "detail_types": [detail_type] if detail_type else []}


# --- whole-window summaries, from the rollup tables (eventscope.findings.summaries) --------
# Each window's invocation counts and handling totals are read once, per time bucket (at most
# ~300 buckets over the window), and shared: the time series use the buckets, every other
# view their sum (`load.without_buckets`). Only the failure-rate table (p50/p95) also reads
# the invocation rollup's duration columns.

LATEST_CANCELLATIONS = 2_000
LATENCY_SAMPLE = 2_000  # latest invocations per function for the latency table
LATENCY_TOTAL = 20_000  # and about this many in all (fewer per function when there are many)
ERROR_INVOCATIONS = 200  # latest invocations of an error group read (messages grouped)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def series_bucket_ms(url: str, window: Window) -> int:
    """The time bucket of the window's series: whole minutes, at most ~300 buckets."""
    if window.since_ms is not None:
        return bucket_ms_for(window)
    return bucket_ms_for(window, earliest_event_ms(url), latest_event_ms(url))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def event_totals(url: str, window: Window) -> pd.DataFrame:
    """Per (source, detail-type, version) in the window: count, first/last, sizes."""
    return load.load_event_totals(_engine(url), window.since_ms, window.until_ms)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def event_series(url: str, window: Window) -> pd.DataFrame:
    """Event totals per time bucket x kind, with `bucket_minutes`."""
    bucket = series_bucket_ms(url, window)
    series = load.load_event_totals(_engine(url), window.since_ms, window.until_ms,
                                    bucket_ms=bucket)
    return series.assign(bucket_minutes=bucket // 60_000)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def _bucketed_counts(url: str, window: Window) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The window's invocation counts (no durations) and handling totals per series bucket."""
    bucket = series_bucket_ms(url, window)
    engine = _engine(url)
    return (load.load_call_counts(engine, window.since_ms, window.until_ms, bucket),
            load.load_handling_totals(engine, window.since_ms, window.until_ms, bucket))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def _counts(url: str, window: Window) -> tuple[pd.DataFrame, pd.DataFrame]:
    calls, handling = _bucketed_counts(url, window)
    return load.without_buckets(calls), load.without_buckets(handling)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def call_counts(url: str, window: Window, catalog_path: str | None,
                bucketed: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(invocation counts per function x kind x outcome x error type, handling totals per
    function x kind), `consumer` mapped to catalog consumers, over the window or per series
    bucket: the exact counts behind the overview's numbers and the failures time series."""
    calls, handling = (_bucketed_counts if bucketed else _counts)(url, window)
    named = catalog(catalog_path)[0]
    return summaries.with_consumers(calls, named), summaries.with_consumers(handling, named)


def before_and_now(window: Window) -> Window:
    """The window and the one of the same length just before it (all data stays all data):
    what a trend compares."""
    if window.since_ms is None or window.until_ms is None:
        return window
    return Window(2 * window.since_ms - window.until_ms, window.until_ms)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def trend_counts(url: str, window: Window, catalog_path: str | None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(invocation counts, event totals) per series bucket over the window and the window
    before it (`before_and_now`): what the overview's and the error groups' trends count."""
    both = before_and_now(window)
    return call_counts(url, both, catalog_path, bucketed=True)[0], event_series(url, both)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def handled(url: str, window: Window, catalog_path: str | None) -> pd.DataFrame:
    """Who handled which event kind in the window (consumer, function, kind, first and last
    start, invocations): the attempts-shaped stand-in of `summaries.handled_kinds`."""
    return summaries.handled_kinds(_engine(url), catalog(catalog_path)[0],
                                   calls=_counts(url, window)[0])


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def rates(url: str, window: Window, catalog_path: str | None, consumer: str = "",
          detail_type: str = "") -> pd.DataFrame:
    """`failure_rates` over the window (of one consumer / type when given), with p50/p95:
    the one read of the invocation rollup's duration columns."""
    return summaries.failure_rates(_engine(url), catalog(catalog_path)[0],
                                   calls=_duration_totals(url, window),
                                   handling=_counts(url, window)[1],
                                   **_selection(consumer, detail_type))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def _duration_totals(url: str, window: Window) -> pd.DataFrame:
    """The window's invocation totals with their duration columns (for p50/p95)."""
    return load.load_call_totals(_engine(url), window.since_ms, window.until_ms)


def _in_parallel(*jobs: tuple[Any, tuple[Any, ...]]) -> None:
    """Run cached loaders (function, args) at the same time, each on its own connection:
    SQLite releases the GIL while it scans, so independent scans overlap."""
    context = get_script_run_ctx()
    threads = [threading.Thread(target=loader, args=args) for loader, args in jobs]
    for thread in threads:
        add_script_run_ctx(thread, context)
        thread.start()
    for thread in threads:
        thread.join()


def prefetch_failures(url: str, window: Window) -> None:
    """The failures page's two scans of the invocation rollup (with durations; bucketed
    counts), read at the same time."""
    _in_parallel((_duration_totals, (url, window)), (_bucketed_counts, (url, window)))


def prefetch_missing(url: str, window: Window, catalog_path: str | None) -> None:
    """The rollup counts and the missing subscriptions' order reads, at the same time."""
    _in_parallel((_bucketed_counts, (url, window)),
                 (missing_subscriptions, (url, window, catalog_path)))


def prefetch_overview(url: str, window: Window, catalog_path: str | None) -> None:
    """The overview's reads: the window's rollup counts first (their read refreshes the
    rollups: two refreshes at once on PostgreSQL can count a dirty minute twice), then its
    check and the counts behind the trends (the window and the one before) at the same
    time."""
    _bucketed_counts(url, window)
    _in_parallel((check_findings, (url, window, catalog_path)),
                 (_bucketed_counts, (url, before_and_now(window))))


LATEST_FINAL_FAILURES = 100  # shown at first; the CSV reads them all when it is asked for


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def final_failures(url: str, window: Window, catalog_path: str | None, consumer: str = "",
                   detail_type: str = "", latest: int | None = None) -> pd.DataFrame:
    """Events every attempt failed on (drill-down reads of the minutes the rollup names);
    with `latest`, the first `latest` of them, the latest last attempts, in a read bounded
    whatever the store's size (as `eventscope failures` shows them)."""
    return summaries.final_failures(_engine(url), catalog(catalog_path)[0], window.since_ms,
                                    window.until_ms, calls=_counts(url, window)[0],
                                    latest=latest, **_selection(consumer, detail_type))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def top_errors(url: str, window: Window, catalog_path: str | None, consumer: str = "",
               detail_type: str = "") -> pd.DataFrame:
    """The most frequent errors, with a first message and an example event each."""
    return summaries.top_errors(_engine(url), catalog(catalog_path)[0], window.since_ms,
                                window.until_ms, calls=_counts(url, window)[0],
                                **_selection(consumer, detail_type))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def error_invocations(url: str, window: Window, catalog_path: str | None, consumer: str,
                      detail_type: str | None, error_type: str) -> pd.DataFrame:
    """One error group's latest `ERROR_INVOCATIONS` invocations in the window, newest first,
    with the log group and stream of their log lines (index reads)."""
    return summaries.error_invocations(_engine(url), catalog(catalog_path)[0], consumer,
                                       detail_type, error_type, window.since_ms,
                                       window.until_ms, ERROR_INVOCATIONS,
                                       calls=_counts(url, window)[0])


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def graph(url: str, window: Window, catalog_path: str | None) -> dict[str, Any]:
    """The window's producer -> type -> consumer graph as `graph_json`, the bus rules
    (`read.bus_rules`) matched against its types, as `eventscope graph --json` draws it."""
    return graph_json(summaries.build_graph(
        _engine(url), catalog(catalog_path)[0], since_ms=window.since_ms,
        until_ms=window.until_ms, totals=(event_totals(url, window), *_counts(url, window)),
        rules=read.bus_rules(_engine(url), catalog(catalog_path)[0])))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def bus_subscriptions(url: str, catalog_path: str | None) -> pd.DataFrame | None:
    """The latest bus-rules snapshot (`read.bus_subscriptions`: consumers named as in the
    catalog), None when rules were never collected: the graph's `subscribed` edges and the
    lifecycle's never-handled consumers, as the CLI reads them."""
    return read.bus_subscriptions(_engine(url), catalog(catalog_path)[0])


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def missing_subscriptions(url: str, window: Window, catalog_path: str | None
                          ) -> list[dict[str, Any]]:
    """`read.missing_subscriptions`, as `eventscope subscriptions` reports them: declared gaps
    (catalog and the latest bus-rules snapshot) merged with the orders, among the window's
    latest `LATEST_CANCELLATIONS` cancellations, where a consumer saw earlier events only."""
    return read.missing_subscriptions(_engine(url), catalog(catalog_path)[0], window.since_ms,
                                      window.until_ms, LATEST_CANCELLATIONS)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def check_findings(url: str, window: Window, catalog_path: str | None
                   ) -> tuple[list[Finding], list[dict[str, str]]]:
    """`eventscope check`'s findings over the window, with the default thresholds
    (`triage.store_check`, the CLI's too), and the kinds skipped with their reason; latency
    graded on the `latency` loader's sample, missing subscriptions among the window's latest
    `LATEST_CANCELLATIONS` cancellations (as the Subscriptions page)."""
    return triage.store_check(_engine(url), catalog(catalog_path)[0],
                              bus_subscriptions(url, catalog_path), contract_results(url),
                              latency(url, window, catalog_path), Thresholds(), date.today(),
                              window.since_ms, window.until_ms, LATEST_CANCELLATIONS)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def latency(url: str, window: Window, catalog_path: str | None) -> pd.DataFrame:
    """Event time -> first invocation / first success per (event type, consumer) pair, over
    each function's latest `LATENCY_SAMPLE` invocations in the window, `LATENCY_TOTAL` in all
    at most (index reads)."""
    return read.latency(_engine(url), catalog(catalog_path)[0], window.since_ms,
                        window.until_ms, per_function=LATENCY_SAMPLE, total=LATENCY_TOTAL)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def duplicates(url: str, catalog_path: str | None) -> list[dict[str, Any]]:
    """Events delivered or processed more than once, per consumer (whole store)."""
    return summaries.duplicates(_engine(url), catalog(catalog_path)[0])


# --- analyses of samples, cached (warm reruns skip them) --------------------------------

RESEND_SAMPLE = 200


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def producer_resends(url: str) -> list[dict[str, Any]]:
    """Producer re-sends among the latest `RESEND_SAMPLE` events of each type."""
    return duplicates_module.producer_resends(samples(url, RESEND_SAMPLE))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def pii_fields(url: str, window: Window, catalog_path: str | None) -> pd.DataFrame:
    """PII-looking and declared-PII fields of the sampled payloads and who receives them."""
    return payloads.pii_fields(samples(url), handled(url, window, catalog_path),
                               catalog(catalog_path)[0])


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def schema_drift(url: str, catalog_path: str | None) -> list[dict[str, Any]]:
    """Catalogued versions whose sampled payloads fail their schema (needs a catalog)."""
    named = catalog(catalog_path)[0]
    if named is None:
        return []
    return undocumented.schema_drift(undocumented.validate_samples(samples(url), named))


# --- drill-downs and samples: indexed reads limited to the selection -----------------------

@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def samples(url: str, per_type: int = 20) -> pd.DataFrame:
    return load.load_samples(_engine(url), per_type)


def stored_form(url: str, query: str) -> str:
    """The typed query as the store holds it (`read.stored_form`); not cached, so the typed
    value is kept nowhere."""
    return read.stored_form(_engine(url), query) if query else query


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def dead_letters(url: str) -> list[dict[str, Any]]:
    """The tap's dead-letter queues, latest sample each (`read.dead_letters`)."""
    return read.dead_letters(_engine(url))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def correlation_keys(url: str, query: str) -> list[str]:
    return load.find_correlation_keys(_engine(url), query)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def lifecycle(url: str, key: str, catalog_path: str | None) -> dict[str, Any]:
    """One order's lifecycle with the bus rules' routes (`read.lifecycle`, the CLI's too)."""
    return read.lifecycle(_engine(url), key, catalog(catalog_path)[0])


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def latest_order_of_type(url: str, window: Window, detail_type: str) -> str | None:
    """The order (or event id) of the window's newest event of a type (an index read): the
    graph's link to a lifecycle."""
    return load.latest_order_of_type(_engine(url), detail_type, window.since_ms,
                                     window.until_ms)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def recent_events(url: str, window: Window, limit: int = 500) -> pd.DataFrame:
    """The window's latest `limit` events (index read on event time, newest first)."""
    return load.load_recent_events(_engine(url), window.since_ms, window.until_ms, limit)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def latest_event_ms(url: str) -> int | None:
    """The newest event time in the store (the end of every dashboard window)."""
    return load.latest_event_ms(_engine(url))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def retention(url: str, since_ms: int | None) -> tuple[str | None, list[str]]:
    """What the store keeps since when (None: never pruned), and why a window starting at
    `since_ms` shows less than it asks for (`read.retention_notes`: raw rows and rollups)."""
    engine = _engine(url)
    return read.retention_summary(engine), read.retention_notes(
        engine, since_ms, read.RAW + read.rollup_needs(since_ms))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def earliest_event_ms(url: str) -> int | None:
    """The oldest event time in the store (index read)."""
    return load.earliest_event_ms(_engine(url))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def event_details(url: str, ids: tuple[str, ...]) -> dict[str, str]:
    """{event id: detail JSON} for some events, by primary key."""
    return load.load_event_details(_engine(url), ids)


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def contract_results(url: str) -> pd.DataFrame | None:
    """The newest stored result of every contract check (what `check` grades), or None
    when no contract run was ever stored."""
    return load.load_contract_results(store(url))
