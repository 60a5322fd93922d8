"""The demo's parts on their own: the clock mapping, put_events entries, the invocation-wise
log writer (against moto's server over HTTP), and `--no-aws`'s cut of the simulation."""

from __future__ import annotations

import random
import time
from typing import Any

import orjson

from eventscope.collectors.clients import make_client
from eventscope.collectors.demo import (LogWriter, Timeline, _per_invocation, delivered, entry,
                             subscribers)
from eventscope.cli.demo_cmd import first_events
from eventscope.simulator import CONSUMERS, CompanyConfig, LambdaFleet, SimItem
from tests.conftest_aws import aws, moto_endpoint  # noqa: F401  (fixtures)

NOW = 1_795_000_000_000
ENVELOPE = {"version": "0", "id": "sim-id", "detail-type": "OrderShipped",
            "source": "com.shop.logistics", "account": "123456789012",
            "time": "2024-05-01T10:00:00Z", "region": "eu-west-1", "resources": [],
            "detail": {"orderId": "ord-1", "version": "1", "shippedAt": "2024-05-01T10:00:00Z"}}


def test_the_simulated_clock_runs_faster_from_the_backfill_start() -> None:
    """Simulated time zero is the backfill's start; one wall second is `scale` simulated."""
    timeline = Timeline(NOW - 3_600_000, NOW, scale=720)
    assert timeline.wall(timeline.sim(NOW)) == NOW
    assert timeline.sim(NOW - 3_600_000 + 1000) == NOW - 3_600_000 + 720_000


def test_the_version_bump_falls_in_the_history_or_just_after_going_live() -> None:
    """With an hour of history: 40 % and 75 % into it; without: 30 s and 3.5 min live."""
    assert Timeline(NOW - 3_600_000, NOW).version_bump() == (NOW - 2_160_000, NOW - 900_000)
    assert Timeline(NOW, NOW).version_bump() == (NOW + 30_000, NOW + 210_000)


def test_an_entry_carries_the_wall_time_and_the_delivered_envelope_the_bus_id() -> None:
    """put_events gets the wall-clock Time (and event times in the detail follow it); a rule
    target receives the bus's event id."""
    put = entry(ENVELOPE, NOW)
    assert put["Time"].timestamp() * 1000 == NOW and put["EventBusName"] == "shop-bus"
    assert orjson.loads(put["Detail"])["shippedAt"] == "2026-11-18T11:06:40.000Z"
    envelope = delivered(put, "bus-id", NOW)
    assert envelope["id"] == "bus-id" and envelope["time"] == "2026-11-18T11:06:40Z"
    assert envelope["detail"] == orjson.loads(put["Detail"])


def test_rules_route_each_type_to_its_consumers() -> None:
    """warranty-handler hears OrderCreated and no cancellation (the planted problem)."""
    routes = {t: sorted(c.name for c in cs) for t, cs in subscribers().items()}
    assert "warranty-handler" in routes["OrderCreated"]
    assert "warranty-handler" not in routes["OrderCancelled"] + routes["OrderReturned"]
    assert routes["OrderPlaced"] == ["analytics-sink"]


def _records(n: int) -> list[dict[str, Any]]:
    fleet = LambdaFleet(CompanyConfig.demo(), random.Random(1), fix_ms=0)
    records: list[dict[str, Any]] = []
    for consumer in CONSUMERS[:n]:
        inv = fleet.attempt(consumer, {**ENVELOPE, "detail-type": "OrderCreated"},
                            fleet.new_request_id(), int(time.time() * 1000) - 60_000,
                            failed_before=False, duplicate=False)
        records += fleet.records(inv)
    return records


def test_records_split_into_invocations_at_each_report() -> None:
    """Text (REPORT) and JSON (platform.report) invocations are each one group."""
    groups = list(_per_invocation(_records(2)))
    assert len(groups) == 2
    assert groups[0][-1]["message"].startswith("REPORT ")
    assert '"type":"platform.report"' in groups[1][-1]["message"]


def test_the_log_writer_writes_whole_invocations_when_they_are_due(aws) -> None:  # noqa: F811
    """Nothing before its last record is due; then the whole invocation, in time order."""
    logs = make_client("logs", aws)
    for consumer in CONSUMERS[:2]:
        logs.create_log_group(logGroupName=f"/aws/lambda/{consumer.name}")
    writer = LogWriter(logs)
    records = _records(2)
    writer.schedule(records)
    first_end = min(max(r["timestamp"] for r in g) for g in _per_invocation(records))
    assert writer.flush_due(first_end - 1) == 0
    written = writer.flush_due(first_end) + writer.flush_all()
    assert written == writer.written == len(records)
    for consumer in CONSUMERS[:2]:
        stored = logs.filter_log_events(logGroupName=f"/aws/lambda/{consumer.name}")["events"]
        expected = [r["message"] for r in records
                    if r["logGroupName"] == f"/aws/lambda/{consumer.name}"]
        assert [e["message"] for e in stored] == expected


def test_no_aws_keeps_the_first_n_events_and_nothing_after_now() -> None:
    items = [SimItem("event", 1, {}), SimItem("log", 2, {}), SimItem("event", 3, {}),
             SimItem("log", 4, {}), SimItem("event", 5, {}), SimItem("log", 6, {})]
    assert [i.time_ms for i in first_events(items, 2, now_ms=100)] == [1, 2, 3, 4]
    assert [i.time_ms for i in first_events(items, 5, now_ms=4)] == [1, 2, 3, 4]
