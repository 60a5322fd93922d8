"""Tests for the simulated company: determinism, real AWS shapes, and the planted problems."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from eventscope.simulator import (
    CONSUMERS,
    MAX_DETAIL_TYPES,
    CompanyConfig,
    Plants,
    SimItem,
    main,
    producers,
    simulate,
    subscriptions,
    write_ndjson,
)

ENVELOPE_KEYS = {"version", "id", "detail-type", "source", "account", "time", "region",
                 "resources", "detail"}
LOG_RECORD_KEYS = {"logGroupName", "logStreamName", "timestamp", "message", "ingestionTime",
                   "eventId"}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
STREAM = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")
TEXT_CONSUMERS = [c.name for c in CONSUMERS if c.log_format == "text"]
JSON_CONSUMERS = [c.name for c in CONSUMERS if c.log_format == "json"]


@pytest.fixture(scope="module")
def sample() -> list[SimItem]:
    """A demo company's first 3,000 events and their consumers' logs."""
    return list(simulate(CompanyConfig.demo(), seed=11, n_events=3000))


@pytest.fixture(scope="module")
def unplanted() -> list[SimItem]:
    """The same company without the article's problems."""
    config = replace(CompanyConfig.demo(), plants=Plants.none())
    return list(simulate(config, seed=11, n_events=3000))


def events(items: list[SimItem]) -> list[dict[str, Any]]:
    return [i.record for i in items if i.kind == "event"]


def logs(items: list[SimItem], consumer: str | None = None) -> list[dict[str, Any]]:
    group = f"/aws/lambda/{consumer}" if consumer else None
    return [i.record for i in items
            if i.kind == "log" and (group is None or i.record["logGroupName"] == group)]


def powertools_lines(items: list[SimItem], consumer: str | None = None) -> list[dict[str, Any]]:
    lines = []
    for record in logs(items, consumer):
        if record["message"].startswith('{"level"'):
            lines.append(json.loads(record["message"]))
    return lines


def event_ids_of(items: list[SimItem], *detail_types: str) -> set[str]:
    return {e["id"] for e in events(items) if e["detail-type"] in detail_types}


def test_same_seed_yields_identical_items() -> None:
    """Two runs with the same seed produce the same items, byte for byte."""
    first = list(simulate(CompanyConfig.demo(), seed=5, n_events=200))
    second = list(simulate(CompanyConfig.demo(), seed=5, n_events=200))
    assert first == second


def test_different_seeds_yield_different_items() -> None:
    """Another seed gives another company history."""
    first = events(list(simulate(CompanyConfig.demo(), seed=5, n_events=50)))
    second = events(list(simulate(CompanyConfig.demo(), seed=6, n_events=50)))
    assert [e["id"] for e in first] != [e["id"] for e in second]


def test_n_events_yields_exactly_that_many_events() -> None:
    """Asking for N events gives exactly N bus events."""
    assert len(events(list(simulate(seed=2, n_events=777)))) == 777


def test_n_orders_runs_every_lifecycle_to_its_end() -> None:
    """Asking for N orders gives N OrderCreated events, each followed by its outcome."""
    items = list(simulate(seed=2, n_orders=40))
    by_type = Counter(e["detail-type"] for e in events(items))
    assert by_type["OrderCreated"] == 40
    assert by_type["OrderDelivered"] + by_type["OrderCancelled"] == 40


def test_asking_for_both_sizes_is_refused() -> None:
    """Exactly one of n_orders and n_events must be given."""
    with pytest.raises(ValueError):
        simulate(n_orders=1, n_events=1)


def test_items_come_in_time_order(sample: list[SimItem]) -> None:
    """Events and log records are interleaved in timestamp order."""
    times = [item.time_ms for item in sample]
    assert times == sorted(times)


def test_envelopes_have_exactly_eventbridge_keys(sample: list[SimItem]) -> None:
    """Every bus event is an EventBridge envelope with its nine keys and no others."""
    assert all(set(e) == ENVELOPE_KEYS for e in events(sample))


def test_envelope_fields_have_eventbridge_shapes(sample: list[SimItem]) -> None:
    """Envelope version "0", uuid ids, second-precision UTC time, an account, a list."""
    for e in events(sample):
        assert e["version"] == "0"
        assert UUID.match(e["id"])
        assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$", e["time"])
        assert e["account"] == "123456789012" and e["region"] == "eu-west-1"
        assert e["resources"] == []
        assert e["source"].startswith("com.shop.")


def test_event_ids_are_unique(sample: list[SimItem]) -> None:
    """No two bus events share an id."""
    ids = [e["id"] for e in events(sample)]
    assert len(ids) == len(set(ids))


def test_every_detail_has_order_id_and_version(sample: list[SimItem]) -> None:
    """detail.orderId and detail.version are on every event."""
    assert all(e["detail"]["orderId"] and e["detail"]["version"] in ("1", "2")
               for e in events(sample))


def test_default_company_spreads_over_about_twelve_types(sample: list[SimItem]) -> None:
    """The demo company emits about 12 detail-types."""
    assert 11 <= len({e["detail-type"] for e in events(sample)}) <= 13


def test_log_records_have_exactly_filter_log_events_keys(sample: list[SimItem]) -> None:
    """Every log record is a filter_log_events event plus its logGroupName."""
    records = logs(sample)
    assert records
    assert all(set(r) == LOG_RECORD_KEYS for r in records)


def test_log_records_have_cloudwatch_value_shapes(sample: list[SimItem]) -> None:
    """Lambda group and stream names, millisecond ints, ingestion after the event, digit ids."""
    for r in logs(sample):
        assert r["logGroupName"].startswith("/aws/lambda/")
        assert STREAM.match(r["logStreamName"])
        assert isinstance(r["timestamp"], int) and r["ingestionTime"] >= r["timestamp"]
        assert r["eventId"].isdigit() and len(r["eventId"]) == 56


def test_text_consumers_log_start_end_report_lines(sample: list[SimItem]) -> None:
    """Consumers in Lambda's TEXT format log START, END and tab-separated REPORT lines."""
    for name in TEXT_CONSUMERS:
        messages = [r["message"] for r in logs(sample, name)]
        assert any(m.startswith("START RequestId: ") and m.endswith("Version: $LATEST\n")
                   for m in messages)
        assert any(m.startswith("END RequestId: ") for m in messages)
        assert any(re.match(r"^REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms"
                            r"\tMemory Size: \d+ MB\tMax Memory Used: \d+ MB\t", m)
                   for m in messages)


def test_json_consumers_log_platform_records(sample: list[SimItem]) -> None:
    """Consumers in Lambda's JSON format log platform.start, runtimeDone and report records."""
    for name in JSON_CONSUMERS:
        types = Counter()
        for r in logs(sample, name):
            if r["message"].startswith('{"time"'):
                types[json.loads(r["message"])["type"]] += 1
        assert types["platform.start"] == types["platform.runtimeDone"] == types["platform.report"]
        assert types["platform.start"] > 0


def test_json_report_carries_metrics_and_status(sample: list[SimItem]) -> None:
    """platform.report records hold durationMs, maxMemoryUsedMB and a status."""
    reports = [json.loads(r["message"])["record"] for r in logs(sample)
               if '"type":"platform.report"' in r["message"]]
    assert reports
    assert all({"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB"}
               <= set(r["metrics"]) for r in reports)
    assert {r["status"] for r in reports} >= {"success", "error", "timeout"}


def test_half_the_consumers_log_in_each_format() -> None:
    """Three consumers use Lambda's TEXT format and three its JSON format."""
    assert len(TEXT_CONSUMERS) == len(JSON_CONSUMERS) == 3


def test_powertools_lines_correlate_to_bus_event_ids(sample: list[SimItem]) -> None:
    """Every Powertools line's correlation_id is the id of an event seen on the bus."""
    ids = {e["id"] for e in events(sample)}
    lines = powertools_lines(sample)
    assert lines
    assert all(line["correlation_id"] in ids for line in lines)


def test_powertools_lines_have_logger_keys(sample: list[SimItem]) -> None:
    """Powertools lines carry level, location, timestamp, service and Lambda context keys."""
    keys = {"level", "location", "message", "timestamp", "service", "cold_start",
            "function_name", "function_memory_size", "function_arn", "function_request_id",
            "correlation_id"}
    assert all(keys <= set(line) for line in powertools_lines(sample))


def test_every_delivery_logs_one_powertools_line_per_attempt(sample: list[SimItem]) -> None:
    """Each START (or platform.start) is followed by a 'Processing <type>' Powertools line,
    except the repeats an idempotent consumer answers without running its handler."""
    from eventscope.lambda_logs import assemble_invocations

    starts = sum(1 for r in logs(sample) if r["message"].startswith("START RequestId")
                 or '"type":"platform.start"' in r["message"])
    processing = sum(1 for line in powertools_lines(sample)
                     if line["message"].startswith("Processing "))
    answered = sum(1 for inv in assemble_invocations(logs(sample))
                   if inv.outcome == "ok" and inv.event_id is None)
    assert starts == processing + answered


def test_unhandled_text_error_is_one_record_with_its_traceback(sample: list[SimItem]) -> None:
    """In TEXT format an unhandled exception is one record: '[ERROR] Type: msg' + traceback."""
    errors = [r["message"] for r in logs(sample) if r["message"].startswith("[ERROR] ")]
    assert errors
    assert all("\nTraceback (most recent call last):\n" in m and "File \"/var/task/" in m
               for m in errors)


def test_unhandled_json_error_carries_type_message_and_stack(sample: list[SimItem]) -> None:
    """In JSON format an unhandled exception has errorType, errorMessage, stackTrace."""
    errors = [json.loads(r["message"]) for r in logs(sample) if '"stackTrace"' in r["message"]]
    assert errors
    assert all(e["level"] == "ERROR" and e["errorType"] and e["stackTrace"] for e in errors)


def test_text_timeouts_log_task_timed_out_and_status(sample: list[SimItem]) -> None:
    """A TEXT timeout logs 'Task timed out after N.00 seconds' and a REPORT with Status."""
    messages = [r["message"] for r in logs(sample)]
    assert any(re.search(r"\S+ Task timed out after \d+\.00 seconds\n$", m) for m in messages)
    assert any(m.startswith("REPORT") and "Status: timeout" in m for m in messages)


def test_failed_invocations_are_retried_with_the_same_request_id(sample: list[SimItem]) -> None:
    """Lambda's asynchronous retries reuse the request id of the failed invocation."""
    starts = Counter(r["message"].split()[2] for r in logs(sample)
                     if r["message"].startswith("START RequestId"))
    assert any(count > 1 for count in starts.values())


def test_warranty_consumer_never_handles_cancellations(sample: list[SimItem]) -> None:
    """Planted: no warranty-handler log line correlates to an OrderCancelled/Returned event."""
    ended = event_ids_of(sample, "OrderCancelled", "OrderReturned")
    assert ended
    handled = {line["correlation_id"] for line in powertools_lines(sample, "warranty-handler")}
    assert not handled & ended


def test_warranty_consumer_handles_cancellations_when_unplanted(unplanted: list[SimItem]) -> None:
    """Without the plant, warranty-handler subscribes to cancellations and returns."""
    ended = event_ids_of(unplanted, "OrderCancelled", "OrderReturned")
    handled = {line["correlation_id"] for line in powertools_lines(unplanted, "warranty-handler")}
    assert ended and ended <= handled


def test_version_bump_emits_order_paid_v2_without_total_amount(sample: list[SimItem]) -> None:
    """Planted: OrderPaid moves to version 2, renaming totalAmount to amount."""
    paid = [e["detail"] for e in events(sample) if e["detail-type"] == "OrderPaid"]
    v2 = [d for d in paid if d["version"] == "2"]
    assert v2 and len(v2) < len(paid)
    assert all("amount" in d and "totalAmount" not in d for d in v2)


def test_version_bump_breaks_invoice_generator_with_key_error(sample: list[SimItem]) -> None:
    """Planted: invoice-generator fails with KeyError: 'totalAmount' on v2 events for a while."""
    messages = [r["message"] for r in logs(sample, "invoice-generator")]
    assert any(m.startswith("[ERROR] KeyError: 'totalAmount'") for m in messages)


def test_version_bump_is_fixed_before_the_run_ends(sample: list[SimItem]) -> None:
    """The broken consumer recovers: the last v2 OrderPaid events are handled without error."""
    v2 = [i for i in sample if i.kind == "event" and i.record["detail-type"] == "OrderPaid"
          and i.record["detail"]["version"] == "2"]
    last = v2[-1]
    failures = [i for i in sample if i.kind == "log" and i.time_ms > last.time_ms
                and "KeyError: 'totalAmount'" in i.record["message"]]
    assert not failures


def test_no_version_bump_when_unplanted(unplanted: list[SimItem]) -> None:
    """Without the plant every OrderPaid stays at version 1."""
    assert {e["detail"]["version"] for e in events(unplanted)} == {"1"}


def test_fraud_check_processes_a_duplicate_delivery_twice(sample: list[SimItem]) -> None:
    """Planted: fraud-check computes a fraud score twice for the same event."""
    processed = Counter(line["correlation_id"] for line in powertools_lines(sample, "fraud-check")
                        if line["message"] == "Fraud score computed")
    assert any(count > 1 for count in processed.values())


def test_idempotent_consumers_answer_repeats_without_running_the_handler(
        sample: list[SimItem]) -> None:
    """Other consumers answer a repeat delivery as Powertools Idempotency does: the handler
    does not run, so the invocation succeeds without a line carrying the event id."""
    from eventscope.lambda_logs import assemble_invocations

    skipped = [inv for inv in assemble_invocations(logs(sample))
               if inv.outcome == "ok" and inv.event_id is None]
    assert skipped and all(inv.consumer != "fraud-check" for inv in skipped)


def test_undocumented_event_is_emitted(sample: list[SimItem]) -> None:
    """Planted: OrderPriorityChanged travels on the bus."""
    assert event_ids_of(sample, "OrderPriorityChanged")


def test_deprecated_event_is_still_emitted_and_consumed(sample: list[SimItem]) -> None:
    """Planted: OrderPlaced (deprecated) is emitted and analytics-sink still handles it."""
    placed = event_ids_of(sample, "OrderPlaced")
    handled = {line["correlation_id"] for line in powertools_lines(sample, "analytics-sink")}
    assert placed and placed & handled


def test_customer_emails_travel_in_payloads(sample: list[SimItem]) -> None:
    """Planted: OrderCreated carries the customer's e-mail address."""
    created = [e["detail"] for e in events(sample) if e["detail-type"] == "OrderCreated"]
    assert all("@" in d["customer"]["email"] for d in created)


def test_no_planted_types_or_emails_when_unplanted(unplanted: list[SimItem]) -> None:
    """Without plants: no OrderPriorityChanged, no OrderPlaced, no e-mail in any payload."""
    types = {e["detail-type"] for e in events(unplanted)}
    assert not types & {"OrderPriorityChanged", "OrderPlaced"}
    assert not any("@" in json.dumps(e["detail"]) for e in events(unplanted))


def test_subscriptions_reflect_the_warranty_plant() -> None:
    """The declared rules leave out cancellations for warranty-handler only when planted."""
    assert "OrderCancelled" not in subscriptions(Plants())["warranty-handler"]
    assert "OrderCancelled" in subscriptions(Plants.none())["warranty-handler"]


def test_producers_list_the_undocumented_type_only_when_planted() -> None:
    """OrderPriorityChanged is among com.shop.orders' types only with its plant on."""
    planted = producers(CompanyConfig.demo())
    clean = producers(replace(CompanyConfig.demo(), plants=Plants.none()))
    assert "OrderPriorityChanged" in planted["com.shop.orders"]
    assert "OrderPriorityChanged" not in clean["com.shop.orders"]


def test_bench_company_spreads_over_thirty_types() -> None:
    """The bench preset emits about 30 detail-types."""
    items = list(simulate(CompanyConfig.bench(), seed=1, n_events=4000))
    assert len({e["detail-type"] for e in events(items)}) == MAX_DETAIL_TYPES == 30


def test_bench_company_logs_about_three_records_per_event() -> None:
    """The bench preset writes about three log records per bus event."""
    items = list(simulate(CompanyConfig.bench(), seed=1, n_events=4000))
    assert 2.5 <= len(logs(items)) / len(events(items)) <= 3.5


def test_event_bytes_sets_the_envelope_size() -> None:
    """With event_bytes=1024, envelopes average about 1 KB."""
    items = list(simulate(CompanyConfig.bench(), seed=1, n_events=1000))
    sizes = [len(json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode())
             for e in events(items)]
    assert 950 <= sum(sizes) / len(sizes) <= 1100


def test_write_ndjson_writes_one_object_per_line(tmp_path: Any) -> None:
    """Events go to events.ndjson, log records to logs.ndjson, one JSON object a line."""
    summary = write_ndjson(simulate(seed=3, n_events=100), tmp_path)
    event_lines = (tmp_path / "events.ndjson").read_text(encoding="utf-8").splitlines()
    log_lines = (tmp_path / "logs.ndjson").read_text(encoding="utf-8").splitlines()
    assert len(event_lines) == summary.events == 100
    assert len(log_lines) == summary.logs > 0
    assert json.loads(event_lines[0])["detail-type"] == "OrderCreated"
    assert set(json.loads(log_lines[0])) == LOG_RECORD_KEYS


def test_write_ndjson_gzips_when_asked(tmp_path: Any) -> None:
    """With gzip=True both files are .ndjson.gz."""
    summary = write_ndjson(simulate(seed=3, n_events=50), tmp_path, gzip=True)
    with gzip.open(summary.events_path, "rt", encoding="utf-8") as handle:
        assert sum(1 for _ in handle) == 50


def test_command_line_writes_the_files(tmp_path: Any, capsys: Any) -> None:
    """`python -m eventscope.simulator --events N --out DIR` writes both files."""
    assert main(["--events", "30", "--out", str(tmp_path), "--seed", "4"]) == 0
    assert len((tmp_path / "events.ndjson").read_bytes().splitlines()) == 30
    assert (tmp_path / "logs.ndjson").stat().st_size > 0
    assert "wrote 30 events" in capsys.readouterr().err
