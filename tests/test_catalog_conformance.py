"""Live conformance: stored events checked against their version's schema, drift as data."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from click.testing import CliRunner

from eventscope.catalog.loader import load_catalog
from eventscope.cli import main
from eventscope.contracts.conformance import ConformanceChecker, check_conformance
from eventscope.events import parse_bus_event

EXAMPLE = Path(__file__).parent.parent / "eventscope" / "demo_catalog"
CATALOG = load_catalog(EXAMPLE)
PAID_V1 = CATALOG.event_type("OrderPaid").version("1").examples[0]
PAID_V2 = CATALOG.event_type("OrderPaid").version("2").examples[0]


def _row(event_id: str, detail: dict, time_ms: int = 1000, detail_type: str = "OrderPaid",
         source: str = "com.shop.payments") -> tuple:
    return (event_id, source, detail_type, time_ms, json.dumps(detail))


def test_valid_events_of_each_version_conform():
    """Examples of OrderPaid v1 and v2 are counted under their own version, no drift."""
    drift = check_conformance(CATALOG, [_row("a", PAID_V1), _row("b", PAID_V2),
                                        _row("c", PAID_V2)])
    assert [(d.version, d.checked, d.failing) for d in drift] == [("1", 1, 0), ("2", 2, 0)]


def test_drift_records_counts_first_and_last_failure_and_first_error():
    """Failing events give counts, first/last failure times and the earliest error's path."""
    bad = {**PAID_V1, "amount": {"amount": 10, "currency": "euro"}}
    rows = [_row("late", bad, 3000), _row("early", bad, 1000), _row("ok", PAID_V1, 2000)]
    (drift,) = check_conformance(CATALOG, rows)
    assert (drift.checked, drift.failing) == (3, 2)
    assert (drift.first_failure_ms, drift.last_failure_ms) == (1000, 3000)
    assert drift.first_event_id == "early"
    assert drift.first_error.startswith("$.amount.currency: 'euro' does not match")


def test_unknown_version_is_drift():
    """An event claiming a version the catalog lacks is drift, with the known versions named."""
    (drift,) = check_conformance(CATALOG, [_row("x", {**PAID_V2, "version": "3"})])
    assert drift.unknown_version and drift.failing == 1
    assert "version '3' is not in the catalog (known: 1, 2)" in drift.first_error


def test_uncatalogued_types_are_ignored():
    """Events of types the catalog lacks are left to the undocumented-events finding."""
    assert check_conformance(CATALOG, [_row("x", {}, detail_type="Mystery")]) == []


def test_validators_are_compiled_once_per_type_and_version():
    """Many events of one version reuse a single compiled validator."""
    checker = ConformanceChecker(CATALOG)
    for index in range(50):
        checker.feed(f"e{index}", "com.shop.payments", "OrderPaid", index, json.dumps(PAID_V2))
    assert list(checker._compiled) == [("OrderPaid", "2")]


def test_detail_type_suffix_versions(tmp_path):
    """A type with version-from detail-type-suffix reads OrderShipped.v1 as version 1."""
    import shutil
    copy = tmp_path / "catalog"
    shutil.copytree(EXAMPLE, copy)
    path = copy / "events" / "OrderShipped.yaml"
    path.write_text(path.read_text().replace("owner: logistics",
                                             "owner: logistics\nversion-from: detail-type-suffix"))
    shipped = load_catalog(copy).event_type("OrderShipped").version("1").examples[0]
    (drift,) = check_conformance(load_catalog(copy), [
        _row("s", shipped, detail_type="OrderShipped.v1", source="com.shop.logistics")])
    assert (drift.detail_type, drift.version, drift.failing) == ("OrderShipped", "1", 0)


def test_cli_conformance_reports_drift_from_the_store(store_url):
    """`catalog conformance --json` reads the store; --strict exits 1 on drift."""
    from eventscope.store import open_store
    store = open_store(store_url)
    events = []
    for event_id, detail in (("good", PAID_V1), ("bad", {**PAID_V1, "paymentId": 7})):
        envelope = {"version": "0", "id": event_id, "detail-type": "OrderPaid",
                    "source": "com.shop.payments", "time": "2026-11-02T09:15:41Z",
                    "account": "123456789012", "region": "eu-west-1", "resources": [],
                    "detail": detail}
        events.append(parse_bus_event(envelope, len(orjson.dumps(envelope))))
    store.write_batch(events)
    args = ["catalog", "conformance", "--catalog", str(EXAMPLE), "--db", store_url]
    result = CliRunner().invoke(main, args + ["--json"])
    assert result.exit_code == 0, result.output
    (drift,) = json.loads(result.stdout)["drift"]
    assert (drift["checked"], drift["failing"], drift["first_event_id"]) == (2, 1, "bad")
    assert drift["first_error"] == "$.paymentId: 7 is not of type 'string'"
    assert CliRunner().invoke(main, args + ["--strict"]).exit_code == 1
    store.engine.dispose()


def test_unversioned_event_of_a_single_version_type_uses_that_version():
    """A legacy event without detail.version is read as its type's only version."""
    captured = CATALOG.event_type("PaymentCaptured").version("1").examples[0]
    (drift,) = check_conformance(CATALOG, [_row("p", captured, detail_type="PaymentCaptured")])
    assert (drift.version, drift.failing) == ("1", 0)


CREATED = CATALOG.event_type("OrderCreated")
CREATED_V1 = CREATED.versions[0].examples[0]


def test_a_field_the_collector_redacted_to_its_token_is_not_drift():
    """The demo collects OrderCreated with its declared PII object `shippingAddress` made one
    token: the token cannot be checked against the object's schema, and the producer did not
    drift; the rest of the payload is still checked."""
    redacted = {**CREATED_V1, "shippingAddress": "pii:catalog:55d609a1c806f88f"}
    (drift,) = check_conformance(CATALOG, [_row("a", redacted, detail_type="OrderCreated",
                                                source=CREATED.source)])
    assert (drift.checked, drift.failing) == (1, 0)


def test_a_redacted_field_does_not_hide_a_real_break_beside_it():
    """A token in one field, a wrong type in another: still drift, named by the real break."""
    broken = {**CREATED_V1, "shippingAddress": "pii:catalog:55d609a1c806f88f",
              "orderId": 12345}
    (drift,) = check_conformance(CATALOG, [_row("a", broken, detail_type="OrderCreated",
                                                source=CREATED.source)])
    assert drift.failing == 1 and drift.first_error.startswith("$.orderId")


def test_a_token_where_the_schema_wants_no_token_shape_is_not_taken_for_one():
    """Only values starting with the token prefix count as redacted: a plain wrong string in
    an object's place is drift."""
    broken = {**CREATED_V1, "shippingAddress": "Main Street 1"}
    (drift,) = check_conformance(CATALOG, [_row("a", broken, detail_type="OrderCreated",
                                                source=CREATED.source)])
    assert drift.failing == 1
