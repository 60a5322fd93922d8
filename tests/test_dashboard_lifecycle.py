"""The Lifecycle and Subscriptions pages on a demo-shaped store, and payloads as pages show
them: missed handlings on the timeline, every affected order a page at a time, PII masked
(declared objects whole, large payloads masked before they are cut, cut per field)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
import sqlalchemy as sa
import streamlit
from hypothesis import given, settings
from hypothesis import strategies as st
from click.testing import CliRunner

from eventscope import simulator
from eventscope.cli import main
from eventscope.dashboard import data, figures, lifecycle_view, views
from eventscope.findings import read
from eventscope.simulator import DEMO_CATALOG
from eventscope.store import open_store
from tests.dashboard_harness import page
from tests.demo_shaped import DemoStore, build


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoStore:
    return build(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def on_demo(demo: DemoStore, monkeypatch: pytest.MonkeyPatch) -> DemoStore:
    monkeypatch.setenv("EVENTSCOPE_DB", demo.url)
    monkeypatch.setenv("EVENTSCOPE_CATALOG", str(DEMO_CATALOG))
    return demo


def _missed_traces(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in spec["data"] if t.get("name") == figures.MISSED]


# --- the timeline ---------------------------------------------------------------------------

def test_the_missed_cancellation_is_an_empty_red_mark_on_the_consumers_lane(
        demo: DemoStore) -> None:
    """A cancelled demo order: the swimlane has one empty red mark on warranty-handler's
    lane at the cancellation's time, besides the gap in the table."""
    order = demo.orders_with("OrderCancelled")[0]
    life = read.lifecycle(open_store(demo.url).engine, order, demo.catalog)
    cancel = next(s for s in life["events"] if s["detail_type"] == "OrderCancelled")
    assert any(g["kind"] == "missed_cancellation" and g["consumer"] == "warranty-handler"
               for g in life["gaps"])
    [trace] = _missed_traces(json.loads(figures.swimlane(life).to_json()))
    assert trace["marker"]["symbol"] == "circle-open"
    assert trace["marker"]["color"] == figures.OUTCOME_COLOURS[figures.MISSED] == "#d32f2f"
    marks = list(zip(trace["y"], trace["x"]))
    when = pd.to_datetime(cancel["time_ms"], unit="ms", utc=True)
    assert [y for y, x in marks if pd.Timestamp(x) == when] == [
        "consumer warranty-handler"]


def test_a_shipped_order_has_no_missed_mark_and_no_gap(demo: DemoStore) -> None:
    order = demo.orders_with("OrderDelivered", without=("OrderReturned",))[0]
    life = read.lifecycle(open_store(demo.url).engine, order, demo.catalog)
    assert life["gaps"] == []
    assert _missed_traces(json.loads(figures.swimlane(life).to_json())) == []


def test_the_lifecycle_page_draws_the_mark_and_says_where_gaps_come_from(
        on_demo: DemoStore) -> None:
    order = on_demo.orders_with("OrderCancelled")[0]
    at = page("lifecycle", order=order)
    assert not at.exception
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [y for t in _missed_traces(spec) for y in t["y"]] == ["consumer warranty-handler"]
    assert any("Expected steps: the catalog's declared lifecycle steps" in t.value
               for t in at.text)
    missed = next(d.value for d in at.dataframe if "why" in d.value.columns)
    assert list(missed["consumer"]) == ["warranty-handler"]


def test_searching_one_order_after_another_shows_each(on_demo: DemoStore) -> None:
    """The search box keeps what was typed: every search opens its own order."""
    orders = on_demo.orders_with("OrderShipped")[:3]
    at = page("lifecycle", order=orders[0])
    for order in orders:
        at.text_input(key="order-search").set_value(order).run()
        assert not at.exception
        assert at.text[0].value.startswith(f"Order {order}:")
        assert at.query_params["order"] == [order] or at.query_params["order"] == order


# --- every affected order, paged ---------------------------------------------------------------

def test_subscriptions_page_pages_through_every_affected_order(on_demo: DemoStore) -> None:
    """warranty-handler / OrderCancelled: all cancelled orders over the pages, none twice;
    the caption says which; the CSV button offers them all."""
    cancelled = on_demo.orders_with("OrderCancelled")
    at = page("subscriptions")
    assert not at.exception
    choice = at.selectbox(key="affected-of")
    index = next(i for i, label in enumerate(choice.options)
                 if label.startswith("warranty-handler / OrderCancelled"))
    choice.set_value(index).run()
    at.selectbox(key="affected-size").set_value(25).run()
    seen: list[str] = []
    for number in (1, 2):
        at.number_input(key="affected-page").set_value(number).run()
        shown = next(d.value for d in at.dataframe if "cancelled" in d.value.columns)
        seen += list(shown["order"])
        end = min(number * 25, len(cancelled))
        assert any(f"orders {(number - 1) * 25 + 1}–{end} of {len(cancelled)}" in c.value
                   for c in at.caption)
    assert len(cancelled) > 25 and sorted(seen) == cancelled
    labels = [b.proto.label for b in at.get("download_button")]
    assert f"Download CSV (all {len(cancelled)} orders)" in labels


def test_each_missing_subscription_names_the_team_and_channel_to_tell(
        on_demo: DemoStore) -> None:
    """The findings table says whom to tell: warranty-handler's team and its Slack channel,
    from the catalog's consumers and teams."""
    at = page("subscriptions")
    assert not at.exception
    table = next(d.value for d in at.dataframe if "lifecycle" in d.value.columns
                 and "evidence" in d.value.columns)
    row = table[(table["consumer"] == "warranty-handler")
                & (table["detail_type"] == "OrderCancelled")].iloc[0]
    assert (row["team"], row["channel"]) == ("warranty", "#team-warranty")


def test_a_link_naming_consumer_and_type_opens_that_findings_orders(
        on_demo: DemoStore) -> None:
    """?consumer=&type= (as the overview links a finding) selects it: its orders are listed
    and the URL keeps naming it."""
    at = page("subscriptions", consumer="warranty-handler", type="OrderReturned")
    assert not at.exception
    choice = at.selectbox(key="affected-of")
    assert choice.options[choice.value].startswith("warranty-handler / OrderReturned")
    shown = next(d.value for d in at.dataframe if "cancelled" in d.value.columns)
    assert sorted(shown["order"]) == on_demo.orders_with("OrderReturned")
    assert at.query_params["type"] in ("OrderReturned", ["OrderReturned"])


def test_a_window_with_more_cancellations_than_read_says_so(
        on_demo: DemoStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the page reads only the latest cancellations of the window, it says how many
    there are and how to list every one."""
    monkeypatch.setattr(data, "LATEST_CANCELLATIONS", 10)
    streamlit.cache_data.clear()
    try:
        at = page("subscriptions")
        assert not at.exception
        total = len(on_demo.orders_with("OrderCancelled")) + len(
            on_demo.orders_with("OrderReturned"))
        assert any(f"This window holds {total} cancellations; the orders of its latest 10"
                   in w.value and "eventscope subscriptions --orders" in w.value
                   for w in at.warning)
    finally:
        streamlit.cache_data.clear()


def test_paging_clamps_to_the_pages_there_are() -> None:
    table = pd.DataFrame({"order": [f"o{i}" for i in range(30)]})
    shown, caption = lifecycle_view.page_of(table, 25, 9)
    assert list(shown["order"]) == [f"o{i}" for i in range(25, 30)]
    assert caption == "orders 26–30 of 30"
    empty, caption = lifecycle_view.page_of(table.iloc[:0], 25, 1)
    assert empty.empty and caption == "no orders"


def test_the_affected_csv_holds_every_order(demo: DemoStore) -> None:
    missing = read.missing_subscriptions(open_store(demo.url).engine, demo.catalog)
    finding = next(m for m in missing if m["detail_type"] == "OrderReturned")
    text = views.csv_bytes(lifecycle_view.affected_table(finding)).decode()
    assert sorted(line.split(",")[0] for line in text.splitlines()[1:]) == \
        demo.orders_with("OrderReturned")


# --- PII --------------------------------------------------------------------------------------

ADDRESS = {"line1": "12 Analytical St", "city": "London", "postalCode": "N1 9GU"}


def test_a_declared_object_field_is_masked_whole_unless_revealed() -> None:
    detail = orjson.dumps({"orderId": "ord-1", "shippingAddress": ADDRESS}).decode()
    assert views.shown_payload(detail, ("detail.shippingAddress",), reveal=False)[1] == {
        "orderId": "ord-1", "shippingAddress": views.REDACTED}
    assert views.shown_payload(detail, ("detail.shippingAddress",), reveal=True)[1][
        "shippingAddress"] == ADDRESS


def test_a_70_kb_payload_is_masked_then_cut_per_field() -> None:
    """Over 64 KB: the e-mail and the declared address are masked as under 64 KB; the huge
    field is cut with a marker; every other field is still there."""
    detail = orjson.dumps({"orderId": "ord-1", "notes": "n" * 70_000,
                           "customer": {"email": "ada@example.com", "name": "Ada"},
                           "shippingAddress": ADDRESS, "total": 12.5}).decode()
    assert len(detail) > views.PAYLOAD_CAP_BYTES
    kind, shown = views.shown_payload(detail, ("detail.shippingAddress",
                                               "detail.customer.name"), reveal=False)
    assert kind == "json"
    assert shown["customer"] == {"email": views.REDACTED, "name": views.REDACTED}
    assert shown["shippingAddress"] == views.REDACTED
    assert (shown["orderId"], shown["total"]) == ("ord-1", 12.5)
    assert shown["notes"].endswith("[cut: 70,000 characters, first 2,000 shown]")
    assert "ada@example.com" not in orjson.dumps(shown).decode()


def test_a_long_list_is_cut_with_a_marker() -> None:
    detail = orjson.dumps({"items": list(range(500)), "orderId": "o"}).decode()
    shown = views.shown_payload(detail, (), reveal=True)[1]
    assert shown["items"][-1] == "… [cut: 400 more items]" and len(shown["items"]) == 101


PII_VALUES = st.sampled_from(["ada.lovelace@example.com", "4111 1111 1111 1111",
                              "+44 20 7946 0958", "AKIAIOSFODNN7EXAMPLE", "078-05-1120",
                              "5555555555554444"])
KEYS = st.text(st.characters(codec="utf-8", exclude_characters="."), min_size=1, max_size=8)
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                        st.text(max_size=30), PII_VALUES)


def _json(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)), max_leaves=20)


def _plant(document: dict[str, Any], path: list[str], value: Any) -> None:
    node = document
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(KEYS, _json(JSON_LEAVES), max_size=5),
       st.lists(st.tuples(st.lists(KEYS, min_size=1, max_size=3), PII_VALUES,
                          st.booleans()), min_size=1, max_size=4),
       st.integers(0, 80_000))
def test_no_pii_value_is_shown_in_clear_at_any_path_or_size(
        document: dict[str, Any], planted: list[tuple[list[str], str, bool]],
        padding: int) -> None:
    """Random JSON with PII values planted at random paths (some declared, some found by
    value, some under a declared object), any size up to past the cap: what shown_payload
    returns with reveal off holds none of them, and it never raises."""
    declared: list[str] = []
    for path, value, declare in planted:
        _plant(document, path, value)
        if declare:
            declared.append("detail." + ".".join(path[:1]))  # the top object, whole
    document["padding"] = "p" * padding
    kind, shown = views.shown_payload(orjson.dumps(document).decode(), tuple(declared),
                                      reveal=False)
    text = shown if kind == "text" else orjson.dumps(shown).decode()
    for _, value, _ in planted:
        assert value not in text
        assert json.dumps(value)[1:-1] not in text


# --- the demo store ---------------------------------------------------------------------------

def test_the_demo_store_holds_no_customer_name_or_street_in_clear(demo: DemoStore) -> None:
    """The demo's collectors redact the demo catalog's declared PII: the names and streets
    the simulation sent are in no stored payload."""
    assert len(demo.names) > 50 and len(demo.streets) > 5  # they were sent
    engine = sa.create_engine(demo.url)
    with engine.connect() as conn:
        stored = "\n".join(r[0] for r in conn.execute(sa.text("select detail from events")))
    assert not [n for n in demo.names if n in stored]
    assert not [s for s in demo.streets if s in stored]



def test_ingesting_the_demo_files_with_its_catalog_stores_no_name_or_address(
        tmp_path: Path) -> None:
    """`eventscope demo --no-aws` then `eventscope ingest ... --catalog` (as its next line
    says): the catalog's declared PII (names, the address object) is redacted on ingest too."""
    files = simulator.write_ndjson(simulator.simulate(simulator.CompanyConfig.demo(), seed=3,
                                                      n_orders=40), tmp_path)
    sent = [json.loads(line)["detail"] for line in files.events_path.read_text().splitlines()]
    names = {d["customer"]["name"] for d in sent if "name" in d.get("customer", {})}
    assert names  # the files carry them
    url = f"sqlite:///{tmp_path / 'ingested.db'}"
    result = CliRunner().invoke(main, ["ingest", str(files.events_path), str(files.logs_path),
                                       "--db", url, "--catalog", str(DEMO_CATALOG)],
                                env={"EVENTSCOPE_CATALOG": None})
    assert result.exit_code == 0, result.output
    with sa.create_engine(url).connect() as conn:
        stored = [json.loads(r[0]) for r in conn.execute(
            sa.text("select detail from events where detail_type = 'OrderCreated'"))]
    assert stored and all(d["shippingAddress"].startswith("pii:catalog:") for d in stored)
    assert not [n for n in names if any(n in json.dumps(d) for d in stored)]
