"""Consumer contracts verified against producer schemas, examples and stored events."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from eventscope.catalog.loader import load_catalog
from eventscope.catalog.schemas import catalog_registry, contract_uri, validator
from eventscope.cli import main
from eventscope.contracts.checks import ContractResult, live_result, verify
from eventscope.contracts.junit import read_junit, to_junit_xml, write_junit
from eventscope.errors import InputError
from eventscope.events import parse_bus_event

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "eventscope" / "demo_catalog"
DATA = Path(__file__).parent / "data" / "catalog"
CONTRACTS = DATA / "contracts"


def _envelope(event_id: str, detail: dict) -> dict:
    return {"version": "0", "id": event_id, "detail-type": "OrderCreated",
            "source": "com.shop.orders", "account": "123456789012",
            "time": "2026-11-02T09:14:03Z", "region": "eu-west-1", "resources": [],
            "detail": detail}


def _stored_events(store, details: dict[str, dict]) -> None:
    events = []
    for event_id, detail in details.items():
        envelope = _envelope(event_id, detail)
        events.append(parse_bus_event(envelope, len(orjson.dumps(envelope))))
    store.write_batch(events)


GOOD = {"version": "1", "orderId": "ord-1", "customer": {"customerId": "c-1",
                                                          "email": "a@example.com"}, "total": 12}
NO_EMAIL = {"version": "1", "orderId": "ord-2", "customer": {"customerId": "c-2"}, "total": 3}


def test_example_catalog_contracts_all_pass():
    """Every contract of the example catalog holds against its schemas and examples."""
    results = verify(load_catalog(EXAMPLE))
    assert results and all(r.passed for r in results), [r.explain() for r in results
                                                       if not r.passed]
    assert {r.check_kind for r in results} == {"schema", "examples"}


def test_example_contracts_cover_every_accepted_version():
    """invoice-generator accepts OrderPaid 1 and 2: both versions are checked."""
    results = verify(load_catalog(EXAMPLE), consumer="invoice-generator")
    assert {r.version for r in results if r.detail_type == "OrderPaid"} == {"1", "2"}


def test_structural_check_explains_each_violation_with_its_json_path():
    """A contract needing an optional field, or a narrower type, fails with JSON paths."""
    (schema,) = [r for r in verify(load_catalog(CONTRACTS), consumer="crm-notifier")
                 if r.check_kind == "schema"]
    assert not schema.passed
    assert {(v["path"], v["kind"]) for v in schema.violations} == {
        ("$.customer.email", "REQUIRED_ATTRIBUTE_ADDED"), ("$.total", "TYPE_NARROWED")}


def test_example_check_reports_each_failing_example():
    """Both producer examples break crm-notifier's contract, each explained."""
    (examples,) = [r for r in verify(load_catalog(CONTRACTS), consumer="crm-notifier")
                   if r.check_kind == "examples"]
    assert examples.summary == {"checked": 2, "failing": 2}
    assert "example 0: $.total: 12.5 is not of type 'integer'" in examples.explain()


def test_results_carry_revision_and_time():
    """Each result records the catalog revision and the time of the run."""
    catalog = load_catalog(CONTRACTS)
    results = verify(catalog, now_ms=1_700_000_000_000)
    assert {(r.catalog_revision, r.checked_ms) for r in results} == {
        (catalog.revision, 1_700_000_000_000)}


def test_live_check_counts_failures_and_names_the_first():
    """Stored events are counted; the first failing one is named with its error path."""
    catalog = load_catalog(CONTRACTS)
    contract = validator(contract_uri("crm-notifier", "OrderCreated"), catalog_registry(catalog))
    events = [("e1", json.dumps(GOOD)), ("e2", json.dumps(NO_EMAIL)), ("e3", json.dumps(NO_EMAIL))]
    result = live_result(("crm-notifier", "OrderCreated", "1"), events, contract)
    assert not result.passed
    assert result.summary == {"checked": 3, "failing": 2, "first_failing_event_id": "e2"}
    assert result.violations[0]["path"] == "$.customer"


def test_verify_against_the_store_stores_results_with_history(store_url):
    """`contracts verify --db` checks stored traffic and appends results on each run."""
    from eventscope.store import open_store
    store = open_store(store_url)
    _stored_events(store, {"e1": GOOD, "e2": NO_EMAIL})
    args = ["contracts", "verify", "--catalog", str(CONTRACTS), "--db", store_url]
    first = CliRunner().invoke(main, args + ["--consumer", "analytics-sink"])
    assert first.exit_code == 0, first.output
    assert "OrderCreated v1 live (2 checked, 0 failing)" in first.output
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 1
    rows = store.contract_results()
    assert len(rows) == 3 + 6
    latest = {(r["consumer"], r["check_kind"]): r for r in store.contract_results(latest_only=True)}
    live = ContractResult.from_row(latest[("crm-notifier", "live")])
    assert live.summary["first_failing_event_id"] == "e2" and not live.passed
    store.engine.dispose()


def test_cli_verify_writes_junit_and_exits_1(tmp_path):
    """A failing contract gives exit 1, a JUnit file with one failure per failed check."""
    junit = tmp_path / "contracts.xml"
    result = CliRunner().invoke(main, ["contracts", "verify", "--catalog", str(CONTRACTS),
                                       "--no-live", "--junit", str(junit)])
    assert result.exit_code == 1
    assert "FAIL crm-notifier: OrderCreated v1 schema" in result.output
    assert "$.customer.email" in result.output
    parsed = read_junit(junit)
    assert sorted((r.consumer, r.name, r.passed) for r in parsed) == [
        ("analytics-sink", "OrderCreated v1 examples", True),
        ("analytics-sink", "OrderCreated v1 schema", True),
        ("crm-notifier", "OrderCreated v1 examples", False),
        ("crm-notifier", "OrderCreated v1 schema", False)]


def test_cli_verify_json_and_unknown_consumer():
    """--json returns the results; an unknown consumer is a one-line error."""
    ok = CliRunner().invoke(main, ["contracts", "verify", "--catalog", str(EXAMPLE),
                                   "--no-live", "--consumer", "warranty-handler", "--json"])
    data = json.loads(ok.stdout)
    assert ok.exit_code == 0 and data["passed"] is True and len(data["results"]) == 2
    bad = CliRunner().invoke(main, ["contracts", "verify", "--catalog", str(EXAMPLE),
                                    "--no-live", "--consumer", "nobody"])
    assert bad.exit_code == 2 and "no consumer 'nobody'" in bad.output


def test_junit_round_trip_keeps_every_result(tmp_path):
    """Results written as JUnit XML read back as the same checks and outcomes."""
    results = verify(load_catalog(CONTRACTS))
    write_junit(results, tmp_path / "out.xml")
    back = read_junit(tmp_path / "out.xml")
    key = lambda r: (r.consumer, r.detail_type, r.version, r.check_kind, r.passed)  # noqa: E731
    assert sorted(map(key, back)) == sorted(map(key, results))


def test_ingest_foreign_junit_stores_results(store_url):
    """JUnit from a team's own pipeline (pytest format) is stored beside ours."""
    from eventscope.store import open_store
    path = DATA / "junit" / "warranty-pipeline.xml"
    result = CliRunner().invoke(main, ["contracts", "ingest-junit", str(path), "--db", store_url,
                                       "--consumer", "warranty-handler", "--revision", "abc"])
    assert result.exit_code == 0, result.output
    assert "stored 3 result(s)" in result.output and "(1 failed)" in result.output
    store = open_store(store_url)
    rows = {r["detail_type"]: r for r in store.contract_results()}
    assert rows["test_handles_order_cancelled"]["passed"] is False
    assert rows["test_handles_order_cancelled"]["origin"] == "junit:warranty-pipeline.xml"
    assert {r["consumer"] for r in rows.values()} == {"warranty-handler"}
    store.engine.dispose()


def test_ingest_junit_refuses_non_junit(tmp_path):
    """A file that is not JUnit XML is a clear input error."""
    (tmp_path / "x.xml").write_text("<html><body/></html>")
    with pytest.raises(InputError, match="not JUnit XML"):
        read_junit(tmp_path / "x.xml")
    (tmp_path / "y.xml").write_text("{not xml")
    with pytest.raises(InputError, match="is not XML"):
        read_junit(tmp_path / "y.xml")


def test_junit_xml_escapes_untrusted_messages():
    """Violation text with markup is escaped in the XML, never interpreted."""
    result = ContractResult("c", "T", "1", "live", False,
                            ({"path": "$", "message": "<script>x</script> & more"},))
    xml = to_junit_xml([result]).decode()
    assert "&lt;script&gt;" in xml and "<script>" not in xml
