"""EventBridge Schema Registry import, through a real boto3 `schemas` client and Stubber.

moto has no Schema Registry, so responses are stubbed with the shapes AWS returns (checked
against botocore's service model by the Stubber), for both content types.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber
from jsonschema import Draft202012Validator

from eventscope.catalog.schema_registry import detail_schema, import_schema_registry
from eventscope.errors import InputError

REGISTRY = "discovered-schemas"
ARN = "arn:aws:schemas:eu-west-1:123456789012:schema/discovered-schemas/"
WHEN = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)


def _openapi(required: list[str], extra: dict | None = None) -> str:
    """Content as EventBridge schema discovery writes it (OpenApi3, AWSEvent envelope)."""
    return json.dumps({
        "openapi": "3.0.0",
        "info": {"version": "1.0.0", "title": "OrderCreated"},
        "paths": {},
        "components": {"schemas": {
            "AWSEvent": {
                "type": "object",
                "required": ["detail-type", "resources", "detail", "id", "source", "time",
                             "region", "version", "account"],
                "x-amazon-events-detail-type": "OrderCreated",
                "x-amazon-events-source": "com.shop.orders",
                "properties": {
                    "detail": {"$ref": "#/components/schemas/OrderCreated"},
                    "account": {"type": "string"}, "detail-type": {"type": "string"},
                    "id": {"type": "string"}, "region": {"type": "string"},
                    "resources": {"type": "array", "items": {"type": "object"}},
                    "source": {"type": "string"}, "time": {"type": "string",
                                                           "format": "date-time"},
                    "version": {"type": "string"}}},
            "OrderCreated": {"type": "object", "required": required, "properties": {
                "orderId": {"type": "string"},
                "customer": {"$ref": "#/components/schemas/Customer"},
                "note": {"type": "string", "nullable": True}, **(extra or {})}},
            "Customer": {"type": "object", "required": ["customerId"],
                         "properties": {"customerId": {"type": "string"}}}}}})


DRAFT4 = json.dumps({
    "$schema": "http://json-schema.org/draft-04/schema#",
    "title": "RefundIssued", "type": "object",
    "required": ["detail-type", "detail", "source"],
    "x-amazon-events-source": "com.shop.payments",
    "x-amazon-events-detail-type": "RefundIssued",
    "properties": {"detail": {"$ref": "#/definitions/RefundIssued"},
                   "detail-type": {"type": "string"}, "source": {"type": "string"}},
    "definitions": {"RefundIssued": {"type": "object", "required": ["orderId", "refundId"],
                                     "properties": {"orderId": {"type": "string"},
                                                    "refundId": {"type": "string"}}}}})


def _describe(name: str, version: str, content: str, kind: str) -> dict:
    return {"Content": content, "Description": f"{name} schema", "LastModified": WHEN,
            "SchemaArn": ARN + name, "SchemaName": name, "SchemaVersion": version,
            "Tags": {}, "Type": kind, "VersionCreatedDate": WHEN}


@pytest.fixture
def client():
    made = boto3.client("schemas", region_name="eu-west-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")
    with Stubber(made) as stubber:
        made.stubber = stubber
        yield made


def _stub_registry(client) -> None:
    stub = client.stubber
    created, refund = "com.shop.orders@OrderCreated", "com.shop.payments@RefundIssued"
    stub.add_response("list_schemas", {
        "Schemas": [{"SchemaName": created, "SchemaArn": ARN + created, "VersionCount": 2,
                     "LastModified": WHEN, "Tags": {}}], "NextToken": "page-2"},
        {"RegistryName": REGISTRY})
    stub.add_response("list_schemas", {
        "Schemas": [{"SchemaName": refund, "SchemaArn": ARN + refund, "VersionCount": 1,
                     "LastModified": WHEN, "Tags": {}}]},
        {"RegistryName": REGISTRY, "NextToken": "page-2"})
    stub.add_response("list_schema_versions", {"SchemaVersions": [
        {"SchemaArn": ARN + created, "SchemaName": created, "SchemaVersion": "2",
         "Type": "OpenApi3"},
        {"SchemaArn": ARN + created, "SchemaName": created, "SchemaVersion": "1",
         "Type": "OpenApi3"}]}, {"RegistryName": REGISTRY, "SchemaName": created})
    stub.add_response("describe_schema", _describe(created, "1", _openapi(["orderId"]),
                                                   "OpenApi3"),
                      {"RegistryName": REGISTRY, "SchemaName": created, "SchemaVersion": "1"})
    stub.add_response("describe_schema", _describe(
        created, "2", _openapi(["orderId", "channel"], {"channel": {"type": "string"}}),
        "OpenApi3"), {"RegistryName": REGISTRY, "SchemaName": created, "SchemaVersion": "2"})
    stub.add_response("list_schema_versions", {"SchemaVersions": [
        {"SchemaArn": ARN + refund, "SchemaName": refund, "SchemaVersion": "1",
         "Type": "JSONSchemaDraft4"}]}, {"RegistryName": REGISTRY, "SchemaName": refund})
    stub.add_response("describe_schema", _describe(refund, "1", DRAFT4, "JSONSchemaDraft4"),
                      {"RegistryName": REGISTRY, "SchemaName": refund, "SchemaVersion": "1"})


def test_import_reads_every_schema_and_version_across_pages(client):
    """Both pages of schemas are read, versions ordered oldest first."""
    _stub_registry(client)
    types = import_schema_registry(client, REGISTRY, owner="orders")
    client.stubber.assert_no_pending_responses()
    assert [(t.source, t.detail_type, [v.version for v in t.versions]) for t in types] == [
        ("com.shop.orders", "OrderCreated", ["1", "2"]),
        ("com.shop.payments", "RefundIssued", ["1"])]


def test_openapi3_content_becomes_a_2020_12_detail_schema(client):
    """OpenApi3: the detail's schema, other components under $defs, nullable as a type."""
    _stub_registry(client)
    created = import_schema_registry(client, REGISTRY)[0]
    schema = created.versions[0].schema
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["customer"] == {"$ref": "#/$defs/Customer"}
    assert schema["properties"]["note"]["type"] == ["string", "null"]
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"orderId": "ord-1", "customer": {"customerId": "c"}})
    assert not validator.is_valid({"orderId": "ord-1", "customer": {}})


def test_draft4_content_becomes_a_detail_schema(client):
    """JSONSchemaDraft4: the detail definition, without $schema or x-amazon extensions."""
    _stub_registry(client)
    refund = import_schema_registry(client, REGISTRY)[1]
    assert refund.versions[0].schema == {
        "type": "object", "required": ["orderId", "refundId"],
        "properties": {"orderId": {"type": "string"}, "refundId": {"type": "string"}}}


def test_mode_recorded_is_the_strictest_the_history_satisfies(client):
    """v2 adds a required field to an open object: only FORWARD modes hold."""
    _stub_registry(client)
    created = import_schema_registry(client, REGISTRY)[0]
    assert created.compatibility == "FORWARD_TRANSITIVE"


def test_unknown_content_type_is_refused():
    """Content that is neither OpenApi3 nor JSONSchemaDraft4 is a clear error."""
    with pytest.raises(InputError, match="unsupported schema content type"):
        detail_schema({"type": "record"}, "Avro")


def test_cli_import_writes_a_valid_catalog_folder(client, tmp_path, monkeypatch):
    """`catalog import-schema-registry` writes event types that load as a catalog.

    moto has no Schema Registry, so the command is handed the Stubber-backed client (the
    requests are still checked against botocore's service model).
    """
    from click.testing import CliRunner

    from eventscope.catalog.loader import load_catalog
    from eventscope.cli import catalog_cmd, main

    _stub_registry(client)
    monkeypatch.setattr(catalog_cmd, "aws_clients", lambda _settings, *_services: [client])
    out = tmp_path / "catalog"
    result = CliRunner().invoke(main, ["catalog", "import-schema-registry", "--registry",
                                       REGISTRY, "--out", str(out), "--owner", "orders"])
    assert result.exit_code == 0, result.output
    assert "imported 2 event type(s)" in result.output
    loaded = load_catalog(out)
    assert {(t.detail_type, t.owner, len(t.versions)) for t in loaded.event_types} == {
        ("OrderCreated", "orders", 2), ("RefundIssued", "orders", 1)}
