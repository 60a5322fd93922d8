"""The overview's read model (`eventscope.findings.triage`): the store-level check both faces
run, who owns a finding, where it is explained, what its trend counts, and a state for every
kind `check` grades."""

from __future__ import annotations

from datetime import date

import pandas as pd
from hypothesis import given
from hypothesis import strategies as st_

from eventscope.findings.check import KINDS, Finding, Thresholds
from eventscope.findings.read import load_catalog_file
from eventscope.findings.triage import (KIND_NAMES, explained_by, kind_states, owner, ranked,
                                        store_check, trend, trend_words, Trend)
from eventscope.simulator import DEMO_CATALOG
from eventscope.store import open_store
from tests.dashboard_harness import seed

CATALOG = load_catalog_file(str(DEMO_CATALOG))
MINUTE = 60_000


def _finding(kind: str, severity: str = "error", **subject: str) -> Finding:
    return Finding(kind, severity, dict(subject), f"{kind} of {subject}")


def test_every_kind_check_grades_has_a_name_and_a_tile() -> None:
    """Tiles cover every kind `check` reports, in a fixed order, none twice."""
    states = kind_states([], [])
    assert sorted(s["kind"] for s in states) == sorted(KINDS) == sorted(KIND_NAMES)


def test_a_kinds_state_is_its_worst_finding_or_why_it_was_not_checked() -> None:
    found = [_finding("failure_rate", "warning", consumer="a", detail_type="T", version="1"),
             _finding("failure_rate", "error", consumer="b", detail_type="T", version="1"),
             _finding("processed_twice", "warning", consumer="a")]
    skipped = [{"kind": "undocumented_event", "reason": "no catalog given (--catalog PATH)"}]
    states = {s["kind"]: s for s in kind_states(found, skipped)}
    assert (states["failure_rate"]["state"], states["failure_rate"]["count"]) == ("bad", 2)
    assert states["processed_twice"]["state"] == "warn"
    assert states["schema_drift"]["state"] == "ok"
    assert states["undocumented_event"]["state"] == "skipped"
    assert states["undocumented_event"]["reason"].startswith("no catalog")


def test_final_failures_tile_counts_events_not_pairs() -> None:
    """The final-failures number is the events lost (the findings' evidence), not pairs."""
    found = [Finding("final_failures", "warning", {"consumer": "a", "detail_type": "T"}, "",
                     {"events": 3}),
             Finding("final_failures", "error", {"consumer": "b", "detail_type": "T"}, "",
                     {"events": 12})]
    state = next(s for s in kind_states(found, []) if s["kind"] == "final_failures")
    assert (state["count"], state["findings"]) == (15, 2)


def test_owner_is_the_consumers_team_with_its_channel() -> None:
    """The demo's warranty gap goes to the warranty team's Slack channel; an undocumented
    type to the team owning its source's other types."""
    gap = _finding("missing_subscription", consumer="warranty-handler",
                   detail_type="OrderCancelled")
    assert owner(gap, CATALOG) == ("warranty", "#team-warranty")
    unknown = _finding("undocumented_event", source="com.shop.orders",
                       detail_type="OrderPriorityChanged", version="1")
    assert owner(unknown, CATALOG) == ("orders", "#team-orders")
    assert owner(gap, None) == (None, None)


def test_each_finding_links_to_the_page_and_filter_that_explain_it() -> None:
    assert explained_by(_finding("failure_rate", consumer="c", detail_type="T",
                                 version="2")) == ("failures", {"consumer": "c", "type": "T"})
    assert explained_by(_finding("missing_subscription", consumer="c", detail_type="T")) == (
        "subscriptions", {"consumer": "c", "type": "T"})
    assert explained_by(_finding("undocumented_event", source="s", detail_type="T",
                                 version="1"))[0] == "undocumented"
    assert explained_by(_finding("pii_exposure", detail_type="T", path="detail.x")) == (
        "contracts", {"view": "pii", "type": "T"})
    assert explained_by(_finding("contract_failure", consumer="c", detail_type="T",
                                 version="1"))[1]["status"] == "fail"
    for kind in KINDS:  # every kind has somewhere to go
        assert explained_by(_finding(kind, consumer="c", detail_type="T"))[0]


def test_trend_compares_the_window_with_the_one_just_before() -> None:
    """Two failures in the hour before, five in the hour: 5 vs 2, a sparkline of both hours
    (48 points) summing to the seven, and the change in words."""
    until = 10 * 3_600_000
    since = until - 3_600_000
    series = pd.Series({since - 50 * MINUTE: 1, since - 5 * MINUTE: 1, since: 2,
                        until - MINUTE: 3, since - 2 * 3_600_000: 9})
    found = trend(series, since, until)
    assert (found.current, found.previous) == (5, 2)
    assert len(found.spark) == 48 and sum(found.spark) == 7
    assert trend_words(found) == "+150 % vs before"


def test_trend_words_name_new_and_quiet_findings() -> None:
    assert trend_words(Trend(3, 0, [])) == "new in this window"
    assert trend_words(Trend(0, 4, [])) == "quiet in this window"
    assert trend_words(Trend(100, 102, [])) == "steady"
    assert trend_words(Trend(7, None, [])) == "all data"


@given(st_.dictionaries(st_.integers(0, 10**7), st_.integers(0, 10**6), max_size=30),
       st_.one_of(st_.none(), st_.integers(0, 10**7)), st_.integers(1, 10**7))
def test_trend_never_raises_and_counts_what_falls_in_each_window(
        points: dict[int, int], since: int | None, span: int) -> None:
    series = pd.Series(points, dtype="int64")
    until = None if since is None else since + span
    found = trend(series, since, until)
    if since is None or until is None:
        assert found.previous is None and found.current == sum(points.values())
    else:
        assert found.current == sum(v for k, v in points.items() if since <= k < until)
        assert found.previous == sum(v for k, v in points.items()
                                     if since - span <= k < since)
        assert sum(found.spark) == found.current + found.previous
    trend_words(found)


def test_ranked_keeps_checks_order_with_owner_link_and_trend() -> None:
    found = [_finding("failure_rate", consumer="invoice-generator", detail_type="OrderPaid",
                      version="2"),
             _finding("processed_twice", "warning", consumer="fraud-check"),
             _finding("contract_failure", consumer="x", detail_type="T", version="1")]
    calls = pd.DataFrame({"consumer": ["invoice-generator"] * 2, "detail_type": ["OrderPaid"] * 2,
                          "outcome": ["error", "ok"], "invocations": [4, 6],
                          "bucket_ms": [0, 0]})
    events = pd.DataFrame({"detail_type": ["OrderPaid"], "count": [10], "bucket_ms": [0]})
    rows = ranked(found, CATALOG, calls, events, None, None)
    assert [r["kind"] for r in rows] == ["failure_rate", "contract_failure", "processed_twice"]
    assert (rows[0]["team"], rows[0]["now"], rows[0]["trend_of"]) == (
        "finance", 4, "failed invocations")
    assert rows[1]["trend"] == "no time series" and rows[1]["spark"] is None


def test_store_check_over_all_data_is_what_check_grades(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Without a window, `store_check` is `eventscope check`'s run; with a window after every
    event, nothing is graded from the data (no failure, no undocumented kind)."""
    url = seed(f"sqlite:///{tmp_path / 's.db'}")
    engine = open_store(url).engine
    found, skipped = store_check(engine, None, None, None, None, Thresholds(), date.today())
    assert {s["kind"] for s in skipped} >= {"undocumented_event", "contract_failure"}
    later, _ = store_check(engine, None, None, None, None, Thresholds(), date.today(),
                           since_ms=4_000_000_000_000, until_ms=4_000_000_600_000)
    assert not [f for f in later if f.kind in ("failure_rate", "final_failures")]
    assert [f for f in found if f.kind in ("failure_rate", "final_failures")]


def test_messages_differing_by_ids_and_numbers_share_a_fingerprint() -> None:
    from eventscope.findings.triage import message_fingerprint
    assert message_fingerprint("Insurer call failed for order ord-000123") == \
        message_fingerprint("Insurer call failed for order ord-987")
    assert message_fingerprint("request 3fa85f64-5717-4562-b3fc-2c963f66afa6 timed out") == \
        "request <uuid> timed out"
    assert message_fingerprint("KeyError: 'totalAmount'") == "KeyError: 'totalAmount'"
    assert message_fingerprint(None) == "(no message)"


def test_message_groups_count_first_and_last_seen_per_fingerprint() -> None:
    from eventscope.findings.triage import message_groups
    calls = pd.DataFrame({"error_message": ["timeout after 30 s", "timeout after 31 s",
                                            "KeyError: 'x'", None],
                          "start_ms": [100, 300, 200, 50]})
    groups = message_groups(calls)
    assert list(groups["fingerprint"]) == ["timeout after <n> s", "KeyError: 'x'",
                                           "(no message)"]
    top = groups.iloc[0]
    assert (top["count"], top["first_ms"], top["last_ms"], top["example"]) == (
        2, 100, 300, "timeout after 31 s")
    assert message_groups(calls.iloc[0:0]).empty


@given(st_.lists(st_.one_of(st_.none(), st_.text(max_size=80)), max_size=20))
def test_message_groups_never_raise_and_account_for_every_failure(
        messages: list[str | None]) -> None:
    from eventscope.findings.triage import message_groups
    calls = pd.DataFrame({"error_message": messages, "start_ms": range(len(messages))})
    assert int(message_groups(calls)["count"].sum()) == len(messages)
