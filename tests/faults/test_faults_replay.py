"""Faults, replay: a replay that could not send every entry is a failure (exit 1, one
`error:` line, audited as partial), and what could be sent was sent once."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner

from eventscope.cli import main
from eventscope.store import Store, replay_audit
from tests.conftest_aws import aws, clients, drain, make_bus_queue, moto_endpoint  # noqa: F401
from tests.test_collectors_replay import BUS, stored_event


def test_a_replay_with_an_unreachable_target_exits_1_and_sends_the_rest_once(
        aws: Any, store: Store, store_url: str) -> None:
    """The consumer's rule has two SQS targets; one queue was deleted. 3 events: 3 sent to the
    live queue, 3 failed, exit 1, audit status partial."""
    events, sqs = clients(aws, "events", "sqs")
    live = make_bus_queue(events, sqs, BUS, "warranty", "warranty-orders",
                          {"detail-type": ["OrderCancelled"]})
    gone = sqs.create_queue(QueueName="warranty-old")["QueueUrl"]
    gone_arn = sqs.get_queue_attributes(QueueUrl=gone, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    events.put_targets(Rule="warranty-orders", EventBusName=BUS,
                       Targets=[{"Id": "old", "Arn": gone_arn}])
    sqs.delete_queue(QueueUrl=gone)
    store.write_batch([stored_event(n) for n in range(3)])
    result = CliRunner().invoke(main, ["replay", "--bus", BUS, "--consumer", "warranty-orders",
                                       "--yes", "--db", store_url, "--endpoint-url",
                                       aws.endpoint_url, "--region", "us-east-1"])
    assert result.exit_code == 1, result.output
    assert "3 event(s) to consumer warranty-orders (target): 3 send(s) done, 3 failed" \
        in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "3 send(s) failed" in errors[0]
    bodies = sorted(json.loads(m["Body"])["id"] for m in drain(sqs, live))
    assert bodies == sorted(stored_event(n).id for n in range(3))  # each once
    audit, = store.select_rows(replay_audit.select())
    assert audit["status"] == "partial"


def test_a_complete_replay_exits_0(aws: Any, store: Store, store_url: str) -> None:
    events, sqs = clients(aws, "events", "sqs")
    live = make_bus_queue(events, sqs, BUS, "warranty", "warranty-orders",
                          {"detail-type": ["OrderCancelled"]})
    store.write_batch([stored_event(1)])
    result = CliRunner().invoke(main, ["replay", "--bus", BUS, "--consumer", "warranty-orders",
                                       "--yes", "--db", store_url, "--endpoint-url",
                                       aws.endpoint_url, "--region", "us-east-1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["result"]["failed"] == 0
    assert len(drain(sqs, live)) == 1
