"""The dashboard's pure parts: CSV neutralising, masking, size caps, windows, the graph figure,
and figures that keep untrusted names inert."""

from __future__ import annotations

import orjson
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from eventscope.dashboard import figures, views
from eventscope.findings.graph import build_graph, graph_json
from eventscope.redaction import _TOKEN, luhn_valid, scrub_text
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


def test_mask_text_hides_aws_access_key_ids() -> None:
    """An access key id in an error message is hidden, as the store redacts it."""
    masked = views.mask_text("AccessDenied for AKIAIOSFODNN7EXAMPLE on arn:aws:s3:::bucket")
    assert "AKIAIOSFODNN7EXAMPLE" not in masked and masked.count("[redacted]") == 1


def test_mask_text_shows_timestamps_and_plain_ids() -> None:
    """Epoch timestamps (s, ms, µs) and 13-19 digit ids are not PII: they stay readable."""
    text = ("retry at 1733011200000 (1733011200, 1733011200000123) for order 1000000000000000019 "
            "ord-4111111111111111")
    assert views.mask_text(text) == text


# --- one detector: the dashboard hides exactly what the store redacts ----------------------

_KEY = b"k" * 32
_FILLER = st.text(alphabet=st.characters(categories=["L"], exclude_characters="@")
                  | st.sampled_from(list(" ,;:!?'\"/_")), max_size=20)


@st.composite
def _cards(draw: st.DrawFn) -> str:
    """A card number that passes the Luhn check, plain or grouped with spaces or dashes."""
    body = draw(st.sampled_from("3456")) + "".join(
        draw(st.lists(st.sampled_from("0123456789"), min_size=11, max_size=17)))
    check = next(d for d in "0123456789" if luhn_valid(body + d))
    number = body + check
    sep = draw(st.sampled_from(["", " ", "-"]))
    return sep.join(number[i:i + 4] for i in range(0, len(number), 4))


_EMAILS = st.builds("{}.{}@{}.{}".format, st.from_regex(r"[a-z]{1,8}", fullmatch=True),
                    st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True),
                    st.from_regex(r"[a-z]{1,10}", fullmatch=True),
                    st.sampled_from(["com", "de", "co.uk", "example"]))
_PHONES = st.one_of(
    st.builds("+{} {} {}".format, st.integers(1, 999), st.integers(10, 99),
              st.integers(1_000_000, 99_999_999)),
    st.builds("({}) {}-{}".format, st.integers(200, 999), st.integers(200, 999),
              st.integers(1000, 9999)),
    st.builds("{}-{}-{}".format, st.integers(200, 999), st.integers(200, 999),
              st.integers(1000, 9999)))
_AWS_KEYS = st.builds("{}{}".format, st.sampled_from(["AKIA", "ASIA"]),
                      st.from_regex(r"[A-Z0-9]{16}", fullmatch=True))
_PII = st.one_of(_EMAILS, _cards(), _PHONES, _AWS_KEYS)
_PLAIN_IDS = st.one_of(
    st.integers(1_000_000_000, 1_999_999_999).map(str),  # epoch seconds
    st.integers(1_000_000_000_000, 1_999_999_999_999).map(str),  # epoch milliseconds
    st.integers(1_000_000_000_000_000, 1_999_999_999_999_999).map(str),  # microseconds
    st.integers(0, 10**12).map("ord-{}".format),
    st.from_regex(r"ORD-20[0-9]{2}-[0-9]{6}", fullmatch=True))


def _as_store_redacts(text: str) -> str:
    """What the store would keep of `text`, with each token shown as the dashboard's mask."""
    return _TOKEN.sub(views.REDACTED, scrub_text(text, _KEY)[0])[:views.TEXT_CAP_CHARS]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_mask_text_never_raises_and_hides_what_the_store_redacts(text: str) -> None:
    """Any text: mask_text blanks exactly the values the store's scrubber replaces."""
    assert views.mask_text(text) == _as_store_redacts(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_FILLER, st.one_of(_PII.map(lambda v: ("pii", v)),
                                             _PLAIN_IDS.map(lambda v: ("id", v)))),
                min_size=1, max_size=6), _FILLER)
def test_planted_pii_is_hidden_and_plain_ids_are_shown(parts: list, tail: str) -> None:
    """Planted e-mails, Luhn-valid cards, phones and key ids are hidden, as the store hides
    them; planted timestamps and order ids stay as they are."""
    text = "".join(f"{filler} {value} " for filler, (_, value) in parts) + tail
    masked = views.mask_text(text)
    assert masked == _as_store_redacts(text)
    for _, (kind, value) in parts:
        assert (value in masked) == (kind == "id"), (kind, value, masked)


def test_a_large_payload_is_cut_per_field_and_the_rest_stays_visible() -> None:
    """A 1 MB field is cut to the field cap and says how long it was; the other fields of
    the payload are shown whole, and what reaches the page stays under the cap."""
    detail = orjson.dumps({"blob": "x" * 1_000_000, "orderId": "o-1"}).decode()
    kind, shown = views.shown_payload(detail, (), reveal=False)
    assert kind == "json" and shown["orderId"] == "o-1"
    assert shown["blob"].startswith("x" * views.FIELD_CAP_CHARS)
    assert "[cut: 1,000,000 characters" in shown["blob"]
    assert len(orjson.dumps(shown)) < views.PAYLOAD_CAP_BYTES


def test_a_large_text_payload_is_shown_truncated_as_text() -> None:
    """A 1 MB payload that is not JSON is cut to the cap and says how big it was."""
    detail = "x" * 1_000_000
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


def test_page_links_carry_the_environment_and_window_and_encode_their_parameters() -> None:
    """A link keeps the chosen environment and window, drops empty values and encodes ids."""
    carried = {"env": "staging", "window": "1h", "order": "ignored-not-carried"}
    assert views.page_url("failures", carried, consumer="invoice-generator", type="") == (
        "failures?env=staging&window=1h&consumer=invoice-generator")
    assert views.lifecycle_link("a&b=c/d", {"env": "prod"}) == (
        "lifecycle?env=prod&order=a%26b%3Dc%2Fd")
    assert views.page_url("overview") == "overview"
