"""The dashboard's pure parts: CSV neutralising, masking, size caps, windows, graph filters,
and figures that keep untrusted names inert."""

from __future__ import annotations

import orjson
import pandas as pd

from dashboard import figures, views
from eventscope.findings.graph import build_graph, graph_json
from tests import findings_scenario as scenario


def test_csv_cells_that_start_a_formula_are_neutralised() -> None:
    """=, +, -, @, tab and CR at the start of a text cell get a leading quote; numbers stay."""
    df = pd.DataFrame({"text": ["=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "\tx", "ok"],
                       "n": [-1, 2, 3, 4, 5, 6]})
    safe = views.csv_safe(df)
    assert list(safe["text"]) == ["'=HYPERLINK(\"x\")", "'+1", "'-2", "'@SUM(A1)", "'\tx", "ok"]
    assert list(safe["n"]) == [-1, 2, 3, 4, 5, 6]
    assert views.csv_bytes(df).decode().splitlines()[1].startswith("\"'=HYPERLINK")


def test_csv_safe_leaves_the_shown_frame_untouched() -> None:
    df = pd.DataFrame({"text": ["=1"]})
    views.csv_safe(df)
    assert df["text"][0] == "=1"


def test_mask_text_blanks_emails_cards_and_phones_in_free_text() -> None:
    masked = views.mask_text("mail ann@example.com card 4111 1111 1111 1111 tel +44 20 7946 0958")
    assert "ann@example.com" not in masked and "4111" not in masked and "7946" not in masked
    assert masked.count("[redacted]") == 3


def test_a_large_payload_is_shown_truncated_as_text() -> None:
    """A 1 MB payload is cut to the cap and says how big it was."""
    detail = orjson.dumps({"blob": "x" * 1_000_000}).decode()
    kind, shown = views.shown_payload(detail, (), reveal=False)
    assert kind == "text"
    assert len(shown) < views.PAYLOAD_CAP_BYTES + 200
    assert "truncated" in shown and f"{len(detail):,} bytes" in shown


def test_payload_pii_is_redacted_unless_revealed() -> None:
    detail = '{"orderId":"o-1","customer":{"name":"Ann","email":"ann@example.com"}}'
    assert views.shown_payload(detail, ("detail.customer.name",), reveal=False)[1] == {
        "orderId": "o-1", "customer": {"name": "[redacted]", "email": "[redacted]"}}
    assert views.shown_payload(detail, (), reveal=True)[1]["customer"]["email"] == \
        "ann@example.com"


def test_window_ends_just_after_the_newest_event() -> None:
    assert views.window_for("1h", 10_000_000) == views.Window(10_000_001 - 3_600_000, 10_000_001)
    assert views.window_for("all", 10_000_000) == views.Window(None, None)
    assert views.window_for("1h", None) == views.Window(None, None)


def _graph() -> dict:
    return graph_json(build_graph(scenario.events_frame(), scenario.attempts_frame()))


def test_filter_graph_by_type_keeps_its_producer_and_consumers() -> None:
    shown = views.filter_graph(_graph(), [], ["OrderPaid"], [])
    assert {n["id"] for n in shown["nodes"]} == {"producer:payments", "type:OrderPaid",
                                                 "consumer:billing-fn", "consumer:warranty-fn"}


def test_filter_graph_without_choices_is_the_whole_graph() -> None:
    graph = _graph()
    assert views.filter_graph(graph, [], [], []) is graph


def test_coverage_matrix_marks_the_missing_cancellation() -> None:
    catalog = scenario.catalog()
    missing = [{"consumer": "Warranty", "detail_type": "OrderCancelled"}]
    from eventscope.findings.frames import resolve_consumers
    matrix = views.coverage_matrix(catalog, resolve_consumers(scenario.attempts_frame(), catalog),
                                   missing)
    assert matrix.loc["Warranty", "OrderCancelled"] == "missing"
    assert matrix.loc["Warranty", "OrderPlaced"] == "subscribed+handled"
    assert matrix.loc["Loyalty", "OrderCancelled"] == "subscribed"


def test_figure_labels_escape_html() -> None:
    """Plotly renders <a>, <b>, <br> in labels: untrusted names are HTML-escaped."""
    assert figures.label('<a href="javascript:alert(1)">x</a>') == \
        "&lt;a href=&quot;javascript:alert(1)&quot;&gt;x&lt;/a&gt;"


def test_event_graph_carries_no_raw_markup_from_names() -> None:
    events = scenario.events_frame()
    events.loc[0, "detail_type"] = "<img src=x onerror=alert(1)>"
    fig = figures.event_graph(graph_json(build_graph(events, scenario.attempts_frame())))
    texts = [t for trace in fig.data for t in (trace.text or ()) + (trace.hovertext or ())]
    assert texts and not any("<img" in t for t in texts)
    assert any("&lt;img" in t for t in texts)


def test_event_graph_puts_producers_types_consumers_in_three_columns() -> None:
    positions = figures.graph_positions(_graph())
    assert {x for node, (x, _) in positions.items() if node.startswith("producer:")} == {0.0}
    assert {x for node, (x, _) in positions.items() if node.startswith("consumer:")} == {2.0}


def test_swimlane_has_a_lane_per_producer_and_consumer() -> None:
    from eventscope.findings.lifecycle import order_lifecycle
    events = scenario.events_frame()
    lifecycle = order_lifecycle("o-1", events[events["correlation_key"] == "o-1"],
                                scenario.attempts_frame())
    fig = figures.swimlane(lifecycle)
    lanes = set(fig.layout.yaxis.categoryarray)
    assert lanes == {"producer shop", "producer payments", "consumer billing-fn",
                     "consumer warranty-fn"}
    retries = [t for t in fig.data if t.name == "timeout"]
    assert len(retries[0].x) == 2  # both timed-out attempts of billing-fn on OrderPaid
