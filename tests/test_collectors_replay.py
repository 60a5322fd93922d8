"""Replay over moto: dry run, bus replay marked and ignored by the tap, idempotency, consumers."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from click.testing import CliRunner

from eventscope.collectors.replay import ReplayError, Selection, execute_replay, plan_replay
from eventscope.collectors.tap import install_tap
from eventscope.collectors.tap_collector import TapCounters, TapSettings, run_tap
from eventscope.cli import main
from eventscope.records import BusEvent
from eventscope.store import Store, replay_audit
from tests.conftest_aws import aws, clients, drain, make_bus_queue, moto_endpoint  # noqa: F401

BUS = "shop-bus"


def stored_event(n: int, detail: dict[str, Any] | None = None) -> BusEvent:
    return BusEvent(id=f"0b7e6c1a-0000-4000-8000-00000000000{n}", source="com.shop.orders",
                    detail_type="OrderCancelled", time_ms=1_750_000_000_000 + n * 1000,
                    detail=json.dumps(detail or {"orderId": f"ord-{n}", "version": "1"}),
                    size_bytes=300, account="123456789012", region="us-east-1",
                    correlation_key=f"ord-{n}")


@pytest.fixture
def world(aws: Any, store: Store) -> dict[str, Any]:
    """A bus with a consumer rule → queue, the tap, and three stored events."""
    events, sqs, lam = clients(aws, "events", "sqs", "lambda")
    consumer_url = make_bus_queue(events, sqs, BUS, "warranty", "warranty-orders",
                                  {"detail-type": ["OrderCancelled"]})
    tap_url = install_tap(sqs, events, BUS).queue_url
    store.write_batch([stored_event(n) for n in range(3)])
    return {"events": events, "sqs": sqs, "lambda": lam, "consumer_url": consumer_url,
            "tap_url": tap_url, "store": store}


def test_dry_run_sends_nothing_and_audits_nothing(world: dict[str, Any], aws: Any,
                                                  store_url: str) -> None:
    result = CliRunner().invoke(main, ["replay", "--bus", BUS, "--db", store_url,
                                       "--endpoint-url", aws.endpoint_url])
    assert result.exit_code == 0, result.output
    assert "would send 3 event(s) to bus shop-bus" in result.output and "dry run" in result.output
    assert drain(world["sqs"], world["consumer_url"]) == []
    assert world["store"].select_rows(replay_audit.select()) == []


def test_bus_replay_reaches_consumers_marked_and_the_tap_ignores_the_echo(
        world: dict[str, Any]) -> None:
    """Sent: the consumer gets 3 marked events; the tap counts 3 echoes and stores nothing new."""
    store, sqs = world["store"], world["sqs"]
    plan = plan_replay(world["events"], store, BUS, Selection())
    result = execute_replay(world, store, plan)
    assert (result["status"], result["sent"]) == ("sent", 3)
    bodies = [json.loads(m["Body"]) for m in drain(sqs, world["consumer_url"])]
    assert sorted(b["detail"]["_eventscopeReplay"]["originalId"] for b in bodies) == sorted(
        e.id for e in plan.events)
    counters = TapCounters()
    run_tap(sqs, store, TapSettings(queue_url=world["tap_url"], wait_seconds=0), counters,
            threading.Event(), until_empty=True)
    assert counters.replay_echoes == 3 and store.counts()["events"] == 3
    audit = store.select_rows(replay_audit.select())
    assert [(a["status"], a["event_count"], a["mode"]) for a in audit] == [("sent", 3, "bus")]


def test_the_same_request_twice_sends_once(world: dict[str, Any]) -> None:
    store = world["store"]
    execute_replay(world, store, plan_replay(world["events"], store, BUS, Selection()))
    drain(world["sqs"], world["consumer_url"])
    with pytest.raises(ReplayError, match="already requested"):
        execute_replay(world, store, plan_replay(world["events"], store, BUS, Selection()))
    assert drain(world["sqs"], world["consumer_url"]) == []


def test_redacted_events_are_refused(world: dict[str, Any]) -> None:
    store = world["store"]
    store.write_batch([stored_event(7, {"email": "pii:email:0123456789abcdef"})])
    with pytest.raises(ReplayError, match="stored with PII redacted"):
        plan_replay(world["events"], store, BUS, Selection(event_ids=(stored_event(7).id,)))


def test_consumer_replay_without_archive_sends_to_the_rule_targets(world: dict[str, Any]) -> None:
    store = world["store"]
    plan = plan_replay(world["events"], store, BUS, Selection(event_ids=(stored_event(1).id,)),
                       consumer="warranty-orders")
    assert plan.mode == "target"
    result = execute_replay(world, store, plan)
    assert result["sent"] == 1
    body = json.loads(drain(world["sqs"], world["consumer_url"])[0]["Body"])
    assert body["id"] == stored_event(1).id and body["detail"]["orderId"] == "ord-1"
    assert drain(world["sqs"], world["tap_url"]) == []  # only the consumer got it


def test_consumer_replay_with_an_archive_starts_a_replay_filtered_to_its_rule(
        world: dict[str, Any]) -> None:
    events, store = world["events"], world["store"]
    bus_arn = events.describe_event_bus(Name=BUS)["Arn"]
    events.create_archive(ArchiveName="shop-archive", EventSourceArn=bus_arn)
    plan = plan_replay(events, store, BUS, Selection(), consumer="warranty-orders")
    assert plan.mode == "archive"
    result = execute_replay(world, store, plan)
    replay = events.describe_replay(ReplayName=result["replay_name"])
    rule_arn = events.describe_rule(Name="warranty-orders", EventBusName=BUS)["Arn"]
    assert replay["Destination"]["FilterArns"] == [rule_arn]


class FailFirstEntryOnce:
    """The real events client, except that the first put_events reports its first entry failed."""

    def __init__(self, events: Any) -> None:
        self.events, self.failed = events, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.events, name)

    def put_events(self, Entries: list[dict[str, Any]]) -> Any:
        if self.failed:
            return self.events.put_events(Entries=Entries)
        self.failed = True
        response = self.events.put_events(Entries=Entries[1:])
        response["Entries"].insert(0, {"ErrorCode": "InternalFailure", "ErrorMessage": "x"})
        return response


def test_failed_put_events_entries_are_retried(world: dict[str, Any]) -> None:
    store = world["store"]
    flaky = FailFirstEntryOnce(world["events"])
    result = execute_replay({**world, "events": flaky}, store,
                            plan_replay(flaky, store, BUS, Selection()))
    assert (result["sent"], result["failed"], result["retries"]) == (3, 0, 1)
    assert len(drain(world["sqs"], world["consumer_url"])) == 3
