"""EventBridge bus logs: parsing delivery records, and collecting them from moto's CloudWatch
Logs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from eventscope.collectors.logs_collector import LogsCounters, LogsSettings, collect_bus_logs
from eventscope.bus_logs import parse_delivery
from eventscope.events import RejectedRecord
from eventscope.store import Store, deliveries
from tests.conftest_aws import aws, clients, moto_endpoint  # noqa: F401

RECORDS = json.loads((Path(__file__).parent / "data/collectors/bus_log_records.json").read_text())
GROUP = "/aws/vendedlogs/events/event-bus/shop-bus"


def as_log_record(body: dict[str, Any], ts: int = 1_750_000_000_000) -> dict[str, Any]:
    return {"logGroupName": GROUP, "logStreamName": "s", "timestamp": ts,
            "message": json.dumps(body)}


def test_parse_maps_message_types_to_outcomes() -> None:
    """Attempt success, retryable and permanent failure and DLQ become outcomes; other steps
    None."""
    rows = [parse_delivery(as_log_record(r)) for r in RECORDS]
    assert [row and row["outcome"] for row in rows] == [
        None, None, None, "ok", "retrying", "failed", "dead_lettered"]
    failed = rows[5]
    assert failed["target_arn"].endswith(":function:billing-consumer")
    assert failed["rule_arn"].endswith("rule/shop-bus/warranty-orders")
    assert (failed["bus"], failed["attempt"], failed["error_code"]) == ("shop-bus", 2, "403")
    assert "not authorized" in failed["error_message"]


def test_parse_refuses_a_record_that_is_not_a_bus_log() -> None:
    with pytest.raises(RejectedRecord, match="not an EventBridge bus log"):
        parse_delivery(as_log_record({"level": "INFO", "message": "hello"}))


def test_collect_bus_logs_stores_deliveries_and_quarantines_junk(aws: Any, store: Store) -> None:
    """Over moto: 4 delivery rows from 7 records, a junk line quarantined, a rerun adds nothing."""
    logs, = clients(aws, "logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="s")
    now = int(time.time() * 1000) - 60_000
    events = [{"timestamp": now + i, "message": json.dumps(r)} for i, r in enumerate(RECORDS)]
    events.append({"timestamp": now + 50, "message": "not json at all"})
    logs.put_log_events(logGroupName=GROUP, logStreamName="s", logEvents=events)
    settings = LogsSettings(since_ms=now - 3_600_000)
    counters = LogsCounters()
    collect_bus_logs(logs, store, GROUP, settings, counters)
    collect_bus_logs(logs, store, GROUP, settings, LogsCounters())
    rows = store.select_rows(deliveries.select())
    assert sorted(r["outcome"] for r in rows) == ["dead_lettered", "failed", "ok", "retrying"]
    assert counters.deliveries == 4
    assert store.counts()["quarantined_by_reason"] == {"invalid_json": 1}
