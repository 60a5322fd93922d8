"""The Event graph page at a company's scale (tests/company_graph.py: 40 teams, 200 event
types, 300 consumers, a bus-rules snapshot) and its pure parts (dashboard/graph_view.py):
a focused view by default, bounded by the focus, labels that do not overlap, edges told
apart by where they are known from, details of a node or an edge with links that keep the
environment and window, and a plain reason for every empty case."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st_
from streamlit.testing.v1 import AppTest

from eventscope.dashboard import figures, graph_view
from eventscope.findings.frames import resolve_consumers
from eventscope.findings.graph import build_graph, graph_json
from tests import findings_scenario as scenario
from tests.company_graph import ARCHIVE, company, write_catalog, write_store
from tests.dashboard_harness import dashboard_server, page, seed

COLUMN_CAP = graph_view.MAX_PER_COLUMN * len(graph_view.COLUMNS)


@pytest.fixture(scope="module")
def company_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The generated company's store (SQLite) and catalog folder, written once."""
    root = tmp_path_factory.mktemp("company")
    built = company()
    return (write_store(f"sqlite:///{root / 'store.db'}", built),
            str(write_catalog(root / "catalog", built)))


@pytest.fixture
def big(company_files: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url, catalog = company_files
    monkeypatch.setenv("EVENTSCOPE_DB", url)
    monkeypatch.setenv("EVENTSCOPE_CATALOG", catalog)
    monkeypatch.delenv("EVENTSCOPE_ENVIRONMENTS", raising=False)
    yield url


def spec(at: AppTest) -> dict[str, Any]:
    """The drawn figure's Plotly JSON."""
    charts = at.get("plotly_chart")
    assert len(charts) == 1, "one graph figure"
    found: dict[str, Any] = json.loads(charts[0].proto.spec)
    return found


def drawn_nodes(figure: dict[str, Any]) -> list[str]:
    return list(next(t for t in figure["data"] if t.get("name") == "nodes")["customdata"])


def texts(at: AppTest) -> str:
    return "\n".join(str(t.value) for t in at.text)


# --- the page at a company's scale ---------------------------------------------------------

def test_opens_on_one_event_type_not_on_the_whole_company(big: str) -> None:
    """No focus asked: the busiest event type and its neighbours; the whole graph (542 nodes)
    cannot be turned on."""
    at = page("graph")
    assert not at.exception
    focus = at.selectbox(key="graph-focus").value
    assert focus.startswith("type:")
    nodes = drawn_nodes(spec(at))
    assert focus in nodes and len(nodes) <= COLUMN_CAP
    assert at.toggle(key="graph-whole").proto.disabled
    assert at.query_params["focus"] == focus


@pytest.mark.parametrize("focus", ["team:stock", "type:StockBatchApproved",
                                   f"consumer:{ARCHIVE}", "producer:com.company.ledger"])
@pytest.mark.parametrize("hops", ["1", "2"])
def test_every_focus_draws_a_bounded_view_that_contains_it(big: str, focus: str,
                                                           hops: str) -> None:
    """A team, a type, a consumer (the catch-all archive: 195 types) or a producer, 1 or 2
    hops: at most MAX_PER_COLUMN nodes per column, the focus always among them."""
    at = page("graph", focus=focus, hops=hops)
    assert not at.exception
    figure = spec(at)
    nodes = drawn_nodes(figure)
    assert len(nodes) <= COLUMN_CAP
    for column in graph_view.COLUMNS:
        assert sum(n.startswith(f"{column}:") for n in nodes) <= graph_view.MAX_PER_COLUMN
    if focus.startswith("team:"):
        assert "type:StockBatchApproved" in nodes
    else:
        assert focus in nodes
    assert figure["layout"]["height"] <= graph_view.height_px(graph_view.MAX_PER_COLUMN)


def test_labels_in_a_column_are_a_font_height_apart_and_cut(big: str) -> None:
    """The busiest view (the archive, 2 hops): in every column, two labels are at least a
    font's height apart in pixels; every label fits LABEL_CHARS (hover has the full name)."""
    figure = spec(page("graph", focus=f"consumer:{ARCHIVE}", hops="2"))
    layout = figure["layout"]
    low, high = layout["yaxis"]["range"]
    plot_px = layout["height"] - layout["margin"]["t"] - layout["margin"]["b"]
    px_per_unit = plot_px / (high - low)
    nodes = next(t for t in figure["data"] if t.get("name") == "nodes")
    columns: dict[float, list[float]] = {}
    for x, y in zip(nodes["x"], nodes["y"]):
        columns.setdefault(x, []).append(y)
    assert len(columns) == 3
    for ys in columns.values():
        ys.sort()
        gaps = [(b - a) * px_per_unit for a, b in zip(ys, ys[1:])]
        assert min(gaps, default=graph_view.ROW_PX) >= graph_view.FONT_PX
    labels = nodes["text"] + [a["text"] for a in layout["annotations"]]
    assert len([t for t in labels if t]) == len(nodes["x"])
    assert max(len(t) for t in labels) <= graph_view.LABEL_CHARS
    assert any(len(t) > graph_view.LABEL_CHARS for t in nodes["hovertext"])


def test_rule_only_and_declared_edges_are_drawn_apart_in_the_legend(big: str) -> None:
    """The archive's edges come from a rule only (never declared, never ran); the stock
    team's declared edges that a rule also routes and traffic shows are another entry."""
    figure = spec(page("graph", focus="type:StockBatchApproved"))
    legend = {t["name"]: t["line"] for t in figure["data"]
              if t.get("mode") == "lines" and t.get("showlegend")}
    assert legend["rule only: not declared, never observed"]["dash"] == "dot"
    assert legend["declared + rule + observed"]["dash"] == "solid"
    assert len({line["color"] for line in legend.values()}) == len(legend)


def test_choosing_a_node_opens_its_panel_with_links_that_keep_the_window(big: str) -> None:
    """Details for a type: owner team, volume, failure rate, last seen, producers,
    consumers, rules; links to Failures and Subscriptions filtered on it, window kept."""
    at = page("graph", focus="team:stock", window="30d")
    at.selectbox(key="node").set_value("type:StockBatchApproved").run()
    assert not at.exception
    shown = texts(at)
    assert "owner team: stock" in shown and "failure rate:" in shown
    assert "com.company.stock" in shown and ARCHIVE in shown and "archive-all" in shown
    assert "stock-everything" in shown
    links = {link.label: link.proto.query_string for link in at.get("page_link")
             if link.proto.page in ("failures", "subscriptions")}
    assert links["Failures on this type"] == "window=30d&type=StockBatchApproved"
    lifecycle = [link.proto.query_string for link in at.get("page_link")
                 if link.proto.page == "lifecycle"]
    newest = f"k-{sorted(company().types).index('StockBatchApproved')}-1"  # its 2nd event
    assert lifecycle == [f"window=30d&order={newest}"]
    assert at.query_params["node"] == "type:StockBatchApproved"


def test_an_edge_from_the_url_opens_its_panel(big: str) -> None:
    """?node=edge:type:X>consumer:Y (what a click on an edge's mark selects) opens the
    edge's panel: where it is known from, its rules, the pair's failures link."""
    edge = f"edge:type:StockBatchApproved>consumer:{ARCHIVE}"
    at = page("graph", node=edge)
    assert not at.exception
    assert at.selectbox(key="node").value == edge
    shown = texts(at)
    assert "known from: subscribed" in shown and "archive-all" in shown
    assert "invocations: 0" in shown and "last seen: never" in shown
    labels = {link.label for link in at.get("page_link")}
    assert {"Failures of this pair", "Latest StockBatchApproved order's lifecycle"} <= labels


def test_a_focus_the_graph_does_not_have_says_so(big: str) -> None:
    """?focus=type:Nope: a plain warning and the asked name as inert text, no figure."""
    at = page("graph", focus="type:<b>Nope</b>")
    assert not at.exception
    assert any("matches this focus" in w.value for w in at.warning)
    assert at.code[0].value == "type:<b>Nope</b>"
    assert not at.get("plotly_chart")


def test_the_focus_survives_a_second_choice(big: str) -> None:
    """Two focuses in a row, then the hops: each run keeps what was chosen last (the URL
    does not snap the box back)."""
    at = page("graph", focus="team:stock")
    at.selectbox(key="graph-focus").set_value("team:ledger").run()
    at.selectbox(key="graph-focus").set_value("type:StockBatchApproved").run()
    at.radio(key="graph-hops").set_value(2).run()
    assert at.selectbox(key="graph-focus").value == "type:StockBatchApproved"
    assert at.query_params["focus"] == "type:StockBatchApproved"
    assert at.query_params["hops"] == "2"


# --- empty and partial stores: plain reasons --------------------------------------------------

@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = seed(f"sqlite:///{tmp_path / 'seeded.db'}")
    monkeypatch.setenv("EVENTSCOPE_DB", url)
    monkeypatch.delenv("EVENTSCOPE_CATALOG", raising=False)
    monkeypatch.delenv("EVENTSCOPE_ENVIRONMENTS", raising=False)
    return url


def test_without_catalog_nor_rules_the_page_says_what_is_missing(seeded: str) -> None:
    """A small store with no catalog and no rules snapshot: both said, the whole graph can
    be drawn on request."""
    at = page("graph")
    captions = " ".join(c.value for c in at.caption)
    assert "No catalog loaded" in captions and "No bus rules collected" in captions
    at.toggle(key="graph-whole").set_value(True).run()
    assert len(drawn_nodes(spec(at))) == len(graph_json(build_graph(
        scenario.events_frame(), scenario.attempts_frame())).get("nodes", []))


def test_an_empty_store_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    from eventscope.store import open_store
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_store(url).engine.dispose()
    monkeypatch.setenv("EVENTSCOPE_DB", url)
    monkeypatch.delenv("EVENTSCOPE_CATALOG", raising=False)
    at = page("graph")
    assert not at.exception
    assert any("The store is empty" in i.value for i in at.info)


# --- the pure parts -----------------------------------------------------------------------

def _scenario_graph(with_rules: bool = True) -> dict[str, Any]:
    cat = scenario.catalog()
    rules = [{"rule": "all-orders", "bus": "shop", "consumers": ["audit"],
              "pattern": '{"detail-type": [{"prefix": "Order"}]}'}] if with_rules else None
    return graph_json(build_graph(scenario.events_frame(),
                                  resolve_consumers(scenario.attempts_frame(), cat), cat,
                                  rules=rules))


def test_a_type_focus_is_its_producer_and_consumers() -> None:
    view = graph_view.focused(_scenario_graph(), "type:OrderPaid", 1)
    assert {n["id"] for n in view["nodes"]} == {
        "producer:payments", "type:OrderPaid", "consumer:Billing", "consumer:Warranty",
        "consumer:audit"}


def test_a_consumer_focus_brings_the_producers_of_its_types() -> None:
    view = graph_view.focused(_scenario_graph(), "consumer:Loyalty", 1)
    assert {n["id"] for n in view["nodes"]} == {"consumer:Loyalty", "type:OrderCancelled",
                                                "producer:shop"}


def test_a_team_focus_is_its_consumers_and_owned_types() -> None:
    graph = _scenario_graph()
    assert "team:team-billing" in graph_view.focus_options(graph)
    view = graph_view.focused(graph, "team:team-billing", 1)
    assert "consumer:Billing" in {n["id"] for n in view["nodes"]}
    assert view["focus"] == ["consumer:Billing"]


def test_rules_state_tells_never_collected_from_routing_nothing() -> None:
    assert "No bus rules collected" in (graph_view.rules_state(_scenario_graph(False)) or "")
    assert graph_view.rules_state(_scenario_graph()) is None
    nothing = {**_scenario_graph(False), "rules": []}
    assert "no enabled rule" in (graph_view.rules_state(nothing) or "")


def test_empty_graph_reasons_name_the_window_and_the_catalog() -> None:
    assert "pick a longer window" in (graph_view.empty_reason(
        {"catalog": False, "nodes": [], "edges": []}) or "")
    assert graph_view.empty_reason(_scenario_graph()) is None


def test_numbers_for_people() -> None:
    assert [graph_view.count_text(n) for n in (7, 1234, 12_345, 4_500_000)] == [
        "7", "1,234", "12.3k", "4.5M"]
    assert graph_view.rate_text(4, 125) == "3.2 % (4 of 125)"
    assert graph_view.rate_text(0, 0) == "no invocations"
    assert graph_view.ago_text(1_000_000_000_000 - 180_000, 1_000_000_000_000).endswith(
        "(3 min ago)")


def test_hostile_names_stay_inert_in_labels_and_edge_hovers() -> None:
    events = scenario.events_frame()
    events.loc[3, "detail_type"] = "<img src=x onerror=alert(1)>"
    graph = graph_json(build_graph(events, scenario.attempts_frame()))
    fig = figures.event_graph(graph_view.whole(graph))
    shown = [t for trace in fig.data for t in (trace.text or ()) + (trace.hovertext or ())]
    shown += [a.text for a in fig.layout.annotations]
    assert shown and not any("<img" in t for t in shown)
    assert any("&lt;img" in a.text for a in fig.layout.annotations)


FOCUSES = st_.sampled_from(["team:billing", "team:nope", "type:OrderPaid", "type:Nope",
                            "consumer:audit", "producer:shop", "", "consumer:"])


@settings(max_examples=60, deadline=None)
@given(focus=FOCUSES, hops=st_.sampled_from([1, 2]), rules=st_.booleans())
def test_any_focus_gives_a_view_whose_edges_join_its_nodes(focus: str, hops: int,
                                                          rules: bool) -> None:
    """Never raises; every drawn edge joins two drawn nodes; the view is bounded; every
    node's panel and every edge's panel can be built."""
    graph = _scenario_graph(rules)
    view = graph_view.focused(graph, focus, hops)
    ids = {n["id"] for n in view["nodes"]}
    assert all(e["source"] in ids and e["target"] in ids for e in view["edges"])
    assert len(ids) <= COLUMN_CAP
    for option in graph_view.details_options(view):
        panel = (graph_view.edge_panel(graph, option, 0) if option.startswith("edge:")
                 else graph_view.node_panel(graph, option, 0))
        assert panel is not None and panel["title"]
    positions, rows = graph_view.layout(view)
    assert set(positions) == ids and all(-rows <= y <= 0 for _, y in positions.values())


# --- in the real browser ------------------------------------------------------------------

@pytest.fixture(scope="module")
def company_server(company_files: tuple[str, str]) -> Iterator[str]:
    """`eventscope dashboard` over the generated company, with its catalog, on a free port."""
    url, catalog = company_files
    with dashboard_server(url, "--catalog", catalog) as base:
        yield base


NODE_PIXEL = """([id]) => {
  const gd = document.querySelector('.js-plotly-plot');
  const trace = gd.data.find(t => t.name === 'nodes');
  const i = trace.customdata.indexOf(id);
  const box = gd.getBoundingClientRect(), size = gd._fullLayout._size;
  return [box.left + size.l + gd._fullLayout.xaxis.d2p(trace.x[i]),
          box.top + size.t + gd._fullLayout.yaxis.d2p(trace.y[i])];
}"""


def test_in_the_browser_a_click_on_a_node_opens_its_details(company_server: str) -> None:
    """Chromium: the company focused on one type draws readably (screenshot for the docs);
    a click on a consumer's node opens its panel and puts it in the URL."""
    browser_tests = pytest.importorskip("tests.test_dashboard_browser")
    with browser_tests.sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_tests.CHROMIUM,
                                             args=browser_tests.ARGS)
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.goto(f"{company_server}/graph?focus=type:StockBatchApproved")
        browser_tests.settle(tab, "Event graph")
        tab.locator(".js-plotly-plot").first.wait_for(timeout=20_000)
        x, y = tab.evaluate(NODE_PIXEL, [f"consumer:{ARCHIVE}"])
        tab.mouse.click(x, y)
        tab.get_by_text(f"consumer: {ARCHIVE}").wait_for(timeout=20_000)
        tab.wait_for_url(lambda url: "node=consumer" in url and ARCHIVE in url,
                         timeout=20_000)
        assert tab.get_by_text("owner team: —").count() >= 1
        browser_tests.settle(tab, "Event graph")
        browser_tests.SHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(browser_tests.SHOTS / "graph-company.png"))
        browser.close()


def test_unreadable_rules_are_listed_with_their_reason() -> None:
    cat = scenario.catalog()
    graph = graph_json(build_graph(
        scenario.events_frame(), resolve_consumers(scenario.attempts_frame(), cat), cat,
        rules=[{"rule": "broken", "bus": "shop", "pattern": "{", "consumers": ["x"]},
               {"rule": "fine", "bus": "shop", "pattern": '{"source": ["shop"]}',
                "consumers": ["x"]}]))
    assert graph_view.rule_problems(graph) == [
        {"bus": "shop", "rule": "broken", "problem": "the event pattern is not JSON"}]
