"""`check`: thresholds, graded findings and their JSON shape, on the hand-built scenario."""

from __future__ import annotations

import dataclasses
from datetime import date

import pandas as pd
import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventscope.findings.check import (KINDS, LATENCY_BY, CheckInputs, ConfigError, Finding,
                                       Thresholds, latency_findings, parse_thresholds, run_check)
from eventscope.findings.frames import ATTEMPT_COLUMNS, records, resolve_consumers
from eventscope.findings.latency import PAIR_COLUMNS, latency
from eventscope.findings.undocumented import summarise_types
from tests.findings_scenario import (attempts_frame, catalog, events_frame, events_with_detail,
                                     rules_frame)


def _inputs(with_catalog: bool = True, **extra) -> CheckInputs:
    cat = catalog() if with_catalog else None
    return CheckInputs(events=events_frame(),
                       attempts=resolve_consumers(attempts_frame(), cat),
                       type_summary=summarise_types(events_frame()),
                       samples=events_with_detail(), **extra)


def _kinds(found: list[Finding]) -> list[tuple[str, str, dict]]:
    return [(f.kind, f.severity, f.subject) for f in found]


def test_every_kind_found_with_its_severity_and_subject() -> None:
    """With low thresholds the scenario yields each kind once where the data supports it."""
    contracts = pd.DataFrame([{"consumer": "Warranty", "detail_type": "OrderPaid",
                               "version": "2", "passed": False, "reason": "orderId removed"}])
    inputs = _inputs(subscriptions=rules_frame(), contract_results=contracts)
    inputs.latency = latency(inputs.attempts, by=LATENCY_BY)
    found, skipped = run_check(inputs, catalog(), Thresholds(
        min_invocations=2, latency_min_events=1, latency_p95_warning_ms=500), date(2023, 11, 15))
    assert skipped == []
    assert ("undocumented_event", "error",
            {"source": "web", "detail_type": "ProductViewed", "version": "1"}) in _kinds(found)
    assert ("failure_rate", "error",
            {"consumer": "Billing", "detail_type": "OrderPaid", "version": "2"}) in _kinds(found)
    assert ("final_failures", "warning",
            {"consumer": "Billing", "detail_type": "OrderPaid"}) in _kinds(found)
    assert ("missing_subscription", "error",
            {"consumer": "Warranty", "detail_type": "OrderCancelled"}) in _kinds(found)
    assert ("pii_exposure", "error",
            {"detail_type": "OrderPaid", "path": "detail.card"}) in _kinds(found)
    assert ("pii_exposure", "warning",
            {"detail_type": "OrderPlaced", "path": "detail.email"}) in _kinds(found)
    assert ("contract_failure", "error", {"consumer": "Warranty", "detail_type": "OrderPaid",
                                          "version": "2"}) in _kinds(found)
    assert ("latency_p95", "warning", {"consumer": "Billing", "detail_type": "OrderPaid"}) \
        in _kinds(found)
    assert {f.kind for f in found} <= set(KINDS)
    assert [f.severity for f in found] == sorted((f.severity for f in found),
                                                 key=["error", "warning", "info"].index)


def test_failure_rate_below_minimum_invocations_is_not_a_finding() -> None:
    """Two invocations are too few under the default minimum of 20."""
    found, _ = run_check(_inputs(), catalog(), Thresholds(), date(2023, 11, 15))
    assert "failure_rate" not in {f.kind for f in found}


def test_without_catalog_catalog_kinds_are_skipped_and_say_so() -> None:
    """No catalog: undocumented, drift and deprecated are listed as skipped with a reason."""
    found, skipped = run_check(_inputs(with_catalog=False), None, Thresholds(), date.today())
    assert [s["kind"] for s in skipped] == ["undocumented_event", "schema_drift",
                                            "deprecated_in_use", "contract_failure",
                                            "latency_p95"]
    assert "no catalog" in skipped[0]["reason"]
    assert ("missing_subscription", "warning",
            {"consumer": "warranty-fn", "detail_type": "OrderCancelled"}) in _kinds(found)


def test_processed_twice_and_schema_drift_and_deprecated_grading() -> None:
    """A second success, a bad payload and a type 40 days past its sunset are graded."""
    inputs = _inputs()
    inputs.attempts = pd.concat([inputs.attempts, inputs.attempts.iloc[[0]].assign(
        request_id="r9", start_ms=inputs.attempts["start_ms"].max() + 1)])
    inputs.samples = pd.concat([inputs.samples, inputs.samples.iloc[[0]].assign(
        id="e6", detail='{"orderId":5,"version":"1"}')])
    base = catalog()
    types = tuple(dataclasses.replace(t, status="deprecated", sunset=date(2023, 10, 6))
                  if t.detail_type == "OrderCancelled" else t for t in base.event_types)
    found, _ = run_check(inputs, dataclasses.replace(base, event_types=types),
                         Thresholds(sunset_grace_days=30), date(2023, 11, 15))
    kinds = _kinds(found)
    assert ("processed_twice", "warning", {"consumer": "Billing"}) in kinds
    assert ("schema_drift", "error", {"source": "shop", "detail_type": "OrderPlaced",
                                      "version": "1"}) in kinds
    assert ("deprecated_in_use", "error", {"source": "shop",
                                           "detail_type": "OrderCancelled"}) in kinds


def test_pii_allowed_downgrades_pii_to_info() -> None:
    found, _ = run_check(_inputs(), catalog(), Thresholds(pii_allowed=True), date(2023, 11, 15))
    assert {f.severity for f in found if f.kind == "pii_exposure"} == {"info"}


def test_thresholds_yaml_is_parsed_and_validated() -> None:
    """Nested keys map to thresholds; unknown keys and wrong types are one-line errors."""
    parsed = parse_thresholds({"fail_on": "warning", "failure_rate": {"error": 1,
                                                                      "min_invocations": 5},
                               "pii_allowed": True})
    assert (parsed.fail_on, parsed.failure_rate_error, parsed.min_invocations,
            parsed.pii_allowed) == ("warning", 1.0, 5, True)
    with pytest.raises(ConfigError, match="unknown setting failure_rate.eror"):
        parse_thresholds({"failure_rate": {"eror": 0.1}})
    with pytest.raises(ConfigError, match="min_invocations must be int"):
        parse_thresholds({"failure_rate": {"min_invocations": "many"}})
    with pytest.raises(ConfigError, match="fail_on must be one of"):
        parse_thresholds({"fail_on": "fatal"})


def test_fingerprint_depends_on_kind_and_subject_only() -> None:
    a = Finding("pii_exposure", "error", {"detail_type": "X", "path": "p"}, "one")
    b = Finding("pii_exposure", "warning", {"path": "p", "detail_type": "X"}, "two")
    c = Finding("schema_drift", "error", {"detail_type": "X", "path": "p"}, "one")
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_failure_rate_texts_name_the_version() -> None:
    """The rate is per version, so the text says which: 'of OrderPaid v2'."""
    found, _ = run_check(_inputs(), catalog(), Thresholds(min_invocations=1), date(2023, 11, 15))
    texts = {(f.subject["consumer"], f.subject["detail_type"]): f.summary
             for f in found if f.kind == "failure_rate"}
    assert texts[("Billing", "OrderPaid")] == \
        "Billing failed 2 of 2 invocations of OrderPaid v2 (100.0%)"
    assert texts[("email-fn", None)] == \
        "email-fn failed 1 of 1 invocations of no event type (100.0%)"


def _latency_row(p95: float, events: int = 50) -> dict:
    return {"detail_type": "OrderPaid", "consumer": "billing", "events": events, "skewed": 0,
            "first_p50_ms": p95 / 2, "first_p95_ms": p95, "first_max_ms": p95,
            "success_events": events, "success_p50_ms": None, "success_p95_ms": None,
            "success_max_ms": None}


@pytest.mark.parametrize(("p95", "events", "severity"), [
    (59_999.0, 50, None), (60_000.0, 50, "warning"), (899_999.0, 50, "warning"),
    (900_000.0, 50, "error"), (900_000.0, 19, None), (None, 50, None)])
def test_latency_p95_is_graded_against_its_thresholds(p95, events, severity) -> None:
    """Defaults: warning from 60 s, error from 15 min, only with 20 events or more."""
    row = _latency_row(p95 or 0.0, events) | {"first_p95_ms": p95}
    found = latency_findings(pd.DataFrame([row], columns=PAIR_COLUMNS), Thresholds())
    assert [f.severity for f in found] == ([severity] if severity else [])
    if severity:
        assert found[0].subject == {"consumer": "billing", "detail_type": "OrderPaid"}
        assert found[0].summary.startswith("billing starts on OrderPaid ")


def test_latency_thresholds_come_from_the_yaml_file() -> None:
    parsed = parse_thresholds({"latency_p95_ms": {"warning": 500, "error": 5000,
                                                  "min_events": 3}})
    assert (parsed.latency_p95_warning_ms, parsed.latency_p95_error_ms,
            parsed.latency_min_events) == (500.0, 5000.0, 3)
    with pytest.raises(ConfigError, match="unknown setting latency_p95_ms.warn"):
        parse_thresholds({"latency_p95_ms": {"warn": 1}})


_attempt = st.fixed_dictionaries({
    "consumer": st.sampled_from(["a", "b", None]),
    "detail_type": st.sampled_from(["X", "Y", None]),
    "event_id": st.sampled_from(["e1", "e2", "e3", None]),
    "outcome": st.sampled_from(["ok", "error", "timeout"]),
    "start_ms": st.integers(0, 10_000),
})


def _attempts(rows: list[dict], times: dict[str, int | None]) -> pd.DataFrame:
    """Attempts-shaped rows; an event's time is the same on each of its attempts."""
    full = [{c: None for c in ATTEMPT_COLUMNS} | r
            | {"event_time_ms": times.get(r["event_id"]) if r["event_id"] else None}
            for r in rows]
    return pd.DataFrame(full, columns=ATTEMPT_COLUMNS)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_attempt, max_size=30),
       st.dictionaries(st.sampled_from(["e1", "e2", "e3"]),
                       st.one_of(st.none(), st.integers(0, 10_000))))
def test_latency_never_raises_and_gives_the_right_percentiles(rows, times) -> None:
    """Any attempts (none, unattributed, missing keys): a table; p50/p95/max per pair are the
    percentiles of (first start - event time) clipped at 0, counted by hand here."""
    frame = _attempts(rows, times)
    table = latency(frame, by=LATENCY_BY)
    assert list(table.columns) == PAIR_COLUMNS
    latency(frame)  # the per-consumer form too
    firsts: dict[tuple, dict[str, int]] = {}
    for r in rows:
        t = times.get(r["event_id"]) if r["event_id"] else None
        if t is None or r["consumer"] is None or r["detail_type"] is None:
            continue
        per = firsts.setdefault((r["detail_type"], r["consumer"]), {})
        per[r["event_id"]] = min(per.get(r["event_id"], r["start_ms"]), r["start_ms"])
    expected = {}
    for pair, per in firsts.items():
        values = pd.Series([max(0, start - times[e]) for e, start in per.items()], dtype=float)
        expected[pair] = (len(per), values.quantile(0.5), values.quantile(0.95), values.max())
    got = {(r["detail_type"], r["consumer"]): (r["events"], r["first_p50_ms"],
                                               r["first_p95_ms"], r["first_max_ms"])
           for r in records(table)}
    assert got.keys() == expected.keys()
    for pair, want in expected.items():
        assert got[pair] == pytest.approx(want)
    latency_findings(table, Thresholds(latency_min_events=1))  # grading never raises either
