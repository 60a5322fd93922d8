"""Loading catalog folders: the example catalog, and every kind of mistake reported at once."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from eventscope.catalog.loader import CatalogError, format_schema, load_catalog
from eventscope.catalog.schemas import catalog_registry, validator, version_uri
from eventscope.cli import main

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "eventscope" / "demo_catalog"
BROKEN = Path(__file__).parent / "data" / "catalog" / "broken"


@pytest.fixture(scope="module")
def example():
    return load_catalog(EXAMPLE)


def _problems(path: Path) -> list:
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    return caught.value.problems


def test_format_schema_is_a_valid_draft_2020_12_schema():
    """The shipped catalog-format schema is itself a valid JSON Schema."""
    Draft202012Validator.check_schema(format_schema())


def test_example_catalog_declares_the_demo_company(example):
    """The example has ≥12 event types over six sources and the six simulator consumers."""
    assert len(example.event_types) >= 12
    assert {t.source for t in example.event_types} == {
        "com.shop.orders", "com.shop.payments", "com.shop.logistics", "com.shop.finance",
        "com.shop.warranty", "com.shop.crm"}
    assert {c.name for c in example.consumers} == {
        "crm-notifier", "warranty-handler", "invoice-generator", "shipping-label",
        "analytics-sink", "fraud-check"}


def test_example_order_paid_has_two_versions(example):
    """OrderPaid is declared in versions 1 and 2 under the default FULL_TRANSITIVE mode."""
    order_paid = example.event_type("OrderPaid")
    assert [v.version for v in order_paid.versions] == ["1", "2"]
    assert order_paid.compatibility == "FULL_TRANSITIVE"


def test_example_has_a_deprecated_type_past_its_sunset(example):
    """PaymentCaptured is deprecated, replaced by OrderPaid, its sunset already passed."""
    captured = example.event_type("PaymentCaptured")
    assert captured.status == "deprecated" and captured.replacement == "OrderPaid"
    assert captured.sunset < date(2026, 11, 1)


def test_example_warranty_handler_misses_the_order_cancellations(example):
    """The article's bug: warranty acts on OrderCreated but hears no cancellation."""
    order = next(lc for lc in example.lifecycles if lc.name == "order")
    assert set(order.cancellations) == {"OrderCancelled", "OrderReturned"}
    warranty = next(c for c in example.consumers if c.name == "warranty-handler")
    assert warranty.subscribes_to("OrderCreated")
    assert not any(warranty.subscribes_to(t) for t in order.cancellations)


def test_example_refs_resolve_to_shared_schemas_offline(example):
    """OrderCreated's `$ref: money.json` resolves to schemas/money.yaml through the registry."""
    check = validator(version_uri("OrderCreated", "1"), catalog_registry(example))
    good = example.event_type("OrderCreated").version("1").examples[0]
    bad = {**good, "total": {"amount": 1, "currency": "euro"}}
    assert check.is_valid(good)
    assert [e.json_path for e in check.iter_errors(bad)] == ["$.total.currency"]


def test_example_revision_is_a_content_hash(example, tmp_path):
    """The revision changes when any file changes, and only then."""
    copy = tmp_path / "catalog"
    shutil.copytree(EXAMPLE, copy)
    assert load_catalog(copy).revision == example.revision
    (copy / "events" / "OrderShipped.yaml").write_text(
        (copy / "events" / "OrderShipped.yaml").read_text() + "\n# edited\n")
    assert load_catalog(copy).revision != example.revision


def test_broken_catalog_reports_every_mistake_with_file_line_and_field():
    """All mistakes come back at once, each as file:line field with what was expected."""
    found = {(p.file, p.line, p.field) for p in _problems(BROKEN)}
    assert found == {
        ("consumers/warranty-handler.yaml", 4, "colour"),
        ("consumers/warranty-handler.yaml", 6, "subscriptions[0].event"),
        ("consumers/warranty-handler.yaml", 8, "subscriptions[1].versions[0]"),
        ("events/Bad.yaml", 5, ""),
        ("events/OrderCreated.yaml", 1, "owner"),
        ("events/OrderCreated.yaml", 4, "status"),
        ("events/OrderCreated.yaml", 8, "versions[0].schema"),
        ("events/OrderPaid.yaml", 17, "versions[1].schema"),
        ("events/OrderPaid.yaml", 23, "versions[1].examples[0].orderId"),
        ("lifecycles.yaml", 5, "lifecycles[0].cancellations[0]"),
    }


def test_broken_catalog_messages_say_what_was_expected():
    """Messages name the expected value, e.g. the allowed statuses and the unknown type."""
    messages = {p.field: p.message for p in _problems(BROKEN)}
    assert messages["status"] == "expected one of active, deprecated, got 'retired'"
    assert "unknown 'OrderCreatd'" in messages["subscriptions[0].event"]
    assert "missing-money.json" in messages["versions[0].schema"]


def test_version_breaking_the_mode_is_a_catalog_error():
    """OrderPaid v2 drops required `currency` from a closed schema: FULL_TRANSITIVE breaks."""
    problem = next(p for p in _problems(BROKEN) if p.field == "versions[1].schema")
    assert "breaks FULL_TRANSITIVE" in problem.message
    assert "currency" in problem.message


def test_remote_refs_are_never_fetched(tmp_path):
    """A `$ref` to an http URL outside the catalog is an error, not a download."""
    _minimal(tmp_path, schema_extra="      total: {$ref: 'https://example.com/money.json'}\n")
    (problem,) = _problems(tmp_path)
    assert problem.field == "versions[0].schema" and "unresolvable $ref" in problem.message


def test_duplicate_yaml_keys_are_reported(tmp_path):
    """A key written twice in one mapping is a mistake, reported at the second one."""
    _minimal(tmp_path, header="owner: someone-else\n")
    (problem,) = _problems(tmp_path)
    assert (problem.line, problem.field) == (4, "owner")
    assert "duplicate key" in problem.message


def test_a_missing_folder_is_a_catalog_error(tmp_path):
    """Loading a path that is not a folder raises CatalogError, not OSError."""
    with pytest.raises(CatalogError, match="expected a catalog folder"):
        load_catalog(tmp_path / "nope")


def test_cli_validate_accepts_the_example_catalog():
    """`catalog validate` exits 0 and summarises a valid catalog."""
    result = CliRunner().invoke(main, ["catalog", "validate", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "valid (17 event types, 6 consumers, 2 lifecycles" in result.output


def test_cli_validate_lists_every_problem_and_exits_1():
    """`catalog validate` prints each problem on its own line and exits 1."""
    result = CliRunner().invoke(main, ["catalog", "validate", str(BROKEN)])
    assert result.exit_code == 1
    assert "events/OrderCreated.yaml:4 status: expected one of" in result.output
    assert "10 problem(s)" in result.output
    assert "Traceback" not in result.output


def test_cli_validate_json_lists_problems():
    """`catalog validate --json` returns the problems as data."""
    import json
    result = CliRunner().invoke(main, ["catalog", "validate", "--json", str(BROKEN)])
    data = json.loads(result.stdout)
    assert data["valid"] is False and len(data["problems"]) == 10


def _minimal(root: Path, header: str = "", schema_extra: str = "") -> None:
    (root / "events").mkdir()
    (root / "events" / "Thing.yaml").write_text(
        "detail-type: Thing\nsource: com.shop.things\nowner: things\n" + header
        + "versions:\n  - version: '1'\n    schema:\n      type: object\n"
        + ("      properties:\n  " + schema_extra.replace("\n", "\n  ").rstrip() + "\n"
           if schema_extra else ""))


@pytest.mark.parametrize("field", ["versions", "detail-type", "source"])
def test_an_event_type_missing_a_required_field_is_reported_not_raised(tmp_path, field):
    """A required field left out of an event type file is a problem at its line, no crash."""
    import yaml

    shutil.copytree(EXAMPLE, tmp_path / "catalog")
    path = tmp_path / "catalog" / "events" / "OrderCreated.yaml"
    data = yaml.safe_load(path.read_text())
    del data[field]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    problems = _problems(tmp_path / "catalog")
    assert any(p.file.endswith("OrderCreated.yaml") and p.field == field
               and "missing" in p.message for p in problems)


@pytest.mark.parametrize(("field", "value"), [
    ("detail-type", "x" * 129), ("source", "s" * 257), ("detail-type", ""), ("source", "")])
def test_names_beyond_what_putevents_accepts_are_refused(tmp_path, field, value):
    """A detail-type over 128 characters, a source over 256, or an empty one is located."""
    (tmp_path / "events").mkdir()
    data = {"detail-type": "Object Created", "source": "aws.s3", "owner": "platform",
            "versions": [{"version": "0", "schema": {"type": "object"}}], field: value}
    (tmp_path / "events" / "t.yaml").write_text(yaml.safe_dump(data))
    (problem,) = _problems(tmp_path)
    assert (problem.file, problem.field) == ("events/t.yaml", field)
    assert "expected" in problem.message


def test_names_with_spaces_and_partner_sources_load(tmp_path):
    """`EC2 Instance State-change Notification` from `aws.partner/...` loads and is subscribable."""
    (tmp_path / "events").mkdir()
    (tmp_path / "consumers").mkdir()
    source = "aws.partner/saas.example/123456789012/alerts"
    (tmp_path / "events" / "e.yaml").write_text(yaml.safe_dump({
        "detail-type": "EC2 Instance State-change Notification", "source": source,
        "owner": "ops", "versions": [{"version": "1", "schema": {"type": "object"}}]}))
    (tmp_path / "consumers" / "c.yaml").write_text(yaml.safe_dump({
        "name": "pager", "team": "ops", "subscriptions": [
            {"event": "EC2 Instance State-change Notification", "source": source}]}))
    loaded = load_catalog(tmp_path)
    assert loaded.consumers[0].subscribes_to("EC2 Instance State-change Notification")
    assert loaded.event_type("EC2 Instance State-change Notification", source) is not None


def _one_version_type(tmp_path, schema):
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "t.yaml").write_text(yaml.safe_dump({
        "detail-type": "Shipment", "source": "shop.shipping", "owner": "shipping",
        "versions": [{"version": "1", "schema": schema}]}))


def test_a_draft_04_schema_is_read_in_its_own_dialect(tmp_path):
    """A draft-04 schema with tuple `items` (an array of schemas) loads: its `$schema` says
    how to read it; and an event is validated under draft-04 rules (the second item's type)."""
    _one_version_type(tmp_path, {
        "$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
        "properties": {"legs": {"type": "array",
                                "items": [{"type": "string"}, {"type": "integer"}]}}})
    loaded = load_catalog(tmp_path)
    check = validator(version_uri("Shipment", "1"), catalog_registry(loaded))
    assert check.is_valid({"legs": ["a", 2]})
    assert not check.is_valid({"legs": ["a", "b"]})


def test_a_draft_04_mistake_is_reported_in_that_dialect(tmp_path):
    """`exclusiveMaximum: 5` is a draft-04 mistake (it is a boolean there): located, named."""
    _one_version_type(tmp_path, {"$schema": "http://json-schema.org/draft-04/schema#",
                                 "type": "integer", "maximum": 9, "exclusiveMaximum": 5})
    problems = _problems(tmp_path)
    assert any("draft-04" in p.message and p.field.endswith("exclusiveMaximum")
               for p in problems), problems
