"""`check`: thresholds, graded findings and their JSON shape, on the hand-built scenario."""

from __future__ import annotations

import dataclasses
from datetime import date

import pandas as pd
import pytest

from eventscope.findings.check import (KINDS, CheckInputs, ConfigError, Finding, Thresholds,
                                       parse_thresholds, run_check)
from eventscope.findings.frames import resolve_consumers
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
    found, skipped = run_check(_inputs(subscriptions=rules_frame(), contract_results=contracts),
                               catalog(), Thresholds(min_invocations=2), date(2023, 11, 15))
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
                                            "deprecated_in_use", "contract_failure"]
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
