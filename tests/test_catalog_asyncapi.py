"""AsyncAPI export (3.0) and import (3.0, 2.6), and the round trip of the example catalog."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from eventscope.catalog.asyncapi import export_asyncapi, import_asyncapi
from eventscope.catalog.loader import load_catalog
from eventscope.cli import main
from eventscope.errors import InputError

EXAMPLE = Path(__file__).parent.parent / "eventscope" / "demo_catalog"
DATA = Path(__file__).parent / "data" / "catalog" / "asyncapi"


def test_export_makes_one_document_per_source_and_consumer():
    """Six producer documents (one per source), six consumer documents, one catalog document."""
    files = export_asyncapi(load_catalog(EXAMPLE))
    kinds = [d["info"]["x-eventscope-kind"] for n, d in files.items() if n.endswith(".yaml")]
    assert sorted(kinds).count("producer") == 6 and kinds.count("consumer") == 6
    assert kinds.count("catalog") == 1
    payments = files["com.shop.payments.asyncapi.yaml"]
    assert payments["asyncapi"] == "3.0.0"
    assert payments["operations"]["sendOrderPaid"]["action"] == "send"
    assert set(payments["components"]["messages"]) == {
        "OrderPaid.v1", "OrderPaid.v2", "PaymentCaptured.v1", "PaymentFailed.v1",
        "RefundIssued.v1"}
    warranty = files["warranty-handler.asyncapi.yaml"]
    assert [o["action"] for o in warranty["operations"].values()] == ["receive"]


def test_export_carries_owner_version_and_sunset_as_extensions():
    """Owner, version and sunset travel as x-eventscope-* extensions."""
    files = export_asyncapi(load_catalog(EXAMPLE))
    channel = files["com.shop.payments.asyncapi.yaml"]["channels"]["PaymentCaptured"]
    assert (channel["x-eventscope-owner"], channel["x-eventscope-sunset"]) == (
        "payments", "2026-06-30")
    message = files["com.shop.payments.asyncapi.yaml"]["components"]["messages"]["OrderPaid.v2"]
    assert message["x-eventscope-version"] == "2"


def test_round_trip_through_files_gives_the_same_catalog(tmp_path):
    """export-asyncapi then import-asyncapi writes a catalog equal to the example."""
    runner = CliRunner()
    out = runner.invoke(main, ["catalog", "export-asyncapi", "--catalog", str(EXAMPLE),
                               "--out", str(tmp_path / "aa")])
    assert out.exit_code == 0, out.output
    back = runner.invoke(main, ["catalog", "import-asyncapi",
                                *map(str, sorted((tmp_path / "aa").iterdir())),
                                "--out", str(tmp_path / "catalog")])
    assert back.exit_code == 0, back.output
    original = replace(load_catalog(EXAMPLE), revision="")
    assert replace(load_catalog(tmp_path / "catalog"), revision="") == original


def test_import_asyncapi_2_6_subscribe_is_produced_publish_is_consumed():
    """In 2.6, `subscribe` operations are what the app emits, `publish` what it receives."""
    document = yaml.safe_load((DATA / "returns-service-2.6.yaml").read_text())
    catalog = import_asyncapi([document]).catalog
    produced = catalog.event_type("ReturnRequested")
    assert (produced.detail_type, produced.source, produced.owner) == (
        "ReturnRequested", "com.shop.returns", "returns")
    assert produced.versions[0].examples == ({"orderId": "ord-1", "skus": ["TV-55-OLED"]},)
    (consumer,) = catalog.consumers
    assert consumer.subscriptions[0].detail_type == "RefundIssued"
    assert consumer.subscriptions[0].contract["required"] == ["orderId"]


def test_import_asyncapi_3_foreign_document_maps_x_extensions():
    """A 3.0 document from elsewhere: x-owner, x-version, x-sunset map to the catalog."""
    document = yaml.safe_load((DATA / "warehouse-3.0.yaml").read_text())
    catalog = import_asyncapi([document]).catalog
    picked = catalog.event_type("PickListCreated")
    assert (picked.detail_type, picked.owner, picked.status) == (
        "PickListCreated", "logistics", "deprecated")
    assert str(picked.sunset) == "2027-01-31"
    assert picked.versions[0].version == "3"
    assert catalog.consumers[0].subscriptions[0].detail_type == "OrderPaid"


def test_import_refuses_non_asyncapi_documents():
    """A document without an AsyncAPI 2.x/3.x version is a clear error."""
    with pytest.raises(InputError, match="not an AsyncAPI"):
        import_asyncapi([{"openapi": "3.1.0"}])
