"""Faults, PII: one event holding every kind of PII, sent by every write path (ingest, the tap
over moto's SQS, the Lambda handler, CloudWatch Logs), and then every table, every CLI
`--json` output and every dashboard page searched for the raw values. Nothing exposed, and
nothing lost: each path's event and quarantined input is there, in redacted form."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from eventscope.cli import main
from eventscope.collectors.clients import AwsSettings
from eventscope.collectors.tap import install_tap
from eventscope.records import BusEvent, Quarantined
from eventscope.redaction import (RedactionSettings, redact_event, redaction_rows,
                                  scrub_quarantined, scrub_text, token)
from eventscope.store import Store, metadata, open_store
from tests.conftest_aws import aws, clients, moto_endpoint, put_events  # noqa: F401
from tests.dashboard_harness import PAGES, page

KEY = "faults-pii-key"
EMAIL, CARD, PHONE = "jane.roe@example.org", "4111111111111111", "+44 20 7946 0958"
AWS_KEY, SSN = "AKIAIOSFODNN7EXAMPLE", "123-45-6789"
RAW = (EMAIL, CARD, PHONE, AWS_KEY, SSN)
GROUP = "/aws/lambda/warranty-consumer"


def pii_detail(path: str) -> dict[str, Any]:
    """A detail with every kind of PII: as values, as an object key, as the order id."""
    return {"orderId": CARD, "path": path, "customer": {"email": EMAIL, "phone": PHONE,
                                                          "ssn": SSN},
            "note": f"ops pasted {AWS_KEY} and {SSN}", "contacts": {EMAIL: "primary"}}


def envelope(event_id: str, path: str) -> dict[str, Any]:
    return {"version": "0", "id": event_id, "detail-type": "OrderPlaced",
            "source": "com.shop.orders", "account": "123456789012",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": "us-east-1",
            "resources": [f"arn:aws:shop:us-east-1:123456789012:customer/{EMAIL}"],
            "detail": pii_detail(path)}


def malformed(path: str) -> str:
    """A line no parser accepts, holding every PII kind (it is quarantined)."""
    return f'{{"broken": "{path}", "who": "{EMAIL} {PHONE} {SSN} {AWS_KEY} {CARD}"'


def leaks(text: str) -> list[str]:
    return [value for value in RAW if value in text]


def table_dump(store: Store) -> dict[str, str]:
    """Every row of every table, as text (raw bytes decoded)."""
    dumped: dict[str, str] = {}
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            rows = conn.execute(sa.select(table)).all()
            dumped[table.name] = repr([[v.decode("utf-8", "replace") if isinstance(v, bytes)
                                        else v for v in row] for row in rows])
    return dumped


def page_text(at: Any) -> str:
    """Everything an AppTest page holds: every element's protobuf, tables as CSV."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    parts += [frame.value.to_csv() for frame in at.dataframe]
    return "\n".join(parts)


@pytest.fixture
def loaded(aws: AwsSettings, moto_endpoint: str, store_url: str, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, str]]:
    """A store fed the PII event by every path; the CLI's JSON outputs of the writes."""
    from eventscope.collectors.handler import handle
    from tests.test_collectors_service import sqs_event

    monkeypatch.setenv("EVENTSCOPE_PII_KEY", KEY)
    monkeypatch.setenv("EVENTSCOPE_DB", store_url)
    runner, outputs = CliRunner(), {}
    # 1. ingest: an envelope and a malformed line
    path = tmp_path / "events.ndjson"
    path.write_text(json.dumps(envelope("ev-ingest", "ingest")) + "\n" + malformed("ingest") + "\n")
    result = runner.invoke(main, ["ingest", str(path), "--db", store_url, "--json"])
    assert result.exit_code == 0, result.output
    outputs["ingest"] = result.output
    # 2. the tap over moto's SQS, through `collect tap`
    sqs, events, logs = clients(aws, "sqs", "events", "logs")
    events.create_event_bus(Name="shop-bus")
    url = install_tap(sqs, events, "shop-bus").queue_url
    put_events(events, "shop-bus", [{"Source": "com.shop.orders", "DetailType": "OrderPlaced",
                                     "Detail": pii_detail("tap")}])
    sqs.send_message(QueueUrl=url, MessageBody=malformed("tap"))
    result = runner.invoke(main, ["collect", "tap", "--bus", "shop-bus", "--until-empty",
                                  "--wait", "0", "--db", store_url, "--endpoint-url",
                                  moto_endpoint, "--region", "us-east-1", "--json"])
    assert result.exit_code == 0, result.output
    outputs["collect tap"] = result.output
    # 3. the Lambda handler
    put_events(events, "shop-bus", [{"Source": "com.shop.orders", "DetailType": "OrderPlaced",
                                     "Detail": pii_detail("handler")}])
    sqs.send_message(QueueUrl=url, MessageBody=malformed("handler"))
    handler_store = open_store(store_url)
    assert handle(sqs_event(sqs, url), None, store=handler_store) == {"batchItemFailures": []}
    handler_store.engine.dispose()
    # 4. CloudWatch Logs, through `collect logs`: an unhandled exception quoting the PII
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="s")
    now, rid = int(time.time() * 1000) - 60_000, "5e0c7c2a-8f0e-4a53-9c55-3b1c0e6f2a11"
    lines = [f"START RequestId: {rid} Version: $LATEST\n",
             f"[ERROR] ValueError: refused {CARD} for {EMAIL}, ssn {SSN}, phone {PHONE}, "
             f"key {AWS_KEY}\nTraceback (most recent call last):\n  File \"/var/task/h.py\", "
             "line 3, in handler\n",
             f"END RequestId: {rid}\n",
             f"REPORT RequestId: {rid}\tDuration: 4.00 ms\tBilled Duration: 4 ms\t"
             "Memory Size: 128 MB\tMax Memory Used: 60 MB\t\n"]
    logs.put_log_events(logGroupName=GROUP, logStreamName="s", logEvents=[
        {"timestamp": now + i, "message": line} for i, line in enumerate(lines)])
    result = runner.invoke(main, ["collect", "logs", "--log-group", GROUP, "--since", "1d",
                                  "--db", store_url, "--endpoint-url", moto_endpoint,
                                  "--region", "us-east-1", "--json"])
    assert result.exit_code == 0, result.output
    outputs["collect logs"] = result.output
    return store_url, outputs


def test_every_path_stores_the_pii_event_once_redacted_and_its_malformed_input(
        loaded: tuple[str, dict[str, str]]) -> None:
    """Nothing lost, nothing duplicated: three events (ingest, tap, handler), three quarantined
    inputs, one failed invocation; and every table free of the raw values."""
    store = open_store(loaded[0])
    try:
        counts = store.counts()
        assert counts["events"] == 3 and counts["quarantined"] == 3
        assert counts["invocations_by_outcome"]["error"] == 1
        dumped = table_dump(store)
        assert {name: leaks(text) for name, text in dumped.items() if leaks(text)} == {}
        # the order id is stored as the card's token, the same on every path
        keys = {row["correlation_key"] for row in store.select_rows(sa.text(
            "SELECT correlation_key FROM events"))}
        assert keys == {token(CARD, "card", KEY.encode())}
    finally:
        store.engine.dispose()


def test_no_cli_json_output_prints_a_raw_value(loaded: tuple[str, dict[str, str]]) -> None:
    """The write commands' and every findings command's --json output, and the lifecycle
    looked up by the raw card number (found, and never echoed)."""
    url, outputs = loaded
    runner = CliRunner()
    for command in (["stats"], ["graph"], ["failures"], ["undocumented"], ["subscriptions"],
                    ["duplicates"], ["latency"], ["check"], ["lifecycle", CARD],
                    ["replay", "--event-id", "ev-ingest", "--bus", "shop-bus"]):
        result = runner.invoke(main, [*command, "--db", url, "--json"])
        # replay refuses redacted events with one `error:` line (exit 2)
        assert result.exit_code in ((2,) if command[0] == "replay" else (0, 1)), result.output
        outputs[" ".join(command[:1])] = result.output
    life = json.loads(outputs["lifecycle"])
    assert len(life["lifecycle"]["events"]) == 3
    plain = runner.invoke(main, ["lifecycle", CARD, "--db", url])
    outputs["lifecycle (text)"] = plain.output
    missing = runner.invoke(main, ["lifecycle", "5555555555554444", "--db", url])
    assert missing.exit_code == 1
    outputs["lifecycle (no match)"] = missing.output
    assert "5555555555554444" not in missing.output
    assert {name: leaks(text) for name, text in outputs.items() if leaks(text)} == {}


def test_no_dashboard_page_shows_a_raw_value(loaded: tuple[str, dict[str, str]]) -> None:
    """Every page, and the lifecycle page opened with the raw card number typed in."""
    texts = {name: page_text(page(name)) for name in PAGES}
    life = page("lifecycle", order=CARD)
    assert not life.exception
    assert life.text[0].value.endswith(": 3 events")
    texts["lifecycle?order=card"] = page_text(life)
    assert {name: leaks(text) for name, text in texts.items() if leaks(text)} == {}


# --- the redaction rules these rest on ---

SETTINGS = RedactionSettings(key=KEY.encode())


@pytest.mark.parametrize("ssn", ["123-45-6789", "078 05 1120", "ssn: 219-09-9999."])
def test_social_security_numbers_are_detected(ssn: str) -> None:
    assert scrub_text(ssn, SETTINGS.key)[1] == ["ssn"]


@pytest.mark.parametrize("text", ["000-12-3456", "666-12-3456", "912-34-5678", "123-00-4567",
                                  "123-45-0000", "123-45 6789", "2025-06-02", "ord-123-45-6789"])
def test_numbers_ssa_never_issues_are_not_taken_for_ssns(text: str) -> None:
    assert "ssn" not in scrub_text(text, SETTINGS.key)[1]


def test_an_email_as_an_object_key_is_replaced_and_its_path_names_the_token() -> None:
    event = BusEvent("e", "s", "T", 0, orjson.dumps({"c": {EMAIL: 1}}).decode(), 10)
    clean, found = redact_event(event, SETTINGS)
    expected = token(EMAIL, "email", SETTINGS.key)
    assert orjson.loads(clean.detail) == {"c": {expected: 1}}
    assert [(r.json_path, r.detector) for r in found] == [(f"$.detail.c.{expected}", "email")]


def test_resources_and_the_correlation_key_are_redacted_consistently() -> None:
    event = BusEvent("e", "s", "T", 0, orjson.dumps({"orderId": EMAIL}).decode(), 10,
                     resources=orjson.dumps([f"arn:x:{EMAIL}"]).decode(), correlation_key=EMAIL)
    clean, found = redact_event(event, SETTINGS)
    expected = token(EMAIL, "email", SETTINGS.key)
    assert clean.correlation_key == expected == orjson.loads(clean.detail)["orderId"]
    assert orjson.loads(clean.resources) == [f"arn:x:{expected}"]
    assert {r.json_path for r in found} == {"$.detail.orderId", "$.resources[0]",
                                            "correlation_key"}


def test_a_catalog_declared_order_id_keeps_correlating() -> None:
    settings = RedactionSettings(key=SETTINGS.key, catalog_fields={"T": ["detail.orderId"]})
    event = BusEvent("e", "s", "T", 0, '{"orderId":"ord-7"}', 10, correlation_key="ord-7")
    clean, _ = redact_event(event, settings)
    assert clean.correlation_key == orjson.loads(clean.detail)["orderId"]
    assert clean.correlation_key.startswith("pii:catalog:")


def test_every_detector_of_a_field_is_recorded() -> None:
    event = BusEvent("e", "s", "T", 0, orjson.dumps({"note": f"{EMAIL} {SSN}"}).decode(), 10)
    _, found = redact_event(event, SETTINGS)
    rows = redaction_rows(found, 0)
    assert [(r["json_path"], sorted(r["detector"].split(","))) for r in rows] == [
        ("$.detail.note", ["email", "ssn"])]


def test_quarantined_raw_bytes_are_scrubbed_and_undecodable_bytes_kept() -> None:
    raw = b"\xff\xfe " + EMAIL.encode() + b" \x80"
    item = Quarantined("f", "line 1", "invalid_json", f"bad near {SSN}", raw)
    scrubbed, = scrub_quarantined([item], SETTINGS)
    assert scrubbed.raw.startswith(b"\xff\xfe ") and scrubbed.raw.endswith(b" \x80")
    assert EMAIL.encode() not in scrubbed.raw and SSN not in scrubbed.detail
    kept, = scrub_quarantined([item], RedactionSettings(key=b"k", keep_originals=True))
    assert kept == item
