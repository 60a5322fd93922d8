"""Failure rates, final failures, top errors and bus delivery failures on hand-built data."""

from __future__ import annotations

import pandas as pd
from tests.findings_scenario import T0, attempts_frame, catalog

from eventscope.findings.failures import (delivery_failures, failure_rates, final_failures,
                                          top_errors)
from eventscope.findings.frames import records, resolve_consumers


def _attempts() -> pd.DataFrame:
    return resolve_consumers(attempts_frame(), catalog())


def test_failure_rates_per_consumer_type_and_version_are_exact() -> None:
    """Timeouts count as failures; retries, recoveries and final failures per event."""
    rows = records(failure_rates(_attempts()))
    keyed = {(r["consumer"], r["detail_type"], r["version"]): r for r in rows}
    assert keyed[("Billing", "OrderPaid", "2")] == {
        "consumer": "Billing", "detail_type": "OrderPaid", "version": "2", "invocations": 2,
        "failed": 2, "errors": 0, "timeouts": 2, "rate": 1.0, "events": 1, "retries": 1,
        "retried_then_ok": 0, "final_failures": 1, "p50_ms": 3000.0, "p95_ms": 3000.0}
    assert keyed[("Warranty", "OrderPlaced", "1")] == {
        "consumer": "Warranty", "detail_type": "OrderPlaced", "version": "1", "invocations": 2,
        "failed": 1, "errors": 1, "timeouts": 0, "rate": 0.5, "events": 1, "retries": 1,
        "retried_then_ok": 1, "final_failures": 0, "p50_ms": 60.0, "p95_ms": 69.0}
    assert [(r["consumer"], r["detail_type"]) for r in rows] == [
        ("Billing", "OrderPaid"), ("email-fn", None), ("Warranty", "OrderPlaced"),
        ("Billing", "OrderCancelled"), ("Billing", "OrderPlaced"), ("Billing", None),
        ("Warranty", "OrderPaid")]


def test_unattributed_invocations_count_without_events() -> None:
    """An invocation with no known event counts as an invocation of type None, not an event."""
    row = next(r for r in records(failure_rates(_attempts()))
               if r["consumer"] == "email-fn")
    assert (row["invocations"], row["failed"], row["events"], row["final_failures"]) == (1, 1, 0, 0)


def test_time_buckets_split_invocations_by_start() -> None:
    """With one-minute buckets Warranty's failure and its retry land in different minutes."""
    rows = records(failure_rates(_attempts(), bucket_ms=60_000))
    warranty = [(r["bucket_ms"] - T0 // 60_000 * 60_000, r["invocations"], r["failed"],
                 r["events"]) for r in rows
                if r["consumer"] == "Warranty" and r["detail_type"] == "OrderPlaced"]
    assert sorted(warranty) == [(0, 1, 1, 1), (60_000, 1, 0, 0)]


def test_final_failures_are_events_every_attempt_failed() -> None:
    """Billing's OrderPaid timed out twice; Warranty's OrderPlaced recovered and is not listed."""
    rows = records(final_failures(_attempts()))
    assert rows == [{"consumer": "Billing", "event_id": "e2", "detail_type": "OrderPaid",
                     "version": "2", "attempts": 2, "first_ms": T0 + 61_000,
                     "last_ms": T0 + 62_000,
                     "last_error_type": "Sandbox.Timedout",
                     "last_error_message": "Task timed out after 3.00 seconds"}]


def test_top_errors_give_count_first_message_and_example() -> None:
    """Errors are grouped by type with the earliest message and an example event id."""
    rows = records(top_errors(_attempts()))
    assert [(r["consumer"], r["error_type"], r["count"], r["example_event_id"]) for r in rows] == [
        ("Billing", "Sandbox.Timedout", 2, "e2"), ("Warranty", "ValueError", 1, "e1"),
        ("email-fn", "KeyError", 1, "e-missing")]
    assert rows[1]["first_message"] == "bad sku A-1"


def test_delivery_failures_per_rule_and_target() -> None:
    """Bus delivery logs give attempts, failures and the most frequent error code per target."""
    deliveries = pd.DataFrame([
        {"time_ms": T0, "rule": "r-a", "target": "t1", "event_id": "e1", "outcome": "failed",
         "error_code": "Throttling"},
        {"time_ms": T0 + 1, "rule": "r-a", "target": "t1", "event_id": "e1", "outcome": "ok",
         "error_code": None},
        {"time_ms": T0 + 2, "rule": "r-b", "target": "t2", "event_id": "e2", "outcome": "ok",
         "error_code": None},
    ])
    rows = records(delivery_failures(deliveries))
    assert rows == [
        {"rule": "r-a", "target": "t1", "attempts": 2, "failed": 1, "events": 1, "rate": 0.5,
         "top_error_code": "Throttling"},
        {"rule": "r-b", "target": "t2", "attempts": 1, "failed": 0, "events": 1, "rate": 0.0,
         "top_error_code": None}]
