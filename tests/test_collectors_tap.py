"""The bus tap over moto's HTTP server: install/remove, and the SQS collector's guarantees."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from eventscope.collectors.tap import TapError, install_tap, queue_names, remove_tap
from eventscope.collectors.tap_collector import (TapCounters, TapSettings, classify_messages,
                                                 poll_once, run_tap)
from eventscope.errors import StoreError
from eventscope.sampling import keep
from eventscope.store import Store, events as events_table
from tests.conftest_aws import aws, clients, make_bus_queue, moto_endpoint, put_events  # noqa: F401

BUS = "shop-bus"
ENTRIES = json.loads(
    (Path(__file__).parent / "data/collectors/put_events_entries.json").read_text())


@pytest.fixture
def tapped(aws: Any) -> tuple[Any, Any, str]:
    """A bus with the tap installed: (sqs, events, queue URL)."""
    sqs, events = clients(aws, "sqs", "events")
    events.create_event_bus(Name=BUS)
    report = install_tap(sqs, events, BUS)
    return sqs, events, report.queue_url


def settings(queue_url: str, **overrides: Any) -> TapSettings:
    return TapSettings(queue_url=queue_url, wait_seconds=0, store_retry_seconds=0, **overrides)


def stored_ids(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return [row[0] for row in conn.execute(sa.select(events_table.c.id))]


def queue_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"])


def test_install_creates_tagged_queues_rule_and_target(aws: Any) -> None:
    """Install makes both queues, the DLQ redrive, the match-all rule and its queue target."""
    sqs, events = clients(aws, "sqs", "events")
    events.create_event_bus(Name=BUS)
    report = install_tap(sqs, events, BUS, sample_rate=0.5)
    assert sorted(report.created) == sorted([f"queue {n}" for n in queue_names(BUS)]
                                            + ["rule eventscope-tap"])
    rule = events.describe_rule(Name="eventscope-tap", EventBusName=BUS)
    assert json.loads(rule["EventPattern"]) == {"source": [{"prefix": ""}]}
    target = events.list_targets_by_rule(Rule="eventscope-tap", EventBusName=BUS)["Targets"][0]
    attributes = sqs.get_queue_attributes(QueueUrl=report.queue_url,
                                          AttributeNames=["All"])["Attributes"]
    assert target["Arn"] == attributes["QueueArn"]
    assert json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].endswith("-dlq")
    policy = json.loads(attributes["Policy"])["Statement"][0]
    assert policy["Principal"] == {"Service": "events.amazonaws.com"}
    assert sqs.list_queue_tags(QueueUrl=report.queue_url)["Tags"]["eventscope:sample"] == "0.5"


def test_install_twice_creates_nothing_new(aws: Any) -> None:
    """A second install updates the same resources and creates none."""
    sqs, events = clients(aws, "sqs", "events")
    events.create_event_bus(Name=BUS)
    first = install_tap(sqs, events, BUS)
    second = install_tap(sqs, events, BUS)
    assert second.created == [] and second.queue_url == first.queue_url
    assert len(sqs.list_queues(QueueNamePrefix="eventscope-tap")["QueueUrls"]) == 2
    assert len(events.list_targets_by_rule(Rule="eventscope-tap", EventBusName=BUS)["Targets"]) == 1


def test_remove_deletes_only_what_install_made(aws: Any) -> None:
    """Remove deletes the tap's rule and queues; an unrelated rule and queue survive."""
    sqs, events = clients(aws, "sqs", "events")
    other = make_bus_queue(events, sqs, BUS, "orders-consumer", "orders-rule",
                           {"source": ["com.shop.orders"]})
    install_tap(sqs, events, BUS)
    report = remove_tap(sqs, events, BUS)
    assert len(report.removed) == 3
    assert [r["Name"] for r in events.list_rules(EventBusName=BUS)["Rules"]] == ["orders-rule"]
    assert sqs.list_queues()["QueueUrls"] == [other]


def test_remove_twice_reports_absent(aws: Any) -> None:
    """A second remove finds nothing to delete and says so."""
    sqs, events = clients(aws, "sqs", "events")
    events.create_event_bus(Name=BUS)
    install_tap(sqs, events, BUS)
    remove_tap(sqs, events, BUS)
    again = remove_tap(sqs, events, BUS)
    assert again.removed == [] and len(again.absent) == 3


def test_remove_leaves_an_untagged_same_named_queue(aws: Any) -> None:
    """A queue with the tap's name but without the tap tag is not deleted."""
    sqs, events = clients(aws, "sqs", "events")
    events.create_event_bus(Name=BUS)
    url = sqs.create_queue(QueueName=queue_names(BUS)[0])["QueueUrl"]
    report = remove_tap(sqs, events, BUS)
    assert report.not_ours == [f"queue {queue_names(BUS)[0]}"]
    assert sqs.list_queues()["QueueUrls"] == [url]


def test_install_refuses_to_adopt_a_foreign_queue(aws: Any) -> None:
    """Install fails clearly rather than take over a same-named queue it did not create."""
    sqs, events = clients(aws, "sqs", "events")
    events.create_event_bus(Name=BUS)
    sqs.create_queue(QueueName=queue_names(BUS)[1])
    with pytest.raises(TapError, match="not created by eventscope"):
        install_tap(sqs, events, BUS)


def test_install_on_missing_bus_is_a_clear_error(aws: Any) -> None:
    sqs, events = clients(aws, "sqs", "events")
    with pytest.raises(TapError, match="no event bus named 'nope'"):
        install_tap(sqs, events, "nope")


def test_collector_stores_every_event_put_on_the_bus(tapped: Any, store: Store) -> None:
    """Events routed by the tap rule end up in the store and the queue ends empty."""
    sqs, events, url = tapped
    put_events(events, BUS, ENTRIES)
    counters = TapCounters()
    run_tap(sqs, store, settings(url), counters, threading.Event(), until_empty=True)
    assert counters.stored == len(ENTRIES) == len(stored_ids(store))
    assert queue_depth(sqs, url) == 0
    assert store.counts()["detail_types"] == 4


def test_sampling_keeps_the_events_the_hash_selects(tapped: Any, store: Store) -> None:
    """At rate 0.3 exactly the events whose id hashes below 0.3 are stored; all are deleted."""
    sqs, events, url = tapped
    put_events(events, BUS, ENTRIES)
    counters = TapCounters()
    run_tap(sqs, store, settings(url, sample_rate=0.3), counters, threading.Event(),
            until_empty=True)
    ids = stored_ids(store)
    assert all(keep(i, 0.3) for i in ids)
    assert counters.sampled_out == len(ENTRIES) - len(ids) > 0
    assert queue_depth(sqs, url) == 0


def test_malformed_message_is_quarantined_then_deleted(tapped: Any, store: Store) -> None:
    """A body that is not an envelope goes to quarantine with its reason, and off the queue."""
    sqs, events, url = tapped
    sqs.send_message(QueueUrl=url, MessageBody='{"source": "x", "detail": ')
    put_events(events, BUS, ENTRIES[:3])
    counters = TapCounters()
    run_tap(sqs, store, settings(url), counters, threading.Event(), until_empty=True)
    counts = store.counts()
    assert counts["quarantined_by_reason"] == {"invalid_json": 1}
    assert counts["events"] == 3 and queue_depth(sqs, url) == 0


class FlakyStore:
    """A real store whose first `failures` writes raise StoreError, as an unreachable DB does."""

    def __init__(self, store: Store, failures: int) -> None:
        self.store, self.failures, self.calls = store, failures, 0

    def write_batch(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise StoreError("cannot write to store: connection refused")
        return self.store.write_batch(*args, **kwargs)


def test_store_failure_leaves_messages_that_are_stored_after_recovery(
        tapped: Any, store: Store) -> None:
    """While the store fails nothing is deleted; once it recovers every event is stored."""
    sqs, events, url = tapped
    put_events(events, BUS, ENTRIES[:20])
    flaky, counters = FlakyStore(store, failures=3), TapCounters()
    tap_settings = settings(url, batch_size=10)
    for _ in range(3):
        poll_once(sqs, flaky, tap_settings, counters)  # type: ignore[arg-type]
    assert counters.store_failures == 3 and stored_ids(store) == []
    assert queue_depth(sqs, url) == 20
    run_tap(sqs, flaky, tap_settings, counters, threading.Event(),  # type: ignore[arg-type]
            until_empty=True)
    assert len(stored_ids(store)) == 20 and queue_depth(sqs, url) == 0


class OneFailingDelete:
    """The real SQS client, except that the first delete batch fails its first entry."""

    def __init__(self, sqs: Any) -> None:
        self.sqs, self.failed = sqs, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sqs, name)

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> Any:
        if self.failed:
            return self.sqs.delete_message_batch(QueueUrl=QueueUrl, Entries=Entries)
        self.failed = True
        response = self.sqs.delete_message_batch(QueueUrl=QueueUrl, Entries=Entries[1:])
        response.setdefault("Failed", []).append({
            "Id": Entries[0]["Id"], "SenderFault": False, "Code": "InternalError",
            "Message": "injected"})
        return response


def test_partial_delete_failure_is_retried_and_counted(tapped: Any, store: Store) -> None:
    """A failed entry of DeleteMessageBatch is retried, counted, and the queue ends empty."""
    sqs, events, url = tapped
    put_events(events, BUS, ENTRIES[:10])
    counters = TapCounters()
    run_tap(OneFailingDelete(sqs), store, settings(url), counters, threading.Event(),
            until_empty=True)
    assert counters.delete_retries == 1 and counters.delete_failures == 0
    assert queue_depth(sqs, url) == 0 and counters.stored == 10


def test_replay_echo_is_not_stored(tapped: Any, store: Store) -> None:
    """An event carrying eventscope's replay marker is deleted and counted, not stored."""
    sqs, events, url = tapped
    echo = dict(ENTRIES[0], Detail={**ENTRIES[0]["Detail"],
                                    "_eventscopeReplay": {"request": "r1", "originalId": "x"}})
    put_events(events, BUS, [echo, ENTRIES[1]])
    counters = TapCounters()
    run_tap(sqs, store, settings(url), counters, threading.Event(), until_empty=True)
    assert counters.replay_echoes == 1 and counters.stored == 1


def test_same_event_twice_in_a_batch_is_stored_once() -> None:
    """EventBridge's at-least-once delivery can repeat an event within one receive."""
    body = json.dumps({"id": "e1", "source": "s", "detail-type": "T",
                       "time": "2025-01-01T00:00:00Z", "detail": {}})
    messages = [{"MessageId": "a", "Body": body}, {"MessageId": "b", "Body": body}]
    assert len(classify_messages(messages, TapSettings(queue_url="q")).events) == 1


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_kwargs: Any) -> Any:
        yield self.data


def throttle_receives(sqs: Any, times: int) -> list[int]:
    """Make the real client's next `times` ReceiveMessage calls come back as HTTP 400 throttling.

    The answer is injected at botocore's `before-send` hook, so botocore's own standard retry
    mode handles it exactly as it would handle SQS throttling.
    """
    from botocore.awsrequest import AWSResponse

    seen = [0]

    def answer(request: Any, **_kwargs: Any) -> Any:
        if seen[0] >= times:
            return None
        seen[0] += 1
        body = b'{"__type":"com.amazonaws.sqs#ThrottlingException","message":"Rate exceeded"}'
        return AWSResponse(request.url, 400, {"x-amzn-query-error": "ThrottlingException;Sender",
                                              "Content-Type": "application/x-amz-json-1.0"},
                           _Body(body))

    sqs.meta.events.register("before-send.sqs.ReceiveMessage", answer)
    return seen


def quick_retry_client(aws: Any) -> Any:
    """A real SQS client with the factory's config but 3 attempts, to keep backoff short."""
    from eventscope.collectors.clients import client_config, make_client

    return make_client("sqs", aws, client_config(max_attempts=3))


def test_throttling_is_retried_by_botocore_without_an_error(
        aws: Any, tapped: Any, store: Store) -> None:
    """Two throttled receives are backed off and retried inside the client: nothing is lost."""
    _, events, url = tapped
    sqs = quick_retry_client(aws)
    put_events(events, BUS, ENTRIES[:5])
    seen = throttle_receives(sqs, 2)
    counters = TapCounters()
    run_tap(sqs, store, settings(url), counters, threading.Event(), until_empty=True)
    assert seen[0] == 2 and counters.aws_errors == 0 and counters.stored == 5


def test_throttling_past_the_retry_budget_is_counted_and_survived(
        aws: Any, tapped: Any, store: Store) -> None:
    """When every attempt is throttled the loop counts an AWS error, pauses, then carries on."""
    _, events, url = tapped
    sqs = quick_retry_client(aws)
    put_events(events, BUS, ENTRIES[:5])
    throttle_receives(sqs, 3)  # every attempt of one receive call
    counters = TapCounters()
    run_tap(sqs, store, settings(url), counters, threading.Event(), until_empty=True,
            error_pause=0)
    assert counters.aws_errors == 1 and counters.stored == 5


def test_slow_batch_gets_its_visibility_extended_before_the_write(
        tapped: Any, store: Store) -> None:
    """A batch older than half the visibility timeout is extended, so it is not redelivered."""
    import time

    from eventscope.collectors.tap_collector import process_batch, receive_batch

    sqs, events, url = tapped
    put_events(events, BUS, ENTRIES[:3])
    tap_settings = settings(url, visibility_seconds=60)
    messages = receive_batch(sqs, tap_settings)
    counters = TapCounters()
    assert process_batch(sqs, store, messages, tap_settings, counters,
                         received_at=time.monotonic() - 40)
    assert counters.visibility_extensions == 1 and counters.stored == 3
    assert queue_depth(sqs, url) == 0
