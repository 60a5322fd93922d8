"""The tap's dead-letter queue: watched (depth and age into the store) and redriven.

Owns finding a queue's dead-letter queue from its `RedrivePolicy`, sampling it
(`sample_dlq`: how many messages, the oldest `SentTimestamp` among up to 10 peeked, stored in
`queue_depths` so `check` and the dashboard read it through the findings layer), and
`redrive`: moving its messages back to the source queue, each deleted from the DLQ only after
SQS accepted its copy (a crash in between duplicates a message, which the store's
insert-or-ignore absorbs; nothing is lost).

SQS keeps a message's original `SentTimestamp` when it moves it to a DLQ, so the age is the
age of the event's first delivery. A peek is a receive with a zero visibility timeout: it
leaves the messages visible, and a DLQ has no redrive limit of its own to count it against.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import botocore.exceptions

from eventscope.store import Store

SQS_BATCH = 10
PEEK_ATTRIBUTES = ["SentTimestamp"]


@dataclass
class RedriveReport:
    """What one redrive moved."""

    dlq_url: str
    queue_url: str
    moved: int = 0
    failed: int = 0  # SQS refused the copy: left in the DLQ

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def dead_letter_queue(sqs: Any, queue_url: str) -> str | None:
    """The URL of the queue's dead-letter queue (from its RedrivePolicy), if it has one."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url,
                                          AttributeNames=["RedrivePolicy"])["Attributes"]
    policy = attributes.get("RedrivePolicy")
    if not policy:
        return None
    arn = json.loads(policy)["deadLetterTargetArn"]  # arn:aws:sqs:region:account:name
    _, _, _, _, account, name = arn.split(":", 5)
    try:
        url: str = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return url
    except botocore.exceptions.ClientError:
        return None


def sample_dlq(sqs: Any, dlq_url: str, source_url: str | None,
               now_ms: int | None = None) -> dict[str, Any]:
    """A `queue_depths` row for the DLQ: its message count and the oldest message peeked."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    attributes = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    messages = (int(attributes.get("ApproximateNumberOfMessages", 0))
                + int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)))
    oldest = None
    if messages:
        peeked = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=SQS_BATCH,
                                     VisibilityTimeout=0, WaitTimeSeconds=0,
                                     AttributeNames=PEEK_ATTRIBUTES).get("Messages", [])
        sent = [int(m["Attributes"]["SentTimestamp"]) for m in peeked
                if "SentTimestamp" in m.get("Attributes", {})]
        oldest = min(sent) if sent else None
    return {"queue": dlq_url, "source_queue": source_url, "observed_ms": now,
            "messages": messages, "oldest_sent_ms": oldest,
            "nonempty_since_ms": now if messages else None}


def record_dlq(sqs: Any, store: Store, dlq_url: str, source_url: str | None) -> dict[str, Any]:
    """Sample the DLQ and store the sample; the row stored."""
    row = sample_dlq(sqs, dlq_url, source_url)
    store.put_queue_depth(row)
    return row


def redrive(sqs: Any, dlq_url: str, queue_url: str, limit: int | None = None,
            visibility_seconds: int = 60) -> RedriveReport:
    """Move up to `limit` messages (all, by default) from the DLQ back to `queue_url`."""
    report = RedriveReport(dlq_url, queue_url)
    while limit is None or report.moved + report.failed < limit:
        want = SQS_BATCH if limit is None else min(SQS_BATCH,
                                                   limit - report.moved - report.failed)
        got = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=want,
                                  VisibilityTimeout=visibility_seconds,
                                  WaitTimeSeconds=0).get("Messages", [])
        if not got:
            break
        sent = sqs.send_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(i), "MessageBody": m["Body"]} for i, m in enumerate(got)])
        ok = {entry["Id"] for entry in sent.get("Successful", [])}
        report.failed += len(got) - len(ok)
        done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(got) if str(i) in ok]
        if done:
            sqs.delete_message_batch(QueueUrl=dlq_url, Entries=done)
        report.moved += len(done)
        if len(ok) < len(got):  # SQS refuses some: stop rather than loop over them
            break
    return report
