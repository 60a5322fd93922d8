"""Pact message pacts (v2, v3, v4) imported as consumer contracts: real shapes, spellings,
the event-type mapping, refusals, and the `catalog import-pact` command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from eventscope.catalog import writer
from eventscope.catalog.documents import Problem
from eventscope.catalog.loader import CatalogError, load_catalog
from eventscope.catalog.pact import consumer_id, import_pact
from eventscope.cli import main
from eventscope.contracts.checks import verify
from eventscope.errors import InputError

EXAMPLE = Path(__file__).parent.parent / "eventscope" / "demo_catalog"
PACTS = Path(__file__).parent / "data" / "catalog" / "pact"


def _pact(name: str) -> dict:
    return json.loads((PACTS / name).read_text(encoding="utf-8"))


def _valid(schema: dict, instance: object) -> bool:
    return Draft202012Validator(schema).is_valid(instance)


def _v3(*messages: dict, version: str = "3.0.0") -> dict:
    return {"consumer": {"name": "tester"}, "provider": {"name": "p"},
            "messages": list(messages), "metadata": {"pactSpecification": {"version": version}}}


# --- real pacts ------------------------------------------------------------------------------

def test_pact_js_v3_pact_imports_with_types_from_metadata_and_fallback():
    """pact-js (Rust core) v3 pact: the metadata's detail-type decides; a message without one
    falls back to its description, and says so."""
    imported = import_pact(_pact("order-tracker-orders-pactjs-v3.json"), ["OrderShipped"])
    assert imported.consumer.name == "Order-Tracker-web"
    assert [(m.detail_type, m.type_from) for m in imported.messages] == [
        ("OrderCancelled", "metadata 'detail-type'"),
        ("a shipment leaves the warehouse", "the description (fallback)")]
    cancelled = imported.consumer.subscriptions[0]
    assert cancelled.source == "com.shop.orders"
    assert _valid(cancelled.contract, {"cancelledAt": "2027-01-05T23:59:59Z",
                                       "orderId": "ord-1", "reason": "fraud_suspected",
                                       "version": "1"})
    assert not _valid(cancelled.contract, {"cancelledAt": "yesterday", "orderId": "ord-1",
                                           "reason": "fraud_suspected", "version": "1"})


def test_pact_jvm_v4_envelope_message_contracts_the_detail():
    """pact-jvm v4 interaction holding a whole EventBridge event: the contract is about
    `detail`, typed by the envelope's detail-type, with the rules written on `$.detail...`."""
    imported = import_pact(_pact("fraud-check-payments-pactjvm-v4.json"))
    (message,) = imported.messages
    assert (message.detail_type, message.type_from) == (
        "PaymentCaptured", "the body's EventBridge envelope")
    (sub,) = imported.consumer.subscriptions
    assert sub.source == "com.shop.payments"
    detail = _pact("fraud-check-payments-pactjvm-v4.json")["interactions"][0]["contents"][
        "content"]["detail"]
    assert _valid(sub.contract, detail)
    assert _valid(sub.contract, {**detail, "paymentId": "pay-1", "attempts": [],
                                 "amount": {"amount": 12.25, "currency": "USD"}})
    assert not _valid(sub.contract, {**detail, "version": "2"})  # unmatched: equality
    assert "account" not in sub.contract["properties"]


def test_broker_served_v3_pact_with_content_and_pact_specification_spellings():
    """A pact as a broker serves it (`content`, `_links`) with pact-jvm's
    `pact-specification` metadata and `metaData.detailType` imports."""
    imported = import_pact(_pact("crm-notifier-customers-broker-v3.json"))
    assert imported.specification == "3.0.0"
    assert [(m.detail_type, m.type_from) for m in imported.messages] == [
        ("CustomerRegistered", "metadata 'detailType'")]
    contract = imported.consumer.subscriptions[0].contract
    assert _valid(contract, {"customerId": "cus-1", "email": "b@c.d", "marketingOptIn": "false"})
    assert not _valid(contract, {"customerId": "cus-1", "email": "nobody"})


def test_v2_message_pact_with_bare_rules_imports():
    """A v2 message pact (pact-ruby style: one matcher per path, no `match` on `min`)."""
    imported = import_pact(_pact("analytics-sink-orders-pactruby-v2.json"))
    assert imported.consumer.name == "analytics-sink"
    assert [(m.detail_type, m.type_from) for m in imported.messages] == [
        ("OrderPlaced", "metadata 'eventType'")]
    contract = imported.consumer.subscriptions[0].contract
    assert _valid(contract, {"orderId": "ord-7", "lines": [{"sku": "A", "quantity": 3},
                                                           {"sku": "B", "quantity": 1}]})
    assert not _valid(contract, {"orderId": "ord-7", "lines": []})


def test_v3_pact_naming_a_catalogued_type_in_its_description():
    """Without metadata, a catalogued type named in the description is the last resort."""
    imported = import_pact(_pact("warranty-handler-orders-v3.json"),
                           ["OrderCreated", "OrderCancelled"])
    assert [(m.detail_type, m.type_from) for m in imported.messages] == [
        ("OrderCreated", "the description (names a catalogued type; fallback)")]


def test_every_real_pact_accepts_its_own_examples():
    """Every real pact here: each message's own body passes its contract."""
    for name in sorted(PACTS.glob("*.json")):
        pact = json.loads(name.read_text(encoding="utf-8"))
        imported = import_pact(pact)
        assert not imported.refused, (name, imported.refused)
        bodies = [m.get("contents", m.get("content")) for m in pact.get("messages", [])] + [
            i["contents"]["content"] for i in pact.get("interactions", [])]
        bodies = [b["detail"] if "detail-type" in b else b for b in bodies]
        contracts = [s.contract for s in imported.consumer.subscriptions]
        for body in bodies:
            assert any(_valid(c, body) for c in contracts), name


# --- mapping, spellings, bodies -------------------------------------------------------------

def test_event_type_option_wins_over_metadata():
    """--event-type DESCRIPTION=TYPE decides, whatever the metadata says."""
    pact = _v3({"description": "paid", "contents": {"a": 1},
                "metaData": {"detail-type": "OrderPaid"}})
    (message,) = import_pact(pact, event_types={"paid": "PaymentCaptured"}).messages
    assert (message.detail_type, message.type_from) == ("PaymentCaptured", "--event-type")


def test_message_without_a_body_has_no_body_constraint():
    """No `contents`: the contract accepts any detail (not `const: null`)."""
    imported = import_pact(_v3({"description": "ping", "metaData": {"eventType": "Ping"}}))
    (sub,) = imported.consumer.subscriptions
    assert sub.contract == {}
    assert imported.messages[0].notes


def test_v4_body_encoded_as_json_text_is_parsed():
    """A v4 body with `encoded: json` holds JSON text."""
    pact = {"consumer": {"name": "c"}, "metadata": {"pactSpecification": {"version": "4.0"}},
            "interactions": [{"type": "Asynchronous/Messages", "description": "d",
                              "metadata": {"detail-type": "T"},
                              "contents": {"content": "{\"n\": 1}", "encoded": "json",
                                           "contentType": "application/json"}}]}
    (sub,) = import_pact(pact).consumer.subscriptions
    assert _valid(sub.contract, {"n": 1}) and not _valid(sub.contract, {"n": 2})


def test_metadata_spelled_pact_specification_version_flat():
    """`pactSpecificationVersion` (a flat string) is read too."""
    pact = _v3({"description": "d", "contents": {}})
    pact["metadata"] = {"pactSpecificationVersion": "3.0.0"}
    assert import_pact(pact).specification == "3.0.0"


def test_messages_of_one_type_become_one_subscription_accepting_either():
    """Two messages mapped to one event type: one subscription, either body accepted."""
    pact = _v3({"description": "a", "contents": {"kind": "card"}, "metaData": {"eventType": "T"}},
               {"description": "b", "contents": {"kind": "cash"}, "metaData": {"eventType": "T"}})
    (sub,) = import_pact(pact).consumer.subscriptions
    assert _valid(sub.contract, {"kind": "card"}) and _valid(sub.contract, {"kind": "cash"})
    assert not _valid(sub.contract, {"kind": "cheque"})


def test_non_json_and_http_parts_are_refused_with_reasons():
    """A text body and an HTTP interaction are listed as refused; JSON messages import."""
    pact = {"consumer": {"name": "c"}, "metadata": {"pactSpecification": {"version": "4.0"}},
            "interactions": [
                {"type": "Synchronous/HTTP", "description": "get order"},
                {"type": "Asynchronous/Messages", "description": "text",
                 "contents": {"content": "hello", "contentType": "text/plain"}},
                {"type": "Asynchronous/Messages", "description": "json",
                 "metadata": {"eventType": "T"},
                 "contents": {"content": {"a": 1}, "contentType": "application/json"}}]}
    imported = import_pact(pact)
    assert [m.description for m in imported.messages] == ["json"]
    assert any("Synchronous/HTTP" in r for r in imported.refused)
    assert any("text/plain, not JSON" in r for r in imported.refused)


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0", "5.0"])
def test_unsupported_specification_versions_are_refused(version):
    """Pact v1 had no messages; an unknown future version is not guessed at."""
    with pytest.raises(InputError, match="not supported"):
        import_pact(_v3({"description": "d", "contents": {}}, version=version))


def test_a_file_that_is_not_a_message_pact_is_refused():
    """No messages, no interactions, no version: not a pact."""
    with pytest.raises(InputError, match="not a message pact"):
        import_pact({"consumer": {"name": "c"}, "something": []})


@pytest.mark.parametrize(("name", "expected"), [
    ("../../x", "x"), ("Zoo Consumer", "Zoo-Consumer"), ("a/b\\c", "a-b-c"),
    ("crm-notifier", "crm-notifier"), ("Öl & Gas", "Ol-Gas"), (".hidden..name.", "hidden.name"),
])
def test_consumer_names_become_safe_ids(name, expected):
    """A pacticipant name becomes an id that can only name a file inside consumers/."""
    assert consumer_id(name) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_property_consumer_id_never_climbs_out(name):
    """Any name gives an id of letters, digits, `.`, `_`, `-` (no `/`, no `..`), or a clear
    error."""
    try:
        found = consumer_id(name)
    except InputError:
        return
    assert found[0].isalnum() and "/" not in found and ".." not in found
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in found)


# --- the command -----------------------------------------------------------------------------

def _catalog(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(EXAMPLE, target)
    return target


def _run(*args: str):
    return CliRunner().invoke(main, ["catalog", "import-pact", *args])


def test_command_imports_real_pacts_and_says_where_each_type_came_from(tmp_path):
    """The pact-js, pact-jvm, broker and v2 pacts import into the example catalog, which
    still loads; each message line says how its event type was decided."""
    catalog = _catalog(tmp_path)
    result = _run(*(str(p) for p in sorted(PACTS.glob("*.json"))
                    if "warranty" not in p.name and "invoice" not in p.name),
                  "--catalog", str(catalog),
                  "--event-type", "a shipment leaves the warehouse=OrderShipped")
    assert result.exit_code == 0, result.output
    assert "-> OrderShipped (event type from --event-type)" in result.output
    assert "-> OrderCancelled (event type from metadata 'detail-type')" in result.output
    assert "-> PaymentCaptured (event type from the body's EventBridge envelope)" in \
        result.output
    loaded = load_catalog(catalog)
    tracker = next(c for c in loaded.consumers if c.name == "Order-Tracker-web")
    assert {s.detail_type for s in tracker.subscriptions} == {"OrderCancelled", "OrderShipped"}
    assert (catalog / "consumers" / "Order-Tracker-web.yaml").exists()


def test_command_keeps_what_the_catalog_already_declares(tmp_path):
    """Re-importing analytics-sink's pact replaces its OrderPlaced contract only: its other
    subscriptions, functions and rule targets stay."""
    catalog = _catalog(tmp_path)
    before = next(c for c in load_catalog(catalog).consumers if c.name == "analytics-sink")
    result = _run(str(PACTS / "analytics-sink-orders-pactruby-v2.json"), "--catalog",
                  str(catalog))
    assert result.exit_code == 0, result.output
    after = next(c for c in load_catalog(catalog).consumers if c.name == "analytics-sink")
    assert (after.functions, after.rule_targets, after.team) == (
        before.functions, before.rule_targets, before.team)
    assert {s.detail_type for s in after.subscriptions} == {
        s.detail_type for s in before.subscriptions}
    placed = next(s for s in after.subscriptions if s.detail_type == "OrderPlaced")
    assert placed.contract["properties"]["lines"]["minItems"] == 1


def test_a_consumer_named_to_climb_out_writes_inside_consumers(tmp_path):
    """A pact consumer named `../../x` becomes consumers/x.yaml; nothing lands elsewhere."""
    catalog = _catalog(tmp_path)
    pact = _v3({"description": "d", "contents": {"orderId": "ord-1"},
                "metaData": {"detail-type": "OrderCreated"}})
    pact["consumer"]["name"] = "../../x"
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(pact), encoding="utf-8")
    before = {p for p in tmp_path.rglob("*")}
    result = _run(str(path), "--catalog", str(catalog))
    assert result.exit_code == 0, result.output
    assert {p for p in tmp_path.rglob("*")} - before == {catalog / "consumers" / "x.yaml"}
    assert yaml.safe_load((catalog / "consumers" / "x.yaml").read_text())["name"] == "x"


def test_a_message_mapped_to_an_unknown_type_is_an_error_naming_the_fix(tmp_path):
    """A message whose event type the catalog lacks: one line saying where the type came
    from and how to map it; no file changed."""
    catalog = _catalog(tmp_path)
    before = (catalog / "consumers" / "analytics-sink.yaml").read_bytes()
    result = _run(str(PACTS / "order-tracker-orders-pactjs-v3.json"), "--catalog",
                  str(catalog))
    assert result.exit_code != 0
    assert ("maps to 'a shipment leaves the warehouse' (from the description (fallback)), "
            "which the catalog lacks; give --event-type") in result.output
    assert not (catalog / "consumers" / "Order-Tracker-web.yaml").exists()
    assert (catalog / "consumers" / "analytics-sink.yaml").read_bytes() == before


def test_an_import_that_breaks_the_catalog_leaves_it_untouched(tmp_path, monkeypatch):
    """If the written catalog fails to load, nothing changes (the shared import writer checks
    the new catalog beside the old one before moving it into place)."""
    catalog = _catalog(tmp_path)
    before = {p.name: p.read_bytes() for p in (catalog / "consumers").iterdir()}
    calls = []

    def fail(path):
        calls.append(path)
        raise CatalogError(str(path), [Problem("consumers/x.yaml", 1, "name", "planted")])

    monkeypatch.setattr(writer, "load_catalog", fail)
    result = _run(str(PACTS / "analytics-sink-orders-pactruby-v2.json"),
                  str(PACTS / "crm-notifier-customers-broker-v3.json"),
                  str(PACTS / "order-tracker-orders-pactjs-v3.json"), "--catalog", str(catalog),
                  "--event-type", "a shipment leaves the warehouse=OrderShipped")
    assert result.exit_code != 0 and len(calls) == 1 and "planted" in result.output
    assert {p.name: p.read_bytes() for p in (catalog / "consumers").iterdir()} == before
    assert [p.name for p in catalog.parent.iterdir()] == [catalog.name]  # no staging left


def test_an_event_type_option_matching_no_message_is_an_error(tmp_path):
    """A --event-type whose description is in no pact is a mistake, reported before writing."""
    catalog = _catalog(tmp_path)
    result = _run(str(PACTS / "crm-notifier-customers-broker-v3.json"), "--catalog",
                  str(catalog), "--event-type", "a customer registered=CustomerRegistered")
    assert result.exit_code != 0
    assert "no imported message is described 'a customer registered'" in result.output
    assert not list((catalog / "consumers").glob("*.tmp"))


def test_a_malformed_event_type_option_is_an_error(tmp_path):
    """--event-type needs DESCRIPTION=TYPE."""
    result = _run(str(PACTS / "crm-notifier-customers-broker-v3.json"), "--catalog",
                  str(_catalog(tmp_path)), "--event-type", "CustomerRegistered")
    assert result.exit_code != 0 and "expected DESCRIPTION=TYPE" in result.output


def test_imported_pact_is_verified_against_the_producer(tmp_path):
    """The pact is stricter than OrderCreated v1: optional warrantyYears, a tighter orderId
    pattern and an exact version value are each a violation."""
    catalog_dir = _catalog(tmp_path)
    result = _run(str(PACTS / "warranty-handler-orders-v3.json"), "--catalog",
                  str(catalog_dir), "--team", "warranty")
    assert result.exit_code == 0, result.output
    results = verify(load_catalog(catalog_dir), consumer="warranty-handler")
    schema = next(r for r in results if r.check_kind == "schema")
    assert not schema.passed
    assert {(v["path"], v["kind"]) for v in schema.violations} == {
        ("$.items[*].warrantyYears", "REQUIRED_ATTRIBUTE_ADDED"),
        ("$.orderId", "PATTERN_CHANGED"), ("$.version", "ENUM_ARRAY_NARROWED")}
