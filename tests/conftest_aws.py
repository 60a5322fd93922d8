"""AWS fixtures for the collector tests: one moto server over HTTP, reset before each test.

Import the fixtures into a test module (`from tests.conftest_aws import aws, moto_endpoint`).
Clients are real boto3 clients built by `eventscope.collectors.clients.make_client`, talking HTTP
to a `moto.server.ThreadedMotoServer` on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from eventscope.collectors.clients import AwsSettings, make_client

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of a moto server running for the whole test session."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> AwsSettings:
    """Settings for clients of a freshly reset moto server, with dummy credentials."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request).close()
    return AwsSettings(region=REGION, endpoint_url=moto_endpoint)


def clients(settings: AwsSettings, *services: str) -> list[Any]:
    """Clients for the named services."""
    return [make_client(service, settings) for service in services]


def make_bus_queue(events: Any, sqs: Any, bus: str, queue: str, rule: str,
                   pattern: dict[str, Any]) -> str:
    """A bus (created if missing), a queue, and a rule routing `pattern` to the queue."""
    if bus != "default" and not events.list_event_buses(NamePrefix=bus)["EventBuses"]:
        events.create_event_bus(Name=bus)
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return url


def put_events(events: Any, bus: str, entries: list[dict[str, Any]]) -> None:
    """Put entries (Source, DetailType, Detail as an object) on the bus, 10 per call."""
    for start in range(0, len(entries), 10):
        chunk = [{"EventBusName": bus, "Source": e["Source"], "DetailType": e["DetailType"],
                  "Detail": json.dumps(e["Detail"])} for e in entries[start:start + 10]]
        response = events.put_events(Entries=chunk)
        assert response["FailedEntryCount"] == 0, response


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message waiting on a queue, received and deleted."""
    found: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                  WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return found
        found.extend(got)
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
