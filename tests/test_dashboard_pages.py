"""Every dashboard page under Streamlit's AppTest: empty store, seeded store, deep links, and
the numbers shown equal the findings functions' results on the same store."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from eventscope.catalog.loader import load_catalog
from eventscope.findings import load, summaries
from eventscope.findings.failures import failure_rates, final_failures
from eventscope.findings.lifecycle import cancellation_types
from eventscope.findings.subscriptions import (missing_subscriptions, observed_missing,
                                               static_missing)
from eventscope.findings.undocumented import undocumented_events
from eventscope.store import open_store
from tests.dashboard_harness import PAGES, page, seed
from eventscope.dashboard.triage import percent


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = seed(f"sqlite:///{tmp_path / 'seeded.db'}")
    monkeypatch.setenv("EVENTSCOPE_DB", url)
    monkeypatch.delenv("EVENTSCOPE_CATALOG", raising=False)
    return url


CATALOG = Path(__file__).parent / "data" / "dashboard" / "catalog"


@pytest.fixture
def with_catalog(seeded: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The seeded store plus the scenario's catalog (YAML, loaded by the real loader)."""
    monkeypatch.setenv("EVENTSCOPE_CATALOG", str(CATALOG))
    return seeded


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


@pytest.mark.parametrize("name", PAGES)
def test_every_page_on_an_empty_store_says_what_to_run(name: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty store shows an info box and the ingest command, and no exception."""
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(url).engine.dispose()
    monkeypatch.setenv("EVENTSCOPE_DB", url)
    at = page(name)
    assert not at.exception
    assert any("empty" in i.value for i in at.info)
    assert any("eventscope ingest" in c.value for c in at.code)


def test_a_missing_store_file_is_an_error_state_not_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mistyped SQLite path says there is no store there."""
    monkeypatch.setenv("EVENTSCOPE_DB", f"sqlite:///{tmp_path / 'nope.db'}")
    at = page("overview")
    assert not at.exception
    assert any("no store at" in c.value for c in at.code)


@pytest.mark.parametrize("name", PAGES)
def test_every_page_renders_on_a_seeded_store(name: str, seeded: str) -> None:
    """Each page renders the scenario without an exception and without an empty-store box."""
    at = page(name)
    assert not at.exception
    assert not any("empty" in i.value for i in at.info)


@pytest.mark.parametrize("name", PAGES)
def test_every_page_renders_with_a_catalog(name: str, with_catalog: str) -> None:
    """With a catalog configured every page renders, none shows the no-catalog state."""
    at = page(name)
    assert not at.exception
    assert not any("No catalog configured" in i.value for i in at.info)
    assert not at.warning  # the catalog loaded without problems


def test_overview_numbers_equal_the_findings_on_both_engines(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Events, failure rate, final failures, consumers and missing subscriptions shown equal
    the rollup-backed summaries functions, and those equal the raw-row findings here."""
    seed(store_url)
    monkeypatch.setenv("EVENTSCOPE_DB", store_url)
    monkeypatch.delenv("EVENTSCOPE_CATALOG", raising=False)
    engine = open_store(store_url).engine
    rates = summaries.failure_rates(engine)
    missing = missing_subscriptions([], summaries.observed_missing_subscriptions(engine))
    consumers = summaries.handled_kinds(engine)["consumer"].nunique()
    events = int(load.load_event_totals(engine)["count"].sum())
    at = page("overview")
    shown = metrics(at)
    assert shown["Failure rate"] == percent(rates["failed"].sum() / rates["invocations"].sum())
    assert shown["Final failures"] == str(int(rates["final_failures"].sum()))
    assert shown["Consumers"] == str(consumers)
    assert shown["Missing subscriptions"] == str(len(missing))
    assert shown["Undocumented types"] == "—"
    assert any(link.label == f"{events:,} events" for link in at.get("page_link"))
    raw_events, raw_attempts = load.load_events(engine), load.load_attempts(engine)
    raw_rates = failure_rates(raw_attempts)
    assert (len(raw_events), raw_attempts["consumer"].nunique()) == (events, consumers)
    assert (raw_rates["failed"].sum(), raw_rates["final_failures"].sum()) == (
        rates["failed"].sum(), rates["final_failures"].sum())
    assert missing == missing_subscriptions([], observed_missing(
        raw_events, raw_attempts, cancellation_types(None)))


def test_overview_counts_undocumented_types_and_static_gaps_with_a_catalog(
        with_catalog: str) -> None:
    """With the catalog: ProductViewed and OrderPaid v2 are undocumented; Warranty misses the
    cancellation both by declaration and in the data (the summaries functions agree)."""
    catalog = load_catalog(CATALOG)
    engine = open_store(with_catalog).engine
    missing = missing_subscriptions(static_missing(catalog),
                                    summaries.observed_missing_subscriptions(engine, catalog))
    undocumented = undocumented_events(load.load_type_summary_rollup(engine), catalog,
                                       summaries.handled_kinds(engine, catalog),
                                       load.load_samples(engine))
    shown = metrics(page("overview"))
    assert shown["Undocumented types"] == str(len(undocumented)) == "2"
    assert shown["Missing subscriptions"] == str(len(missing))
    assert any(m["evidence"] == "declarations_and_data" for m in missing)


def test_failures_deep_link_selects_consumer_and_type(seeded: str) -> None:
    """?consumer=billing-fn&type=OrderPaid preselects both and filters the rates table."""
    at = page("failures", consumer="billing-fn", type="OrderPaid")
    assert not at.exception
    assert at.selectbox(key="consumer").value == "billing-fn"
    assert at.selectbox(key="type").value == "OrderPaid"
    rates = at.dataframe[0].value
    assert set(rates["consumer"]) == {"billing-fn"} and set(rates["detail_type"]) == {"OrderPaid"}


def test_failures_lists_the_final_failures_findings_computes(seeded: str) -> None:
    """The final-failures table holds exactly the events every attempt failed on."""
    expected = summaries.final_failures(open_store(seeded).engine)
    assert list(expected["event_id"]) == list(
        final_failures(load.load_attempts(open_store(seeded).engine))["event_id"])
    at = page("failures")
    shown = next(d.value for d in at.dataframe if "last_error_type" in d.value.columns)
    assert list(shown["event_id"]) == list(expected["event_id"])
    assert list(shown["lifecycle"]) == [f"lifecycle?order={e}" for e in expected["event_id"]]


@pytest.mark.parametrize("query", [{"order": "o-1"}, {"order": "e2"}, {"event": "e3"}])
def test_lifecycle_deep_link_opens_the_order(seeded: str, query: dict[str, str]) -> None:
    """An order id or an event id in the URL opens that order's three events."""
    at = page("lifecycle", **query)
    assert not at.exception
    assert at.text[0].value == "Order o-1: 3 events"
    assert list(at.dataframe[0].value["event_id"]) == ["e1", "e2", "e3"]
    assert at.get("plotly_chart")


def test_lifecycle_masks_pii_in_payloads_until_revealed(seeded: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """The e-mail in OrderPlaced's payload is redacted; the logged reveal shows it."""
    at = page("lifecycle", order="o-1")
    assert "ann@example.com" not in str(at.json[0].value)
    assert "[redacted]" in str(at.json[0].value)
    with caplog.at_level(logging.WARNING, logger="eventscope.dashboard"):
        at.toggle(key="reveal").set_value(True).run()
    assert "ann@example.com" in str(at.json[0].value)
    assert any("PII reveal turned on" in r.getMessage() for r in caplog.records)


def test_lifecycle_unknown_id_says_so(seeded: str) -> None:
    at = page("lifecycle", order="zzz-nothing")
    assert any("No order or event matches" in i.value for i in at.info)


def test_graph_deep_link_opens_node_details(seeded: str) -> None:
    """?node=type:OrderPaid preselects the node and lists its producer and consumers."""
    at = page("graph", node="type:OrderPaid")
    assert not at.exception
    assert at.selectbox(key="node").value == "type:OrderPaid"
    edges = at.dataframe[0].value
    assert set(edges["neighbour"]) == {"producer:payments", "consumer:billing-fn",
                                       "consumer:warranty-fn"}


def test_subscriptions_coverage_marks_warranty_missing_cancellation(with_catalog: str) -> None:
    """The coverage matrix and findings table show Warranty missing OrderCancelled."""
    at = page("subscriptions")
    table = at.dataframe[0].value
    row = table[(table["consumer"] == "Warranty") & (table["detail_type"] == "OrderCancelled")]
    assert row["evidence"].iloc[0] == "declarations_and_data"
    assert "o-1" in row["example_orders"].iloc[0]


def test_undocumented_without_catalog_shows_the_no_catalog_state(seeded: str) -> None:
    at = page("undocumented")
    assert any("No catalog configured" in i.value for i in at.info)


def test_window_query_parameter_sets_the_window(seeded: str) -> None:
    """?window=15m selects the 15-minute window: the four events over 15 minutes."""
    at = page("overview", window="15m")
    assert at.selectbox(key="window").value == "15m"
    assert metrics(at)["Events / min"] == f"{round(4 / 15, 2):,}"


def test_failures_shows_latency_per_event_type_and_consumer(seeded: str) -> None:
    """The latency table is `read.latency` of the window (the CLI's function): one row per
    (event type, consumer) with p50 / p95 to the first invocation and the first success."""
    from eventscope.findings import read
    from eventscope.dashboard.views import LATENCY_SHOWN
    from eventscope.dashboard import data
    expected = read.latency(open_store(seeded).engine, None, per_function=data.LATENCY_SAMPLE,
                            total=data.LATENCY_TOTAL)
    at = page("failures")
    assert not at.exception
    shown = next(d.value for d in at.dataframe if "first_p95_ms" in d.value.columns)
    assert list(shown.columns) == LATENCY_SHOWN
    assert list(zip(shown["detail_type"], shown["consumer"], shown["first_p95_ms"])) == list(
        zip(expected["detail_type"], expected["consumer"], expected["first_p95_ms"]))
    assert ("OrderPaid", "warranty-fn") in set(zip(shown["detail_type"], shown["consumer"]))


def test_contract_results_are_the_latest_per_check_as_check_grades_them(seeded: str) -> None:
    """A check that failed and then passed counts as passing: the page and the overview show
    the newest result of each check with its first violation as the reason."""
    store = open_store(seeded)
    row = {"consumer": "Warranty", "detail_type": "OrderPaid", "version": "1",
           "check_kind": "schema", "catalog_revision": "r1", "summary": "{}",
           "origin": "eventscope"}
    store.write_contract_results([
        {**row, "passed": False, "checked_ms": 1,
         "violations": '[{"path": "$.amount", "message": "amount is required"}]'},
        {**row, "passed": True, "checked_ms": 2, "violations": "[]"},
        {**row, "check_kind": "examples", "passed": False, "checked_ms": 2,
         "violations": '[{"path": "$", "message": "example 1 breaks the contract"}]'}])
    assert metrics(page("overview"))["Contract failures"] == "1"
    shown = page("contracts").dataframe[0].value
    assert sorted(zip(shown["check_kind"], shown["status"], shown["reason"])) == [
        ("examples", "fail", "example 1 breaks the contract"), ("schema", "pass", "")]


def test_a_contract_check_that_saw_nothing_shows_as_not_checked_not_as_passed(seeded: str) -> None:
    """A live check over no event is stored as passed (it is no failure of the gate), but the
    page says "not checked" for it and counts it apart from the passes."""
    store = open_store(seeded)
    row = {"consumer": "Warranty", "detail_type": "OrderPaid", "version": "1",
           "catalog_revision": "r1", "origin": "eventscope", "violations": "[]",
           "checked_ms": 3, "passed": True}
    store.write_contract_results([
        {**row, "check_kind": "live", "summary": '{"checked": 0, "failing": 0}'},
        {**row, "check_kind": "examples", "summary": '{"checked": 2}'}])
    at = page("contracts")
    shown = at.dataframe[0].value
    assert dict(zip(shown["check_kind"], shown["status"])) == {"live": "not checked",
                                                                "examples": "pass"}
    assert "1 passed, 0 failed, 1 not checked" in [t.value for t in at.text]
