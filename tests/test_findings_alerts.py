"""Alerts over real HTTP: SNS on moto's server, a webhook on a local http.server, de-duplication."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from eventscope.alerts import (AlertError, notification_rows, notify, owner_team, sns_channel,
                               webhook_channel)
from eventscope.findings.check import Finding
from eventscope.store import Store
from tests.findings_scenario import catalog

UNDOCUMENTED = Finding("undocumented_event", "error",
                       {"source": "shop", "detail_type": "OrderRefunded", "version": "1"},
                       "OrderRefunded <!channel> from shop is not in the catalog", {"count": 3})
MISSING = Finding("missing_subscription", "warning",
                  {"consumer": "Warranty", "detail_type": "OrderCancelled"}, "Warranty misses it")


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _client(service: str, endpoint: str):
    return boto3.client(service, endpoint_url=endpoint, region_name="eu-west-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    received: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"content_type": self.headers["Content-Type"],
                             "body": json.loads(body)})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def test_sns_publishes_the_finding_with_its_team_to_a_subscribed_queue(moto_endpoint: str) -> None:
    """The message reaches an SQS queue subscribed to the topic, with kind, severity and team."""
    sns, sqs = _client("sns", moto_endpoint), _client("sqs", moto_endpoint)
    topic = sns.create_topic(Name="eventscope-alerts")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn,
                  Attributes={"RawMessageDelivery": "true"})
    result = notify([UNDOCUMENTED], set(), [sns_channel(sns, topic)], catalog())
    assert [f.kind for f in result.sent] == ["undocumented_event"]
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                   MessageAttributeNames=["All"])["Messages"]
    body = json.loads(messages[0]["Body"])
    assert (body["kind"], body["team"], body["subject"]["detail_type"]) == (
        "undocumented_event", "team-shop", "OrderRefunded")
    assert messages[0]["MessageAttributes"]["severity"]["StringValue"] == "error"


def test_sns_failure_is_reported_and_not_counted_as_sent(moto_endpoint: str) -> None:
    """Publishing to a topic that does not exist leaves the finding unsent for the next run."""
    sns = _client("sns", moto_endpoint)
    result = notify([MISSING], set(), [sns_channel(
        sns, "arn:aws:sns:eu-west-1:123456789012:no-such-topic")], catalog())
    assert result.sent == [] and "SNS publish" in result.failed[0]


def test_webhook_receives_slack_compatible_json_with_escaped_text(webhook) -> None:
    """The POST body has Slack's `text`, with <, > and & escaped so nothing becomes a mention."""
    url, received = webhook
    notify([UNDOCUMENTED, MISSING], set(), [webhook_channel(url)], catalog())
    assert [r["content_type"] for r in received] == ["application/json"] * 2
    assert received[0]["body"]["text"] == ("[error] undocumented_event for team-shop: "
                                           "OrderRefunded &lt;!channel&gt; from shop is not in "
                                           "the catalog")
    assert received[1]["body"]["eventscope"]["team"] == "team-warranty"


def test_unreachable_webhook_is_an_error_line() -> None:
    result = notify([MISSING], set(), [webhook_channel("http://127.0.0.1:9/hook", 2)], catalog())
    assert result.sent == [] and result.failed[0].startswith("webhook http://127.0.0.1:9/hook")
    with pytest.raises(AlertError, match="must be http"):
        webhook_channel("file:///etc/passwd")


def test_findings_already_sent_are_not_resent_while_they_persist(store: Store, webhook) -> None:
    """Second run sends nothing; once the finding disappears and returns, it is sent again."""
    url, received = webhook
    channels = [webhook_channel(url)]

    def run(found: list[Finding]) -> int:
        result = notify(found, store.notified_fingerprints(), channels, catalog())
        store.record_notifications(notification_rows(result.sent),
                                   [f.fingerprint for f in found])
        return len(result.sent)

    assert run([UNDOCUMENTED, MISSING]) == 2
    assert run([UNDOCUMENTED, MISSING]) == 0
    assert run([MISSING]) == 0  # UNDOCUMENTED resolved: forgotten
    assert run([UNDOCUMENTED, MISSING]) == 1
    assert len(received) == 3


def test_owner_team_from_consumer_type_or_source() -> None:
    """Consumer findings go to the consumer's team; type findings to the owner, else the
    source's."""
    cat = catalog()
    assert owner_team(MISSING, cat) == "team-warranty"
    assert owner_team(Finding("x", "error", {"consumer": "billing-fn"}, ""), cat) == "team-billing"
    assert owner_team(UNDOCUMENTED, cat) == "team-shop"  # unknown type, known source
    assert owner_team(Finding("x", "error", {"source": "nobody"}, ""), cat) is None
    assert owner_team(MISSING, None) is None
