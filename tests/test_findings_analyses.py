"""Undocumented events, drift, missing subscriptions, duplicates, deprecated, PII, latency."""

from __future__ import annotations

import dataclasses
from datetime import date

import pandas as pd
import pytest
from tests.findings_scenario import (T0, attempts_frame, catalog, events_frame, events_with_detail,
                               rules_frame)

from eventscope.findings.deprecated import deprecated_in_use
from eventscope.findings.duplicates import duplicates_by_consumer, producer_resends
from eventscope.findings.frames import records, resolve_consumers
from eventscope.findings.latency import latency
from eventscope.findings.payloads import payload_sizes, pii_fields, pii_kind, redact
from eventscope.findings.subscriptions import (missing_subscriptions, observed_missing,
                                               static_missing)
from eventscope.findings.undocumented import (schema_drift, summarise_types, undocumented_events,
                                              validate_samples)


def _attempts() -> pd.DataFrame:
    return resolve_consumers(attempts_frame(), catalog())


def test_undocumented_types_and_versions_with_consumers_and_redacted_sample() -> None:
    """ProductViewed is unknown; OrderPaid v2 is an undeclared version; the card is redacted."""
    found = undocumented_events(summarise_types(events_frame()), catalog(), _attempts(),
                                events_with_detail())
    assert [(f["source"], f["detail_type"], f["version"], f["reason"], f["count"],
             f["consumers"]) for f in found] == [
        ("payments", "OrderPaid", "2", "unknown_version", 1, ["Billing", "Warranty"]),
        ("web", "ProductViewed", "1", "unknown_type", 1, [])]
    assert found[0]["sample"] == {"event_id": "e2", "detail": {
        "orderId": "o-1", "version": "2", "card": "[redacted]"}}
    assert (found[1]["first_ms"], found[1]["last_ms"]) == (T0 + 500, T0 + 500)


def test_schema_drift_from_sampled_payloads() -> None:
    """A catalogued v1 payload with a numeric orderId fails its schema; valid ones do not."""
    samples = events_with_detail()
    bad = samples.iloc[[0]].assign(id="e6", detail='{"orderId":5,"version":"1"}')
    conformance = validate_samples(pd.concat([samples, bad]), catalog())
    assert sorted(conformance["event_id"]) == ["e1", "e3", "e6"]  # e2's version has no schema
    assert schema_drift(conformance) == [{
        "source": "shop", "detail_type": "OrderPlaced", "version": "1", "checked": 2,
        "failed": 1, "example_event_id": "e6", "error": "$.orderId: 5 is not of type 'string'"}]


def test_sampled_payloads_with_a_redacted_field_are_not_drift() -> None:
    """An object field the collector replaced with its PII token cannot be checked against
    the object's schema: the sample conforms; a real break beside a token still fails, named
    by the break; a plain string in the object's place is drift."""
    from eventscope.catalog.model import Catalog, EventType, SchemaVersion
    schema = {"type": "object", "required": ["orderId", "shippingAddress"],
              "properties": {"orderId": {"type": "string"},
                             "shippingAddress": {"type": "object"}}}
    shop = Catalog(event_types=(EventType("OrderPlaced", "shop", "team-shop",
                                          versions=(SchemaVersion("1", schema),)),))
    details = {"token": '{"orderId":"o-1","shippingAddress":"pii:catalog:0123456789abcdef"}',
               "both": '{"orderId":5,"shippingAddress":"pii:catalog:0123456789abcdef"}',
               "plain": '{"orderId":"o-1","shippingAddress":"Main Street 1"}'}
    base = events_with_detail().iloc[[0]]
    samples = pd.concat([base.assign(id=name, detail=detail, version="1")
                         for name, detail in details.items()])
    rows = validate_samples(samples, shop).set_index("event_id")
    assert bool(rows.loc["token", "valid"])
    assert not rows.loc["both", "valid"] and rows.loc["both", "error"].startswith("$.orderId")
    assert not rows.loc["plain", "valid"]


def test_static_missing_subscriptions_from_catalog_and_bus_rules() -> None:
    """Consumers acting on order events but not subscribed to a cancellation, per view."""
    found = static_missing(catalog(), rules_frame())
    assert [(f["consumer"], f["detail_type"], f["views"]) for f in found] == [
        ("Billing", "OrderCancelled", ["bus_rules"]),
        ("Billing", "OrderReturned", ["catalog", "bus_rules"]),
        ("Warranty", "OrderCancelled", ["catalog", "bus_rules"]),
        ("Warranty", "OrderReturned", ["catalog", "bus_rules"]),
        ("fraud-fn", "OrderCancelled", ["bus_rules"]),
        ("fraud-fn", "OrderReturned", ["bus_rules"])]
    assert found[2]["subscribed_to"] == ["OrderPaid", "OrderPlaced"]


def test_observed_missing_cancellation_counts_affected_orders() -> None:
    """Warranty handled o-1's earlier events but not its cancellation; Billing did handle it."""
    assert observed_missing(events_frame(), _attempts(), {"OrderCancelled", "OrderReturned"}) == [
        {"consumer": "Warranty", "detail_type": "OrderCancelled", "orders": 1,
         "examples": ["o-1"], "affected": [{"order": "o-1", "event_id": "e3",
                                            "time_ms": T0 + 120_000}]}]


def test_static_and_observed_together_are_stronger_evidence() -> None:
    """The warranty story: declared gap plus data gap merge into one entry saying both."""
    merged = missing_subscriptions(
        static_missing(catalog()),
        observed_missing(events_frame(), _attempts(), {"OrderCancelled"}))
    by_key = {(m["consumer"], m["detail_type"]): m["evidence"] for m in merged}
    assert by_key == {("Billing", "OrderReturned"): "declarations",
                      ("Warranty", "OrderCancelled"): "declarations_and_data",
                      ("Warranty", "OrderReturned"): "declarations"}


def test_second_successful_processing_is_an_idempotency_finding() -> None:
    """A new request id for e1 that succeeds again is a second delivery processed twice."""
    attempts = _attempts()
    again = attempts.iloc[[0]].assign(request_id="r9", start_ms=T0 + 90_000)
    found = duplicates_by_consumer(pd.concat([attempts, again]))
    assert found == [{"consumer": "Billing", "events": 3, "delivered_more_than_once": 1,
                      "processed_twice": 1, "processed_twice_by_type": {"OrderPlaced": 1},
                      "examples": ["e1"]}]


def test_async_retries_with_one_request_id_are_not_duplicates() -> None:
    """Warranty's failed-then-ok retry of e1 reuses the request id: not a duplicate delivery."""
    assert duplicates_by_consumer(_attempts()) == []


def test_producer_resend_under_a_new_event_id() -> None:
    """The same OrderPlaced payload for o-1 sent again as e7 is a re-send group."""
    events = events_with_detail()
    resent = pd.concat([events, events.iloc[[0]].assign(id="e7", time_ms=T0 + 1)])
    assert [(r["detail_type"], r["event_ids"]) for r in producer_resends(resent)] == [
        ("OrderPlaced", ["e1", "e7"])]


def test_deprecated_type_in_use_with_days_past_sunset() -> None:
    """A deprecated OrderPaid still emitted and consumed, 5 days past its sunset."""
    base = catalog()
    types = tuple(dataclasses.replace(t, status="deprecated", sunset=date(2023, 11, 10),
                                      replacement="PaymentCaptured")
                  if t.detail_type == "OrderPaid" else t for t in base.event_types)
    found = deprecated_in_use(dataclasses.replace(base, event_types=types), events_frame(),
                              _attempts(), today=date(2023, 11, 15))
    assert [(f["detail_type"], f["emitted"], f["consumers"], f["days_to_sunset"])
            for f in found] == [("OrderPaid", 1, ["Billing", "Warranty"], -5)]


def test_payload_sizes_against_the_bus_limit() -> None:
    """Sizes per type with their share of EventBridge's 256 KB limit."""
    sizes = payload_sizes(events_frame()).set_index("detail_type")
    assert sizes.loc["OrderPaid", "max_bytes"] == 300 + len(
        '{"orderId":"o-1","version":"2","card":"4111111111111111"}')
    assert (sizes.loc["OrderPaid", "max_share_of_limit"]
            == sizes.loc["OrderPaid", "max_bytes"] / 262144)


def test_pii_fields_detected_and_declared_with_their_receivers() -> None:
    """The e-mail (declared) and the Luhn-valid card (undeclared) reach Billing and Warranty."""
    rows = records(pii_fields(events_with_detail(), _attempts(), catalog()))
    assert [(r["detail_type"], r["path"], r["kind"], r["declared"], r["consumers"])
            for r in rows] == [
        ("OrderPaid", "detail.card", "card", False, ["Billing", "Warranty"]),
        ("OrderPlaced", "detail.email", "email", True, ["Billing", "Warranty"])]


def test_pii_kinds_and_redaction() -> None:
    """Luhn decides cards; order numbers and versions are not PII; redaction keeps shape."""
    assert [pii_kind(v) for v in ("4111 1111 1111 1111", "4111111111111112", "+44 20 7946 0958",
                                  "o-123", "2", 42, "a@b.io", "1234567890")] == [
        "card", None, "phone", None, None, None, "email", None]
    assert redact({"a": [{"e": "x@y.com"}], "n": "ok", "name": "Ann"}, ("detail.name",)) == {
        "a": [{"e": "[redacted]"}], "n": "ok", "name": "[redacted]"}


def test_latency_clips_clock_skew_and_counts_it() -> None:
    """Warranty's OrderPaid invocation 'before' its event counts as skewed with latency 0."""
    rows = {r["consumer"]: r for r in records(latency(_attempts()))}
    assert set(rows) == {"Billing", "Warranty"}  # email-fn's event is unknown
    assert rows["Warranty"] == {
        "consumer": "Warranty", "events": 2, "skewed": 1, "first_p50_ms": 150.0,
        "first_p95_ms": 285.0, "first_max_ms": 300, "success_events": 2,
        "success_p50_ms": 30150.0, "success_p95_ms": 57285.0, "success_max_ms": 60300}
    assert (rows["Billing"]["first_p95_ms"], rows["Billing"]["success_events"],
            rows["Billing"]["success_p95_ms"]) == (pytest.approx(920.0), 2, 195.0)
