"""AsyncAPI import of the layouts teams really write (documents under tests/data/.../layouts).

Each document was written for these tests after reading the AsyncAPI 2.6 and 3.0
specifications and their example documents: one bus channel with many messages, one channel
per type, 3.0 send/receive with a reply, multi-format payloads, `$ref`s into components and
into a file next to the document, titles with spaces, `{param}` and `/` in addresses, no owner.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from eventscope.catalog.asyncapi import AsyncApiFile, consumer_id, import_asyncapi
from eventscope.catalog.asyncapi_specs import check_document, specs_folder
from eventscope.catalog.compat import check
from eventscope.catalog.loader import load_catalog
from eventscope.simulator import DEMO_CATALOG
from eventscope.cli import main

LAYOUTS = Path(__file__).parent / "data" / "catalog" / "asyncapi" / "layouts"
SHOP_BUS = LAYOUTS / "shop-bus-3.0.yaml"
PAYMENTS = LAYOUTS / "channel-per-type" / "payments-2.6.yaml"
WAREHOUSE = LAYOUTS / "warehouse-multiformat-3.0.yaml"
ONLY_AVRO = LAYOUTS / "only-avro-2.6.yaml"


def _read(path: Path) -> object:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _import(path: Path, **options: object):
    return import_asyncapi([AsyncApiFile(_read(path), path)], read=_read, **options)


def _cli(*args: str):
    return CliRunner().invoke(main, ["catalog", "import-asyncapi", *args])


def test_one_bus_channel_gives_one_event_type_per_message_name():
    """Eight messages on the channel `shop-bus`: six types named by the messages, none
    `shop-bus`."""
    catalog = _import(SHOP_BUS).catalog
    assert sorted(t.detail_type for t in catalog.event_types) == [
        "OrderCancelled", "OrderCreated", "OrderFlagged", "OrderNoteAdded", "OrderPaid",
        "OrderShipped"]
    assert sum(len(t.versions) for t in catalog.event_types) == 8


def test_versions_of_one_detail_type_are_grouped_in_order():
    """OrderCreated v1/v2 (x-version) and OrderPaid v1/v2 (payload `version` const) are kept."""
    catalog = _import(SHOP_BUS).catalog
    assert [v.version for v in catalog.event_type("OrderCreated").versions] == ["1", "2"]
    assert [v.version for v in catalog.event_type("OrderPaid").versions] == ["1", "2"]


def test_the_command_writes_a_catalog_that_validates(tmp_path):
    """The bus document imports, exit 0, into a folder the catalog loader accepts."""
    result = _cli(str(SHOP_BUS), "--out", str(tmp_path / "cat"))
    assert result.exit_code == 0, result.output
    loaded = load_catalog(tmp_path / "cat")
    assert len(loaded.event_types) == 6


def test_a_breaking_history_is_recorded_with_the_mode_it_satisfies():
    """OrderPaid v2 changes a field's type: the mode recorded is one the history satisfies."""
    paid = _import(SHOP_BUS).catalog.event_type("OrderPaid")
    history = [(v.version, v.schema) for v in paid.versions]
    assert check(history[:1], history[1][1], "FULL_TRANSITIVE").compatible is False
    assert check(history[:1], history[1][1], paid.compatibility).compatible is True


def test_a_stated_compatibility_mode_is_kept():
    """`x-compatibility: BACKWARD` on the message is recorded as is."""
    assert _import(SHOP_BUS).catalog.event_type("OrderShipped").compatibility == "BACKWARD"


def test_operation_and_message_x_fields_are_honoured():
    """Source and owner from the operation, deprecation/sunset/replacement from the message."""
    catalog = _import(SHOP_BUS).catalog
    flagged = catalog.event_type("OrderFlagged")
    assert (flagged.source, flagged.owner) == ("com.shop.risk", "fraud")
    note = catalog.event_type("OrderNoteAdded")
    assert (note.status, str(note.sunset), note.replacement) == (
        "deprecated", "2027-03-31", "OrderCreated")
    assert catalog.event_type("OrderCreated").owner == "orders"  # info.contact.name


def test_pii_and_correlation_come_from_the_document():
    """`x-pii: true` on a property, `x-pii-fields`, and `correlationId` become catalog paths."""
    catalog = _import(SHOP_BUS).catalog
    created = catalog.event_type("OrderCreated")
    assert created.pii_fields == ("detail.customer.email",)
    assert created.correlation_paths == ("detail.orderId",)
    assert catalog.event_type("OrderCancelled").pii_fields == ("detail.reason",)


def test_component_refs_are_bundled_into_the_stored_schema():
    """`$ref: '#/components/schemas/...'` (recursive too) is resolved: the schema stands alone."""
    schema = _import(SHOP_BUS).catalog.event_type("OrderCreated").versions[0].schema
    assert "#/components" not in repr(schema)
    validator = Draft202012Validator(schema)
    good = {"version": "1", "orderId": "o", "customer": {"email": "e", "referredBy": {
        "email": "f"}}, "total": {"amount": 1, "currency": "EUR"}}
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "total": {"amount": 1, "currency": "euro"}})
    assert not validator.is_valid({**good, "customer": {"referredBy": {}}})


def test_refs_into_a_file_next_to_the_document_are_bundled():
    """`../common/money.yaml#/Money` (which refers to its own `#/Currency`) is read and kept."""
    captured = _import(PAYMENTS).catalog.event_type("PaymentCaptured").versions[0].schema
    validator = Draft202012Validator(captured)
    assert validator.is_valid({"orderId": "o", "amount": {"amount": 1, "currency": "GBP"}})
    assert not validator.is_valid({"orderId": "o", "amount": {"amount": 1, "currency": "XXX"}})
    assert "money.yaml" not in repr(captured)


def test_draft_07_tuple_items_become_prefix_items():
    """`items: [..]` with `additionalItems` is stored in its 2020-12 spelling."""
    refund = _import(PAYMENTS).catalog.event_type("RefundIssued").versions[0].schema
    lines = refund["properties"]["lines"]
    assert lines["prefixItems"] == [{"type": "string"}, {"type": "integer"}]
    assert lines["items"] is False


def test_an_example_that_breaks_its_own_schema_is_dropped_with_a_warning():
    """The JPY example breaks the document's own enum: not kept, and said so."""
    imported = _import(PAYMENTS)
    captured = imported.catalog.event_type("PaymentCaptured").versions[0]
    assert len(captured.examples) == 1
    assert any("example 2" in w and "JPY" in w for w in imported.warnings)


def test_titles_with_spaces_become_consumer_ids_and_the_title_is_kept():
    """`Payment Service (EU)` receives OrderCreated as consumer `payment-service-eu`."""
    (consumer,) = _import(PAYMENTS).catalog.consumers
    assert consumer.name == "payment-service-eu"
    assert consumer.description.startswith("Payment Service (EU)")
    assert consumer.subscriptions[0].detail_type == "OrderCreated"


@pytest.mark.parametrize("title", ["Streetlights Kafka API", "a/../../b", "!!!", "ok-name"])
def test_consumer_ids_are_valid_names(title):
    """Whatever the title, the id fits the catalog's name pattern."""
    import re
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:/@-]*", consumer_id(title))


def test_missing_owner_is_a_warning_not_a_failure(tmp_path):
    """No owner anywhere: exit 0, owner `unowned`, one warning line per type."""
    result = _cli(str(PAYMENTS), "--out", str(tmp_path / "cat"))
    assert result.exit_code == 0, result.output
    assert "PaymentCaptured: no owner" in result.output
    assert load_catalog(tmp_path / "cat").event_type("PaymentCaptured").owner == "unowned"


def test_the_owner_option_fills_a_missing_owner():
    """`--owner` names the team where the document names none."""
    catalog = _import(PAYMENTS, owner="payments").catalog
    assert catalog.event_type("RefundIssued").owner == "payments"


def test_addresses_with_slashes_and_parameters_do_not_matter_by_default():
    """`payments/{orderId}/captured` carries PaymentCaptured: the address is not the type."""
    names = {t.detail_type for t in _import(PAYMENTS).catalog.event_types}
    assert names == {"PaymentCaptured", "RefundIssued", "OrderCreated"}


def test_send_and_receive_operations_map_to_producers_and_consumers():
    """3.0: `send` messages are event types, `receive` ones subscriptions, replies reversed."""
    catalog = _import(WAREHOUSE).catalog
    assert catalog.event_type("ItemsPicked").source == "com.shop.warehouse"
    assert catalog.event_type("LabelRequested").source == "com.shop.warehouse"
    (consumer,) = catalog.consumers
    assert consumer.name == "warehouse-picker"
    assert sorted(s.detail_type for s in consumer.subscriptions) == ["LabelIssued", "OrderPaid"]


def test_a_multi_format_json_schema_payload_is_imported():
    """`schemaFormat: application/schema+json;version=draft-07` with `schema:` is JSON Schema."""
    (consumer,) = _import(WAREHOUSE).catalog.consumers
    paid = next(s for s in consumer.subscriptions if s.detail_type == "OrderPaid")
    assert paid.contract == {"type": "object", "required": ["orderId"],
                             "properties": {"orderId": {"type": "string"}}}


def test_avro_protobuf_and_url_payloads_are_skipped_with_one_line_each():
    """Each unsupported message gets one line naming it and why; none is stored."""
    imported = _import(WAREHOUSE)
    assert len(imported.skipped) == 3
    reasons = "\n".join(imported.skipped)
    assert "ParcelPacked" in reasons and "Avro" in reasons
    assert "ParcelWeighed" in reasons and "Protobuf" in reasons
    assert "LabelPrinted" in reasons and "external URL" in reasons
    stored = {t.detail_type for t in imported.catalog.event_types}
    assert not stored & {"ParcelPacked", "ParcelWeighed", "LabelPrinted"}


def test_skipped_messages_are_printed_and_the_rest_is_written(tmp_path):
    """The command prints one `skipped:` line per message and writes a valid catalog."""
    result = _cli(str(WAREHOUSE), "--out", str(tmp_path / "cat"))
    assert result.exit_code == 0, result.output
    assert result.output.count("skipped: ") == 3
    assert load_catalog(tmp_path / "cat").event_type("ItemsPicked") is not None


def test_nothing_importable_fails_and_writes_nothing(tmp_path):
    """Only Avro and RAML payloads: exit 1, a line per message, no folder created."""
    result = _cli(str(ONLY_AVRO), "--out", str(tmp_path / "cat"))
    assert result.exit_code == 1
    assert result.output.count("skipped: ") == 2
    assert "Avro" in result.output and "RAML" in result.output
    assert not (tmp_path / "cat").exists()


@pytest.mark.parametrize(("mode", "expected"), [
    ("title", {"Order created", "OrderPaid", "OrderShipped"}),
    ("channel", {"shop-bus"}),
])
def test_detail_type_from_chooses_the_field(mode, expected):
    """`--detail-type-from title|channel` reads the message title or the channel address."""
    types = {t.detail_type for t in _import(SHOP_BUS, detail_type_from=mode).catalog.event_types}
    assert expected <= types


def test_x_eventbridge_detail_type_wins_over_the_name():
    """A message's `x-eventbridge-detail-type` is its detail-type, whatever the mode."""
    document = _read(SHOP_BUS)
    document["components"]["messages"]["orderFlagged"]["x-eventbridge-detail-type"] = \
        "Order Flagged For Review"
    for mode in ("name", "title", "channel"):
        catalog = import_asyncapi([document], detail_type_from=mode).catalog
        assert catalog.event_type("Order Flagged For Review") is not None


def test_conflicting_definitions_of_one_version_are_reported():
    """Two different payloads both claiming OrderPaid v1: the second is skipped, with a line."""
    document = _read(SHOP_BUS)
    document["components"]["messages"]["orderPaidV2"]["payload"]["properties"]["version"] = {
        "const": "1"}
    imported = import_asyncapi([document])
    assert [v.version for v in imported.catalog.event_type("OrderPaid").versions] == ["1"]
    assert any("version 1 is defined again" in line for line in imported.skipped)


def test_a_message_with_a_relative_ref_but_no_path_is_skipped_with_the_reason():
    """Without the document's path a file next to it cannot be read: said, not guessed."""
    imported = import_asyncapi([_read(PAYMENTS)])
    assert any("without its path" in line for line in imported.skipped)


# --- validation against the official AsyncAPI JSON Schemas ----------------------------------

def _specs_or_skip() -> Path:
    folder = specs_folder()
    if folder is None:
        if os.environ.get("CI"):
            pytest.fail("@asyncapi/specs is not installed (make venv runs npm install)")
        pytest.skip("@asyncapi/specs not installed here (make venv installs it)")
    return folder


@pytest.mark.parametrize("path", [SHOP_BUS, PAYMENTS, WAREHOUSE, ONLY_AVRO],
                         ids=lambda p: p.name)
def test_our_documents_are_valid_asyncapi(path):
    """Every test document passes the official schema of its version."""
    result = check_document(_read(path), _specs_or_skip())
    assert (result.validated, result.errors) == (True, ())


def test_an_invalid_document_gets_the_schemas_error_located(tmp_path):
    """An operation with an unknown action: exit 2, the JSON path of the mistake, no write."""
    _specs_or_skip()
    document = _read(SHOP_BUS)
    document["operations"]["publishRiskEvents"]["action"] = "emit"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = _cli(str(bad), "--out", str(tmp_path / "cat"))
    assert result.exit_code == 2
    assert "$.operations.publishRiskEvents" in result.output
    assert not (tmp_path / "cat").exists()


def test_without_the_schemas_the_import_runs_and_says_not_validated(tmp_path, monkeypatch):
    """No @asyncapi/specs: one warning says the document was not validated; never `valid`."""
    monkeypatch.setenv("EVENTSCOPE_ASYNCAPI_SPECS", str(tmp_path / "nowhere"))
    result = _cli(str(SHOP_BUS), "--out", str(tmp_path / "cat"))
    assert result.exit_code == 0, result.output
    assert result.output.count("not validated") == 1
    assert check_document(_read(SHOP_BUS)).validated is False


def test_a_version_without_an_official_schema_is_not_validated():
    """`asyncapi: 2.9.0` has no schema in the package: not validated, with the reason."""
    result = check_document({"asyncapi": "2.9.0", "info": {}}, _specs_or_skip())
    assert not result.validated and "2.9.0" in result.note


def test_reimporting_into_the_same_folder_replaces_the_types(tmp_path):
    """Importing twice gives the same catalog (files of the same types are replaced)."""
    out = tmp_path / "cat"
    assert _cli(str(SHOP_BUS), "--out", str(out)).exit_code == 0
    first = sorted(p.name for p in (out / "events").iterdir())
    shutil.copy(SHOP_BUS, tmp_path / "again.yaml")
    assert _cli(str(tmp_path / "again.yaml"), "--out", str(out)).exit_code == 0
    assert sorted(p.name for p in (out / "events").iterdir()) == first


def _app(title: str, action: str, message: dict) -> dict:
    return {"asyncapi": "3.0.0", "info": {"title": title, "version": "1", "x-owner": "t"},
            "channels": {"bus": {"address": "bus", "messages": {"m": message}}},
            "operations": {"o": {"action": action, "channel": {"$ref": "#/channels/bus"},
                                 "x-eventbridge-source": "com.shop.x"}}}


def test_documents_with_the_same_file_name_stay_apart(tmp_path):
    """Two `asyncapi.yaml` in different folders: each consumer gets only its own messages."""
    message = {"name": "A", "payload": {"type": "object"}}
    files = []
    for folder, title, action, name in (("p", "producer", "send", "A"),
                                        ("c1", "one", "receive", "A"),
                                        ("c2", "two", "receive", "A")):
        path = tmp_path / folder / "asyncapi.yaml"
        path.parent.mkdir()
        files.append(AsyncApiFile(_app(title, action, {**message, "name": name}), path))
    catalog = import_asyncapi(files).catalog
    assert [(c.name, len(c.subscriptions)) for c in catalog.consumers] == [("one", 1),
                                                                           ("two", 1)]


def test_an_operation_whose_channel_cannot_be_read_is_skipped_with_the_reason(tmp_path):
    """A channel `$ref` to a missing file: one line for that operation, the rest imported."""
    document = _app("app", "send", {"name": "A", "payload": {"type": "object"}})
    document["operations"]["broken"] = {"action": "send",
                                        "channel": {"$ref": "missing.yaml#/bus"}}
    path = tmp_path / "app.yaml"
    imported = import_asyncapi([AsyncApiFile(document, path)], read=_read)
    assert imported.catalog.event_type("A") is not None
    (line,) = imported.skipped
    assert "operation broken" in line and "missing.yaml" in line


_ANY = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12), st.dates(),
                 st.lists(st.text(max_size=8), max_size=3),
                 st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
_X_FIELDS = ["x-version", "x-sunset", "x-deprecated", "x-pii-fields", "x-correlation-paths",
             "x-compatibility", "x-owner", "x-eventbridge-source", "x-replaced-by",
             "x-eventbridge-detail-type", "x-eventscope-version-from", "x-eventscope-versions"]


_INFO_FIELDS = ["x-eventscope-functions", "x-eventscope-rule-targets", "x-team", "contact",
                "title", "description", "x-owner"]


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(_X_FIELDS), _ANY, max_size=6),
       st.dictionaries(st.sampled_from(_X_FIELDS), _ANY, max_size=4),
       st.dictionaries(st.sampled_from(_INFO_FIELDS), _ANY, max_size=4),
       st.sampled_from(["send", "receive"]))
def test_any_x_field_values_never_raise(on_message, on_operation, on_info, action):
    """Whatever the `x-` and info fields hold (dates, lists, numbers, junk), the import answers."""
    document = _app("app", action, {"name": "A", "payload": {"type": "object"},
                                    **on_message})
    document["operations"]["o"].update(on_operation)
    document["info"] = {"title": "app", "version": "1", **on_info}
    imported = import_asyncapi([document])
    for event_type in imported.catalog.event_types:
        assert all(isinstance(p, str) for p in event_type.pii_fields + event_type.correlation_paths)


def test_the_export_is_valid_asyncapi_3():
    """Every document `export-asyncapi` writes for the example catalog passes the official
    schema."""
    from eventscope.catalog.asyncapi import export_asyncapi
    folder = _specs_or_skip()
    files = export_asyncapi(load_catalog(DEMO_CATALOG))
    documents = [d for name, d in files.items() if name.endswith(".asyncapi.yaml")]
    assert documents
    for document in documents:
        result = check_document(document, folder)
        assert (result.validated, result.errors) == (True, ())
