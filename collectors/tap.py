"""The bus tap: an SQS queue (with a dead-letter queue) fed by a match-everything rule.

Owns creating the tap idempotently and removing exactly what it created. Every resource is
tagged `eventscope:tap=<bus>`; `remove_tap` deletes only resources carrying that tag, so a
same-named resource someone else made is left alone and reported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from eventscope.errors import EventscopeError
from eventscope.tables import TAP_RULE_NAME

TAG_KEY = "eventscope:tap"
SAMPLE_TAG_KEY = "eventscope:sample"
RULE_NAME = TAP_RULE_NAME  # the findings leave it out of the bus's consumers
TARGET_ID = "eventscope-tap-queue"
MATCH_ALL_PATTERN = {"source": [{"prefix": ""}]}
# Receives before SQS moves a message to the tap's DLQ: SQS's maximum. A collector backing
# off from a failing store receives a batch at most once per `backoff.MAX_PAUSE_SECONDS`
# (120 s: 720 a day), and a crash loop once per visibility timeout, so a day's outage cannot
# exhaust it; only a message no collector can ever store ends there (`eventscope tap redrive`).
MAX_RECEIVE_COUNT = 1000
VISIBILITY_TIMEOUT_SECONDS = 120
RETENTION_SECONDS = 4 * 24 * 3600
MAX_MESSAGE_BYTES = 262_144  # EventBridge's event limit; SQS accepts up to 1 MiB
# EventBridge's own retries towards the queue (its maximum: 185 attempts over 24 h), then the DLQ.
TARGET_RETRY_POLICY = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
RULE_DESCRIPTION = "eventscope tap: every event on the bus to an SQS queue"


class TapError(EventscopeError):
    """The tap cannot be installed, found or removed."""


@dataclass
class TapReport:
    """What an install or remove did, resource by resource."""

    bus: str
    queue_url: str | None = None
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    not_ours: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"bus": self.bus, "queue_url": self.queue_url, "created": self.created,
                "updated": self.updated, "removed": self.removed, "absent": self.absent,
                "not_ours": self.not_ours}


def queue_names(bus: str) -> tuple[str, str]:
    """The tap queue's and its dead-letter queue's names for a bus."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", bus)[:60]
    return f"eventscope-tap-{safe}", f"eventscope-tap-{safe}-dlq"


def install_tap(sqs: Any, events: Any, bus: str, sample_rate: float = 1.0) -> TapReport:
    """Create or update the tap for `bus`: queues, queue policies, rule, target."""
    report = TapReport(bus)
    rule_arn = _bus_rule_arn(events, bus)
    tags = {TAG_KEY: bus, SAMPLE_TAG_KEY: str(sample_rate)}
    main_name, dlq_name = queue_names(bus)
    dlq_url, dlq_arn = _ensure_queue(sqs, dlq_name, tags, rule_arn, {}, report)
    redrive = {"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                            "maxReceiveCount": str(MAX_RECEIVE_COUNT)}),
               "VisibilityTimeout": str(VISIBILITY_TIMEOUT_SECONDS)}
    queue_url, queue_arn = _ensure_queue(sqs, main_name, tags, rule_arn, redrive, report)
    report.queue_url = queue_url
    _ensure_rule(events, bus, tags, report)
    events.put_targets(Rule=RULE_NAME, EventBusName=bus, Targets=[{
        "Id": TARGET_ID, "Arn": queue_arn,
        "DeadLetterConfig": {"Arn": dlq_arn},
        "RetryPolicy": dict(TARGET_RETRY_POLICY),
    }])
    return report


def remove_tap(sqs: Any, events: Any, bus: str) -> TapReport:
    """Delete the tap's rule and queues for `bus`, only where they carry the tap tag."""
    report = TapReport(bus)
    _remove_rule(events, bus, report)
    for name in queue_names(bus):
        _remove_queue(sqs, name, bus, report)
    return report


def find_tap_queue(sqs: Any, bus: str) -> tuple[str, float]:
    """The tap queue URL for a bus and the sample rate recorded at install."""
    name = queue_names(bus)[0]
    url = _queue_url(sqs, name)
    if url is None:
        raise TapError(f"no tap queue {name} for bus {bus}: run `eventscope tap install "
                       f"--bus {bus}` first")
    tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
    try:
        rate = float(tags.get(SAMPLE_TAG_KEY, "1"))
    except ValueError:
        rate = 1.0
    return url, rate


def _bus_rule_arn(events: Any, bus: str) -> str:
    try:
        bus_arn = events.describe_event_bus(Name=bus)["Arn"]
    except botocore.exceptions.ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            raise TapError(f"no event bus named {bus!r}") from None
        raise
    # arn:aws:events:region:account:event-bus/NAME -> .../rule/NAME/RULE (default bus: rule/RULE)
    prefix = bus_arn.split(":event-bus/")[0]
    return f"{prefix}:rule/{RULE_NAME}" if bus == "default" else f"{prefix}:rule/{bus}/{RULE_NAME}"


def queue_policy(queue_arn: Any, rule_arn: Any) -> dict[str, Any]:
    """The tap queues' policy: only EventBridge, and only from the tap rule, may send.

    The ARNs are strings here, CloudFormation expressions in `eventscope.deploy`."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "eventscope-tap", "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
    }]}


def _queue_policy(queue_arn: str, rule_arn: str) -> str:
    return json.dumps(queue_policy(queue_arn, rule_arn))


def _ensure_queue(sqs: Any, name: str, tags: dict[str, str], rule_arn: str,
                  extra: dict[str, str], report: TapReport) -> tuple[str, str]:
    url = _queue_url(sqs, name)
    if url is None:
        url = sqs.create_queue(QueueName=name, tags=tags)["QueueUrl"]
        report.created.append(f"queue {name}")
    else:
        _check_ours(sqs.list_queue_tags(QueueUrl=url).get("Tags", {}), tags[TAG_KEY],
                    f"queue {name}")
        sqs.tag_queue(QueueUrl=url, Tags=tags)
        report.updated.append(f"queue {name}")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    attributes = {"Policy": _queue_policy(arn, rule_arn),
                  "MessageRetentionPeriod": str(RETENTION_SECONDS),
                  "MaximumMessageSize": str(MAX_MESSAGE_BYTES), **extra}
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url, arn


def _ensure_rule(events: Any, bus: str, tags: dict[str, str], report: TapReport) -> None:
    existing = _describe_rule(events, bus)
    if existing is not None:
        _check_ours(_rule_tags(events, existing["Arn"]), bus, f"rule {RULE_NAME}")
    arn = events.put_rule(
        Name=RULE_NAME, EventBusName=bus, EventPattern=json.dumps(MATCH_ALL_PATTERN),
        State="ENABLED", Description=RULE_DESCRIPTION,
        Tags=[{"Key": k, "Value": v} for k, v in tags.items()])["RuleArn"]
    events.tag_resource(ResourceARN=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    (report.updated if existing else report.created).append(f"rule {RULE_NAME}")


def _remove_rule(events: Any, bus: str, report: TapReport) -> None:
    rule = _describe_rule(events, bus)
    label = f"rule {RULE_NAME}"
    if rule is None:
        report.absent.append(label)
        return
    if _rule_tags(events, rule["Arn"]).get(TAG_KEY) != bus:
        report.not_ours.append(label)
        return
    events.remove_targets(Rule=RULE_NAME, EventBusName=bus, Ids=[TARGET_ID])
    others = events.list_targets_by_rule(Rule=RULE_NAME, EventBusName=bus).get("Targets", [])
    if others:
        report.not_ours.append(f"{label} (kept: {len(others)} target(s) not added by eventscope)")
        return
    events.delete_rule(Name=RULE_NAME, EventBusName=bus)
    report.removed.append(label)


def _remove_queue(sqs: Any, name: str, bus: str, report: TapReport) -> None:
    url = _queue_url(sqs, name)
    label = f"queue {name}"
    if url is None:
        report.absent.append(label)
    elif sqs.list_queue_tags(QueueUrl=url).get("Tags", {}).get(TAG_KEY) != bus:
        report.not_ours.append(label)
    else:
        sqs.delete_queue(QueueUrl=url)
        report.removed.append(label)


def _check_ours(tags: dict[str, str], bus: str, label: str) -> None:
    if tags.get(TAG_KEY) != bus:
        raise TapError(f"{label} exists but was not created by eventscope for bus {bus} "
                       f"(no tag {TAG_KEY}={bus}): rename or remove it first")


def _describe_rule(events: Any, bus: str) -> dict[str, Any] | None:
    try:
        rule: dict[str, Any] = events.describe_rule(Name=RULE_NAME, EventBusName=bus)
        return rule
    except botocore.exceptions.ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return None
        raise


def _rule_tags(events: Any, arn: str) -> dict[str, str]:
    tags = events.list_tags_for_resource(ResourceARN=arn).get("Tags", [])
    return {tag["Key"]: tag["Value"] for tag in tags}


def _queue_url(sqs: Any, name: str) -> str | None:
    try:
        url: str = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        return url
    except botocore.exceptions.ClientError as exc:
        if _code(exc) in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            return None
        raise


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
