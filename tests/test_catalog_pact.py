"""Pact message pacts (v3, v4) imported as consumer contracts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventscope.catalog.loader import load_catalog
from eventscope.catalog.pact import contract_schema, import_pact
from eventscope.cli import main
from eventscope.contracts.checks import verify
from eventscope.errors import InputError

EXAMPLE = Path(__file__).parent.parent / "examples" / "catalog"
PACTS = Path(__file__).parent / "data" / "catalog" / "pact"
V3 = json.loads((PACTS / "warranty-handler-orders-v3.json").read_text())
V4 = json.loads((PACTS / "invoice-generator-payments-v4.json").read_text())


def test_v3_message_becomes_a_contract_named_by_its_description():
    """A v3 message naming OrderCreated in its description subscribes to OrderCreated."""
    consumer = import_pact(V3, ["OrderCreated", "OrderCancelled"])
    (sub,) = consumer.subscriptions
    assert (consumer.name, sub.detail_type) == ("warranty-handler", "OrderCreated")


def test_matching_rules_decide_strictness():
    """regex -> pattern, type with min -> minItems, integer -> integer, no rule -> const."""
    (sub,) = import_pact(V3, ["OrderCreated"]).subscriptions
    props = sub.contract["properties"]
    assert props["orderId"] == {"type": "string", "pattern": "^ord-\\d+$"}
    assert props["items"]["minItems"] == 1
    assert props["items"]["items"]["properties"]["warrantyYears"] == {"type": "integer"}
    assert props["version"] == {"const": "1"}
    assert sub.contract["required"] == ["orderId", "items", "version"]


def test_v4_envelope_message_contracts_the_detail():
    """A v4 message holding a whole envelope gives a contract on detail, typed by detail-type."""
    (sub,) = import_pact(V4).subscriptions
    assert (sub.detail_type, sub.source) == ("OrderPaid", "com.shop.payments")
    assert sub.contract["properties"]["amount"]["properties"]["currency"]["pattern"] == \
        "^[A-Z]{3}$"
    assert "id" not in sub.contract["properties"]


def test_array_without_rules_is_compared_by_equality():
    """Without matching rules Pact compares values exactly, so the schema is a const."""
    assert contract_schema({"tags": ["a"]}, {}) == {
        "type": "object", "required": ["tags"],
        "properties": {"tags": {"type": "array", "items": {"const": "a"}, "const": ["a"]}}}


def test_non_pact_input_is_refused():
    """A file without pactSpecification 3 or 4 is a clear error."""
    with pytest.raises(InputError, match="not a Pact v3/v4 file"):
        import_pact({"consumer": {"name": "x"}, "metadata": {"pactSpecification":
                                                            {"version": "2.0.0"}}})


def test_imported_pact_is_verified_against_the_producer(tmp_path):
    """The pact is stricter than OrderCreated v1: optional warrantyYears, a tighter orderId
    pattern and an exact version value are each a violation."""
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(EXAMPLE, catalog_dir)
    result = CliRunner().invoke(main, ["catalog", "import-pact", str(PACTS / "warranty-handler-"
                                       "orders-v3.json"), "--catalog", str(catalog_dir),
                                       "--team", "warranty"])
    assert result.exit_code == 0, result.output
    results = verify(load_catalog(catalog_dir), consumer="warranty-handler")
    schema = next(r for r in results if r.check_kind == "schema")
    assert not schema.passed
    assert {(v["path"], v["kind"]) for v in schema.violations} == {
        ("$.items[*].warrantyYears", "REQUIRED_ATTRIBUTE_ADDED"),
        ("$.orderId", "PATTERN_CHANGED"), ("$.version", "ENUM_ARRAY_ADDED")}
