"""Overview, Failures and Contracts under AppTest on a demo-shaped store (the demo's company,
`eventscope demo --no-aws`, ingested): the planted problems each appear on the overview with
their team, the overview agrees with `eventscope check`, failures filter by URL and error
type, contracts total and filter by status; plain reasons on stores without logs, without
a catalog, with nothing wrong; numbers formatted for people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from click.testing import CliRunner

from eventscope.cli import main
from eventscope.dashboard import figures, triage
from eventscope.records import BusEvent, Invocation
from eventscope.simulator import DEMO_CATALOG
from eventscope.store import open_store
from tests.dashboard_harness import page


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo company's first 3,000 events and their consumers' logs, ingested."""
    out = tmp_path_factory.mktemp("demo")
    runner = CliRunner()
    made = runner.invoke(main, ["demo", "--no-aws", "--out", str(out), "--events", "3000",
                                "--json"])
    assert made.exit_code == 0, made.output
    written = json.loads(made.stdout)
    url = f"sqlite:///{out / 'demo.db'}"
    ingested = runner.invoke(main, ["ingest", str(out / written["events_path"]),
                                    str(out / written["logs_path"]), "--db", url])
    assert ingested.exit_code == 0, ingested.output
    return url


@pytest.fixture
def demo(demo_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("EVENTSCOPE_DB", demo_url)
    monkeypatch.setenv("EVENTSCOPE_CATALOG", str(DEMO_CATALOG))
    return demo_url


def findings_shown(at: Any) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "explain" in d.value.columns)


def tiles(at: Any) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_every_planted_problem_of_the_demo_is_on_the_overview(demo: str) -> None:
    """Failing invoice-generator, warranty missing OrderCancelled, the undocumented type,
    fraud-check's duplicates, the deprecated OrderPlaced and PII: each a ranked finding with
    its owner team and channel and a link to the page that explains it."""
    at = page("overview")
    assert not at.exception
    shown = findings_shown(at)
    rows = list(zip(shown["finding"], shown["reason"], shown["team"], shown["explain"]))

    def one(finding: str, words: str) -> tuple[str, str, str, str]:
        return next(r for r in rows if r[0] == finding and words in r[1])

    assert one("Failing consumers", "invoice-generator failed")[2:] == (
        "finance", "failures?consumer=invoice-generator&type=OrderPaid")
    assert one("Missing subscriptions", "warranty-handler does not handle OrderCancelled")[2:] \
        == ("warranty", "subscriptions?consumer=warranty-handler&type=OrderCancelled")
    assert one("Undocumented types", "OrderPriorityChanged")[3] == \
        "undocumented?type=OrderPriorityChanged"
    assert one("Duplicates", "fraud-check processed")[2] == "risk"
    assert one("Deprecated in use", "OrderPlaced")[3] == \
        "contracts?view=deprecations&type=OrderPlaced"
    assert one("PII exposure", "customerEmail")[3] == "contracts?view=pii&type=OrderPlaced"
    assert set(shown["channel"]) >= {"#team-finance", "#team-warranty"}
    assert list(shown["severity"]) == sorted(shown["severity"], key=lambda s: (
        "error" not in s, "warning" not in s))  # most severe first
    assert any("errors" in e.value for e in at.error)  # the banner says it


def test_overview_tiles_cover_every_kind_with_state_and_people_numbers(demo: str) -> None:
    at = page("overview")
    shown = tiles(at)
    for name in triage_names():
        assert name in shown, name
    assert shown["Contract failures"] == "—"  # no contract run stored: not checked
    assert "no contract results available" in [c.value for c in at.caption]
    assert shown["Failure rate"].endswith(" %")


def test_a_tile_is_coloured_by_its_state_with_a_caption_that_says_why() -> None:
    bad = triage.tile({"name": "Final failures", "count": 12_345, "state": "bad",
                       "unit": "events failed every attempt", "reason": None})
    assert (bad["value"], bad["badge"], bad["colour"], bad["caption"]) == (
        "12.3k", "problem", "red", "events failed every attempt")
    skipped = triage.tile({"name": "Schema drift", "count": 0, "state": "skipped",
                           "unit": "versions", "reason": "no catalog given (--catalog PATH)"})
    assert (skipped["value"], skipped["colour"], skipped["caption"]) == (
        "—", "gray", "no catalog given (--catalog PATH)")
    assert triage.tile({"name": "x", "count": 0, "state": "ok", "unit": "u",
                        "reason": None})["colour"] == "green"


def triage_names() -> list[str]:
    from eventscope.findings.triage import KIND_NAMES
    return list(KIND_NAMES.values())


def test_overview_and_check_agree_on_the_demo(demo: str) -> None:
    """`eventscope check --json` over the store and the overview over all data: the same
    findings, in the same order, with the same severities."""
    result = CliRunner().invoke(main, ["check", "--db", demo, "--catalog", str(DEMO_CATALOG),
                                       "--json"])
    assert result.exit_code == 1, result.output  # errors found
    found = orjson.loads(result.stdout)["findings"]
    shown = findings_shown(page("overview"))
    assert list(shown["reason"]) == [f["summary"] for f in found]
    assert [s.split()[-1] for s in shown["severity"]] == [
        {"info": "note"}.get(f["severity"], f["severity"]) for f in found]


def test_overview_trends_compare_the_window_with_the_one_before(demo: str) -> None:
    """In the last hour, each time-based finding counts its events or failures now and in
    the hour before, with a sparkline over both hours."""
    at = page("overview", window="1h")
    assert not at.exception
    shown = findings_shown(at)
    timed = shown[shown["now"] != "—"]
    assert len(timed) and all(len(s) == 48 for s in timed["trend"])
    assert all(b != "—" for b in timed["before"])
    assert all(link.startswith(link.split("?")[0] + "?window=1h") for link in shown["explain"])


def test_overview_without_a_catalog_says_what_is_not_checked(
        demo_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTSCOPE_DB", demo_url)
    monkeypatch.delenv("EVENTSCOPE_CATALOG", raising=False)
    at = page("overview")
    assert not at.exception
    assert any("No catalog configured" in i.value for i in at.info)
    assert tiles(at)["Undocumented types"] == "—"
    assert set(findings_shown(at)["team"]) == {"—"}


def _store(tmp_path: Path, calls: bool) -> str:
    """Three orders created a minute apart, each handled once by billing-fn when `calls`."""
    url = f"sqlite:///{tmp_path / 'small.db'}"
    store = open_store(url)
    events = [BusEvent(id=f"e-{n}", source="com.shop.orders", detail_type="OrderCreated",
                       time_ms=1_714_550_400_000 + n * 60_000, detail=f'{{"orderId": "o-{n}"}}',
                       size_bytes=20, version="1", correlation_key=f"o-{n}") for n in range(3)]
    invocations = [Invocation(f"r-{e.id}", "billing-fn", "/aws/lambda/billing-fn", "s",
                              e.time_ms + 100, "ok", e.id, duration_ms=5.0, complete=True)
                   for e in events] if calls else []
    store.write_batch(events, invocations)
    store.engine.dispose()
    return url


def test_overview_on_a_store_without_logs_says_failures_are_not_graded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTSCOPE_DB", _store(tmp_path, calls=False))
    monkeypatch.delenv("EVENTSCOPE_CATALOG", raising=False)
    at = page("overview")
    assert not at.exception
    assert any("No consumer invocations" in i.value for i in at.info)
    assert tiles(at)["Failing consumers"] == "—"
    assert "no consumer logs in this window" in [c.value for c in at.caption]


def test_overview_on_a_healthy_store_says_nothing_is_wrong(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTSCOPE_DB", _store(tmp_path, calls=True))
    monkeypatch.delenv("EVENTSCOPE_CATALOG", raising=False)
    at = page("overview")
    assert not at.exception
    assert [s.value for s in at.success][0].startswith("Nothing wrong in this window")
    assert "No finding in this window." in [c.value for c in at.caption]


@pytest.fixture
def few_final_failures_shown(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The failures page shows 5 final failures at first, not 100 (caches cleared before
    and after, so no other test sees tables bounded so), and every CSV the script offers
    is kept by file name, its data as the page passed it (for a bounded table: a callable
    Streamlit runs when the button is clicked)."""
    import streamlit as st

    from eventscope.dashboard import data
    monkeypatch.setattr(data, "LATEST_FINAL_FAILURES", 5)
    offered: dict[str, Any] = {}
    button = st.download_button

    def keeping(label: str, contents: Any, *args: Any, **kwargs: Any) -> Any:
        offered[kwargs["file_name"]] = contents
        return button(label, contents, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", keeping)
    st.cache_data.clear()
    yield offered
    st.cache_data.clear()


def test_failures_shows_the_latest_final_failures_and_its_csv_holds_every_one(
        demo: str, few_final_failures_shown: dict[str, Any]) -> None:
    """With no error type chosen, the final-failures table holds the ones last tried latest
    (a bounded read), says so, and its CSV -- made on click, outside the script's run --
    holds every final failure the findings compute, in the same order, its order links
    carrying the page's window as the table's do."""
    import io

    from eventscope.dashboard import data
    from eventscope.findings import summaries
    every = summaries.final_failures(open_store(demo).engine,
                                     data.catalog(str(DEMO_CATALOG))[0])
    assert len(every) > 5  # else nothing was bounded
    at = page("failures", window="30d")  # the demo's days, carried by every order link
    assert not at.exception
    finals = next(d.value for d in at.dataframe if "last_error_type" in d.value.columns)
    assert list(finals["event_id"]) == list(every["event_id"][:5])
    assert any(c.value.startswith("The 5 whose last attempt is the latest") for c in at.caption)
    made = few_final_failures_shown["final-failures.csv"]
    assert callable(made)
    rows = pd.read_csv(io.BytesIO(made()))
    assert list(rows["event_id"]) == list(every["event_id"])
    assert list(rows["lifecycle"][:5]) == list(finals["lifecycle"])  # the page's window
    assert all("window=30d" in link for link in rows["lifecycle"])
    assert set(every["last_error_type"].dropna()) <= set(at.selectbox(key="final-error").options)


def test_failures_filters_final_failures_by_error_type_from_the_url(demo: str) -> None:
    """?error=KeyError keeps the final failures whose last error is a KeyError (the demo's
    broken invoice-generator) and keeps the choice in a keyed select."""
    at = page("failures", error="KeyError")
    assert not at.exception
    assert at.selectbox(key="final-error").value == "KeyError"
    finals = next(d.value for d in at.dataframe if "last_error_type" in d.value.columns)
    assert len(finals) and set(finals["last_error_type"]) == {"KeyError"}
    assert set(finals["consumer"]) == {"invoice-generator"}


def test_failures_shows_rates_as_percentages_key_columns_first(demo: str) -> None:
    at = page("failures", consumer="invoice-generator", type="OrderPaid")
    rates = next(d.value for d in at.dataframe if "rate" in d.value.columns)
    assert list(rates.columns[:7]) == ["consumer", "team", "detail_type", "version",
                                       "invocations", "failed", "rate"]
    assert all(r.endswith(" %") for r in rates["rate"])
    assert set(rates["team"]) == {"finance"}  # invoice-generator's team in the demo catalog


def test_failures_error_groups_lead_to_invocations_log_streams_and_the_order(
        demo: str) -> None:
    """invoice-generator's KeyError group: count, first and last seen, trend; its latest
    invocations name their log group and stream, each links to its event's lifecycle."""
    at = page("failures", consumer="invoice-generator", type="OrderPaid")
    groups = next(d.value for d in at.dataframe if "first_seen" in d.value.columns)
    top = groups.iloc[0]
    assert (top["error_type"], top["consumer"]) == ("KeyError", "invoice-generator")
    assert top["first_seen"].endswith("ago") and top["lifecycle"].startswith("lifecycle?")
    messages = next(d.value for d in at.dataframe if "fingerprint" in d.value.columns)
    assert messages["fingerprint"][0] == "'totalAmount'"  # the KeyError's message
    calls = next(d.value for d in at.dataframe if "log_stream" in d.value.columns)
    assert 0 < len(calls) <= 20
    assert set(calls["log_group"]) == {"/aws/lambda/invoice-generator"}
    assert all(str(link).startswith("lifecycle?order=") for link in calls["lifecycle"])
    assert any("@requestId" in c.value for c in at.code)


def test_contracts_totals_and_status_filter(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    url = _store(tmp_path, calls=True)
    row = {"consumer": "Warranty", "detail_type": "OrderPaid", "version": "1",
           "catalog_revision": "r1", "origin": "eventscope", "checked_ms": 3,
           "summary": "{}"}
    open_store(url).write_contract_results([
        {**row, "check_kind": "schema", "passed": False,
         "violations": '[{"path": "$.amount", "message": "amount is required"}]'},
        {**row, "check_kind": "examples", "passed": True, "violations": "[]"},
        {**row, "check_kind": "live", "passed": True, "violations": "[]",
         "summary": '{"checked": 0, "failing": 0}'}])
    monkeypatch.setenv("EVENTSCOPE_DB", url)
    at = page("contracts", status="fail")
    assert not at.exception
    assert tiles(at) == {"Failed": "1", "Not checked": "1", "Passed": "1"}
    shown = at.dataframe[0].value
    assert list(shown["status"]) == ["fail"] and list(shown["reason"]) == ["amount is required"]
    assert "checked_ms" not in shown and shown["checked"][0].endswith("ago")


@pytest.mark.parametrize(("value", "text"), [(0, "0"), (987, "987"), (1234, "1.2k"),
                                             (12_345, "12.3k"), (4_500_000, "4.5M"),
                                             (None, "—")])
def test_compact_numbers_fit_a_tile(value: Any, text: str) -> None:
    assert triage.compact(value) == text


def test_people_numbers() -> None:
    assert triage.count(1234567) == "1,234,567"
    assert triage.percent(0.6625047294740825) == "66.3 %"
    assert triage.ago(1_000_000 - 3 * 60_000, 1_000_000) == "3 min ago"
    assert triage.ago(1_000_000 - 5_000, 1_000_000) == "just now"
    assert triage.ago(0, 3 * 86_400_000) == "3 d ago"
    assert triage.when(0) == "1970-01-01 00:00:00 UTC"


def test_a_clicked_heatmap_cell_names_its_consumer_and_type() -> None:
    """The heatmap's click layer carries (consumer, type) of each handled cell, raw (not the
    escaped label), and a plotly selection event on it gives that pair back."""
    matrix = pd.DataFrame({"<b>T</b>": [0.5, None]}, index=["c-1", "c-2"])
    fig = figures.failure_heatmap(matrix)
    layer = fig.data[1]
    assert [list(c[:2]) for c in layer.customdata] == [["c-1", "<b>T</b>"]]
    event = {"selection": {"points": [{"x": "&lt;b&gt;T&lt;/b&gt;", "y": "c-1",
                                       "customdata": list(layer.customdata[0])}]}}
    assert triage.clicked_cell(event) == ("c-1", "<b>T</b>")
    assert triage.clicked_cell({"selection": {"points": []}}) is None


def test_duplicates_over_a_window_count_the_pairs_first_tried_in_it(demo_url: str) -> None:
    """fraud-check's repeats over all data; none in a window before the first event; a window
    ending halfway holds some of them and no more than all data."""
    from eventscope.findings import load, summaries
    engine = open_store(demo_url).engine
    first, last = load.earliest_event_ms(engine), load.latest_event_ms(engine)
    assert first is not None and last is not None
    every = {d["consumer"]: d["processed_twice"] for d in summaries.duplicates(engine)}
    assert every.get("fraud-check", 0) > 0
    assert summaries.duplicates(engine, None, first - 3_600_000, first - 60_000) == []
    half = {d["consumer"]: d["processed_twice"]
            for d in summaries.duplicates(engine, None, first, (first + last) // 2)}
    assert 0 < half.get("fraud-check", 0) < every["fraud-check"]


def test_dead_letters_are_not_checked_until_a_queue_is_sampled() -> None:
    """No sampled dead-letter queue: the tile says so instead of a green 0."""
    from eventscope.findings.triage import kind_states
    states = {s["kind"]: s for s in kind_states([], triage.with_missing_data([], 5, 5, True, 0))}
    assert (states["dead_letters"]["state"], states["dead_letters"]["reason"]) == (
        "skipped", "no dead-letter queue sampled")
    states = {s["kind"]: s for s in kind_states([], triage.with_missing_data([], 5, 5, True, 2))}
    assert states["dead_letters"]["state"] == "ok"


def test_contracts_view_links_open_the_section_the_overview_names(demo: str) -> None:
    """The overview's links: ?view=duplicates&consumer=fraud-check lists fraud-check's repeats
    only; ?view=deprecations shows OrderPlaced past its sunset; ?view=pii&type=OrderPlaced
    the e-mail field it carries."""
    at = page("contracts", view="duplicates", consumer="fraud-check")
    assert not at.exception
    dupes = at.dataframe[0].value
    assert list(dupes["consumer"]) == ["fraud-check"] and dupes["processed_twice"][0] > 0
    at = page("contracts", view="deprecations", type="OrderPlaced")
    assert "OrderPlaced" in set(at.dataframe[0].value["detail_type"])
    at = page("contracts", view="pii", type="OrderPlaced")
    pii = next(d.value for d in at.dataframe if "path" in d.value.columns)
    assert set(pii["detail_type"]) == {"OrderPlaced"} and "detail.customerEmail" in set(pii["path"])
