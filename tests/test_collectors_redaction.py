"""PII redaction: detectors, keyed tokens, catalog fields, keep-originals, and the tap write
path."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventscope.collectors.tap import install_tap
from eventscope.collectors.tap_collector import TapCounters, TapSettings, run_tap
from eventscope.records import BusEvent
from eventscope.redaction import (RedactionSettings, is_redacted, luhn_valid, mask_pii,
                                  redact_event, replace_pii, scrub_text, stored_query,
                                  token)
from eventscope.store import Store, events as events_table, redactions
from tests.conftest_aws import aws, clients, moto_endpoint, put_events  # noqa: F401

KEY = b"test-key-0123456789"
SETTINGS = RedactionSettings(key=KEY)


def event(detail: dict[str, Any], detail_type: str = "CustomerRegistered") -> BusEvent:
    return BusEvent(id="ev-1", source="com.shop.customers", detail_type=detail_type,
                    time_ms=0, detail=orjson.dumps(detail).decode(), size_bytes=100)


@pytest.mark.parametrize("text, detector", [
    ("jane.doe+shop@example.co.uk", "email"),
    ("card 4111 1111 1111 1111 on file", "card"),
    ("4012888888881881", "card"),
    ("call +44 20 7946 0958", "phone"),
    ("(415) 555-2671", "phone"),
    ("key AKIAIOSFODNN7EXAMPLE leaked", "aws_key"),
])
def test_detectors_replace_what_they_recognise(text: str, detector: str) -> None:
    scrubbed, fired = scrub_text(text, KEY)
    assert fired == [detector] and f"pii:{detector}:" in scrubbed


@pytest.mark.parametrize("text", [
    "order 4111111111111112",  # 16 digits failing Luhn: an id, left alone
    "ord-1000", "2025-06-02T10:15:00Z", "amount 474.19", "sku SKU-4",
    "c0ffee00-1234-4abc-9def-001122334455",
])
def test_ordinary_values_are_left_alone(text: str) -> None:
    assert scrub_text(text, KEY) == (text, [])


@pytest.mark.parametrize("text, detector", [
    ("jane.doe+shop@example.co.uk", "email"),
    ("card 4111 1111 1111 1111 on file", "card"),
    ("call +44 20 7946 0958", "phone"),
    ("key AKIAIOSFODNN7EXAMPLE leaked", "aws_key"),
])
def test_masking_uses_the_scrubbers_detector(text: str, detector: str) -> None:
    """`mask_pii` (the dashboard's) blanks the same values `scrub_text` (the store's) replaces."""
    scrubbed, fired = scrub_text(text, KEY)
    assert fired == [detector]
    assert mask_pii(text, "#") == re.sub(rf"pii:{detector}:[0-9a-f]{{16}}", "#", scrubbed)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789 +-().@abcAKIASXYZ"), max_size=60))
def test_nothing_the_store_would_redact_survives_masking(text: str) -> None:
    """After masking, the detector finds nothing more: the mask hides every detected value."""
    assert replace_pii(mask_pii(text, "#"), lambda value, name: "!")[1] == []


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")


def test_equal_values_give_equal_tokens_and_the_key_matters() -> None:
    """Keyed: the same e-mail correlates across events; another key gives another token."""
    assert token("a@b.io", "email", KEY) == token("a@b.io", "email", KEY)
    assert token("a@b.io", "email", KEY) != token("a@b.io", "email", b"other")


def test_redact_event_records_paths_and_detectors() -> None:
    """Nested fields and array elements are redacted and reported with JSON paths."""
    clean, found = redact_event(event({"customer": {"email": "jane@example.com",
                                                    "phones": ["+33 1 42 68 53 00"]},
                                       "card": 4111111111111111, "orderId": "ord-1"}), SETTINGS)
    detail = json.loads(clean.detail)
    assert detail["orderId"] == "ord-1" and detail["customer"]["email"].startswith("pii:email:")
    assert is_redacted(clean.detail)
    assert sorted((r.json_path, r.detector) for r in found) == [
        ("$.detail.card", "card"), ("$.detail.customer.email", "email"),
        ("$.detail.customer.phones[0]", "phone")]


def test_catalog_declared_fields_are_redacted_whatever_their_value() -> None:
    settings = RedactionSettings(key=KEY, catalog_fields={
        "CustomerRegistered": ["detail.customer.name"]})
    clean, found = redact_event(event({"customer": {"name": "Jane Doe"}}), settings)
    assert json.loads(clean.detail)["customer"]["name"].startswith("pii:catalog:")
    assert [(r.json_path, r.detector) for r in found] == [("$.detail.customer.name", "catalog")]


def test_keep_originals_stores_values_but_still_reports_them() -> None:
    settings = RedactionSettings(key=KEY, keep_originals=True)
    original = event({"email": "jane@example.com"})
    clean, found = redact_event(original, settings)
    assert clean == original and [r.replaced for r in found] == [False]


def test_tap_collector_stores_redacted_events_and_the_redactions(aws: Any, store: Store) -> None:
    """Over moto: the stored detail holds tokens, never the address, and `redactions` says where."""
    from eventscope.collectors.pii import redaction_filter

    sqs, events = clients(aws, "sqs", "events")
    events.create_event_bus(Name="shop-bus")
    url = install_tap(sqs, events, "shop-bus").queue_url
    put_events(events, "shop-bus", [{"Source": "com.shop.customers",
                                     "DetailType": "CustomerRegistered",
                                     "Detail": {"customerId": "cus-1",
                                                "email": "jane@example.com"}}])
    run_tap(sqs, store, TapSettings(queue_url=url, wait_seconds=0), TapCounters(),
            threading.Event(), until_empty=True, event_filter=redaction_filter(SETTINGS))
    stored = store.select_rows(events_table.select())[0]
    assert "jane@example.com" not in stored["detail"] and "pii:email:" in stored["detail"]
    rows = store.select_rows(redactions.select())
    assert [(r["detail_type"], r["json_path"], r["detector"]) for r in rows] == [
        ("CustomerRegistered", "$.detail.email", "email")]


def test_lambda_handler_redacts_before_storing(aws: Any, store: Store, monkeypatch: Any) -> None:
    """The Lambda write path redacts too, with the key from $EVENTSCOPE_PII_KEY."""
    from eventscope.collectors.handler import handle
    from tests.test_collectors_service import sqs_event

    monkeypatch.setenv("EVENTSCOPE_PII_KEY", "k")
    sqs, events = clients(aws, "sqs", "events")
    events.create_event_bus(Name="shop-bus")
    url = install_tap(sqs, events, "shop-bus").queue_url
    put_events(events, "shop-bus", [{"Source": "s", "DetailType": "T",
                                     "Detail": {"card": "4111-1111-1111-1111"}}])
    handle(sqs_event(sqs, url), None, store=store)
    detail = json.loads(store.select_rows(events_table.select())[0]["detail"])
    assert detail["card"] == token("4111-1111-1111-1111", "card", b"k")


def test_the_store_keeps_one_generated_key_when_none_is_configured(store: Store) -> None:
    assert store.pii_key() == store.pii_key() and len(store.pii_key()) == 32


def test_ingest_command_redacts_before_storing(tmp_path: Any, monkeypatch: Any) -> None:
    """The file write path (`eventscope ingest`) redacts like the collectors and records it."""
    from click.testing import CliRunner

    from eventscope.cli import main
    from eventscope.store import open_store

    monkeypatch.setenv("EVENTSCOPE_PII_KEY", "k")
    envelope = {"version": "0", "id": "e-1", "detail-type": "CustomerRegistered",
                "source": "com.shop.customers", "account": "123456789012",
                "time": "2025-06-02T10:15:00Z", "region": "eu-west-1", "resources": [],
                "detail": {"customerId": "cus-1", "email": "jane@example.com"}}
    path = tmp_path / "events.ndjson"
    path.write_text(json.dumps(envelope) + "\n")
    db = f"sqlite:///{tmp_path / 's.db'}"
    result = CliRunner().invoke(main, ["ingest", str(path), "--db", db])
    assert result.exit_code == 0, result.output
    store = open_store(db)
    detail = json.loads(store.select_rows(events_table.select())[0]["detail"])
    assert detail["email"] == token("jane@example.com", "email", b"k")
    assert [r["json_path"] for r in store.select_rows(redactions.select())] == ["$.detail.email"]


@pytest.mark.parametrize("value", [1714557600000, "1714557600000", 1714557600000123,
                                   "ts 1714557600000123"])
def test_epoch_timestamps_are_not_taken_for_card_numbers(value: object) -> None:
    """Millisecond and microsecond timestamps (Luhn-valid or not) are left alone."""
    from eventscope.redaction import detect
    assert detect(value) is None


def test_a_luhn_valid_card_number_as_a_json_number_is_redacted() -> None:
    """A card number sent as a JSON number is still recognised."""
    from eventscope.redaction import detect
    assert detect(4111111111111111) == "card"


def test_a_stored_token_is_recognised_as_the_pii_it_replaced() -> None:
    """Findings over a redacted store still see which fields carried PII."""
    from eventscope.redaction import detect
    assert detect(token("a@b.io", "email", KEY)) == "email"


def test_the_prefilter_passes_payloads_without_pii_untouched() -> None:
    """An ordinary order payload is not a PII candidate, so it is never walked."""
    from eventscope.redaction import may_hold_pii
    assert not may_hold_pii('{"orderId":"ord-1","total":1299.5,"at":"2024-05-01T10:00:00Z"}')
    assert may_hold_pii('{"phone":"+44 20 7946 0958"}')


VALUES = ["jane@example.com", "a@b.io", "+44 20 7946 0958", "(415) 555-2671", "555.867.5309",
          "4111 1111 1111 1111", "AKIAIOSFODNN7EXAMPLE", "ord-1000", "Milano", "20121",
          "2024-05-01T10:00:00Z", "c0ffee00-1234-4abc-9def-001122334455", "Pro laptop 15\"",
          "tel. 0612345678", "x@y", "12345678", "(1) 2345-678", "Kasia García"]


@pytest.mark.parametrize("extra", [None, *VALUES])
def test_the_document_filter_passes_every_value_a_detector_fires_on(extra: str | None) -> None:
    """`string_filter` may narrow the per-value check to the document, never miss a value
    that holds PII (values that only look like candidates, a UUID's digits, it may skip)."""
    from eventscope.redaction import string_filter
    for value in VALUES:
        document = {"a": value, "b": {"c": [extra, "web"]}}
        check = string_filter(orjson.dumps(document).decode())
        for string in (value, extra, "web"):
            if string is not None and scrub_text(string, KEY)[1]:
                assert check is not None and check(string), (string, document)


def test_the_document_filter_skips_digit_runs_no_detector_matches() -> None:
    """A tracking number, an id's digits and dates pass the cheap digit count, but no
    detector matches any run of them: the detail is not walked; a phone number beside
    them still is."""
    from eventscope.redaction import string_filter
    plain = {"trackingNumber": "557788052364", "orderId": "ord-4259405278e4b98d",
             "at": "2024-05-01T14:07:42.547Z", "n": 1714557600000}
    assert string_filter(orjson.dumps(plain).decode()) is None
    check = string_filter(orjson.dumps({**plain, "tel": "555-867-5309"}).decode())
    assert check is not None and check("555-867-5309")


def test_the_document_filter_narrows_to_e_mails_when_that_is_all_there_can_be() -> None:
    """A document whose only candidate is an e-mail skips its other values at once."""
    from eventscope.redaction import string_filter
    check = string_filter(orjson.dumps({"email": "jane@example.com", "city": "Milano",
                                        "zip": "20121"}).decode())
    assert check is not None and check("jane@example.com") and not check("Milano")
    assert string_filter('{"orderId":"ord-1","at":"2024-05-01T10:00:00Z"}') is None
    phone = string_filter(orjson.dumps({"phone": "+44 20 7946 0958", "m": "a@b.io"}).decode())
    assert phone is not None and phone("+44 20 7946 0958") and phone("a@b.io")


def test_ingest_redacts_the_fields_the_catalog_declares(tmp_path: Any, monkeypatch: Any) -> None:
    """With EVENTSCOPE_CATALOG set, declared PII fields go even when no detector matches."""
    from click.testing import CliRunner

    from eventscope.cli import main
    from eventscope.store import open_store

    monkeypatch.setenv("EVENTSCOPE_PII_KEY", "k")
    monkeypatch.setenv("EVENTSCOPE_CATALOG", "eventscope/demo_catalog")
    envelope = {"version": "0", "id": "e-2", "detail-type": "CustomerRegistered",
                "source": "com.shop.crm", "time": "2025-06-02T10:15:00Z",
                "detail": {"customer": {"name": "Jane Doe", "tier": "gold"}}}
    path = tmp_path / "events.ndjson"
    path.write_text(json.dumps(envelope) + "\n")
    db = f"sqlite:///{tmp_path / 's.db'}"
    assert CliRunner().invoke(main, ["ingest", str(path), "--db", db]).exit_code == 0
    detail = json.loads(open_store(db).select_rows(events_table.select())[0]["detail"])
    assert detail["customer"] == {"name": token('"Jane Doe"', "catalog", b"k"), "tier": "gold"}


@pytest.mark.parametrize("keep", [False, True])
def test_ingest_scrubs_error_messages_like_collect_logs(store: Store, tmp_path: Path,
                                                        keep: bool) -> None:
    """A consumer's error line quoting an e-mail address: the stored error message carries its
    token instead (as `collect logs` stores it), or the original when originals are kept."""
    from eventscope.ingest import ingest_paths
    from eventscope.store import invocations as invocations_table

    stream = {"logGroupName": "/aws/lambda/crm-notifier", "logStreamName": "2025/06/02/[$LATEST]a"}
    lines = [
        "START RequestId: r-1 Version: $LATEST",
        "[ERROR]\t2025-06-02T10:15:00.100Z\tr-1\tcannot notify jane@example.com: bounced",
        "END RequestId: r-1",
        "REPORT RequestId: r-1\tDuration: 12.00 ms\tBilled Duration: 12 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 70 MB\t",
    ]
    logs = tmp_path / "logs.ndjson"
    logs.write_text("".join(json.dumps({**stream, "timestamp": 1748859300000 + i,
                                        "message": line}) + "\n"
                            for i, line in enumerate(lines)))
    ingest_paths(store, [str(logs)], redaction=RedactionSettings(key=KEY, keep_originals=keep))
    [row] = store.select_rows(invocations_table.select())
    expected = ("cannot notify jane@example.com: bounced" if keep else
                f"cannot notify {token('jane@example.com', 'email', KEY)}: bounced")
    assert (row["outcome"], row["error_message"]) == ("ok", expected)  # logged, not failed


def test_a_token_that_looks_like_a_card_number_is_not_tokenised_again() -> None:
    """A token's 16 hex digits can all be digits and pass Luhn: the stored form keeps it."""
    looks_like_a_card = "pii:email:4111111111111111"
    assert stored_query(looks_like_a_card, b"k") == looks_like_a_card
    assert stored_query(f"order of {looks_like_a_card} 4111 1111 1111 1111", b"k") \
        .startswith(f"order of {looks_like_a_card} pii:card:")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789abcdef @.-+pii:ecmalrd", max_size=60))
def test_the_stored_form_of_a_stored_form_is_itself(text: str) -> None:
    once = stored_query(text, b"k")
    assert stored_query(once, b"k") == once
