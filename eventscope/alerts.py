"""Alerts: sending new findings to an SNS topic and/or a Slack-compatible webhook.

Owns routing a finding to its owning team (from the catalog), the message shapes, the two
channels, and de-duplication: a finding is sent once and not again while it persists (the
store's `notifications` table remembers it; once it disappears it is forgotten, so a return
alerts again). Channels take the boto3 client or the URL as parameters.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from eventscope.catalog.model import Catalog
from eventscope.errors import EventscopeError
from eventscope.findings.check import Finding, at_or_above

Channel = Callable[[Finding, "str | None"], None]


class AlertError(EventscopeError):
    """A notification could not be delivered (the channel refused it or is unreachable)."""


def owner_team(finding: Finding, catalog: Catalog | None) -> str | None:
    """The team a finding is addressed to: the consumer's team, else the type's owner."""
    return team_of(finding.subject, catalog)


def team_of(subject: Mapping[str, Any], catalog: Catalog | None) -> str | None:
    """The team owning a finding's subject (consumer, detail_type, source): the consumer's
    team, else the type's owner, else the owner of another type of the same source."""
    if catalog is None:
        return None
    consumer = next((c for c in catalog.consumers if c.name == subject.get("consumer")), None) \
        or catalog.consumer_for_function(str(subject.get("consumer")))
    if consumer is not None:
        return consumer.team
    declared = catalog.event_type(str(subject.get("detail_type")), subject.get("source"))
    if declared is not None:
        return declared.owner
    same_source = next((t for t in catalog.event_types if t.source == subject.get("source")), None)
    return same_source.owner if same_source else None


def message(finding: Finding, team: str | None) -> dict[str, Any]:
    """The JSON document sent to SNS: the finding plus the team it is addressed to."""
    return {**finding.as_dict(), "team": team, "fingerprint": finding.fingerprint}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(finding: Finding, team: str | None) -> dict[str, Any]:
    """A Slack-compatible webhook body; untrusted names are escaped, never links or mentions."""
    header = f"[{finding.severity}] {finding.kind}" + (f" for {team}" if team else "")
    return {"text": _slack_escape(f"{header}: {finding.summary}"),
            "eventscope": message(finding, team)}


def sns_channel(client: Any, topic_arn: str) -> Channel:
    """A channel publishing each finding to an SNS topic with kind/severity attributes."""
    def send(finding: Finding, team: str | None) -> None:
        attributes = {"kind": finding.kind, "severity": finding.severity, "team": team or "-"}
        try:
            client.publish(
                TopicArn=topic_arn, Subject=f"eventscope {finding.severity}: {finding.kind}",
                Message=orjson.dumps(message(finding, team)).decode(),
                MessageAttributes={k: {"DataType": "String", "StringValue": v}
                                   for k, v in attributes.items()})
        except Exception as exc:  # botocore errors have no common base we can import cheaply
            raise AlertError(f"SNS publish to {topic_arn} failed: {exc}") from None
    return send


def webhook_channel(url: str, timeout_s: float = 10.0) -> Channel:
    """A channel POSTing a Slack-compatible JSON body to a webhook URL."""
    if not url.startswith(("http://", "https://")):
        raise AlertError(f"webhook URL must be http(s): {url!r}")

    def send(finding: Finding, team: str | None) -> None:
        request = urllib.request.Request(
            url, data=orjson.dumps(slack_payload(finding, team)), method="POST",
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            raise AlertError(f"webhook {url} failed: {exc}") from None
    return send


@dataclass
class NotifyResult:
    sent: list[Finding] = field(default_factory=list)
    already_sent: int = 0
    below_threshold: int = 0
    failed: list[str] = field(default_factory=list)  # one line per channel error


def notify(findings: Sequence[Finding], already: set[str], channels: Sequence[Channel],
           catalog: Catalog | None, min_severity: str = "warning") -> NotifyResult:
    """Send findings not sent before (and at or above `min_severity`) on every channel.

    A finding counts as sent only when every channel accepted it; otherwise it is retried
    on the next run.
    """
    result = NotifyResult()
    for finding in findings:
        if not at_or_above(finding.severity, min_severity):
            result.below_threshold += 1
            continue
        if finding.fingerprint in already:
            result.already_sent += 1
            continue
        team = owner_team(finding, catalog)
        errors = []
        for channel in channels:
            try:
                channel(finding, team)
            except AlertError as exc:
                errors.append(str(exc))
        if errors:
            result.failed += errors
        else:
            result.sent.append(finding)
    return result


def notification_rows(sent: Sequence[Finding]) -> list[dict[str, Any]]:
    """Rows for `Store.record_notifications`."""
    return [{"fingerprint": f.fingerprint, "kind": f.kind, "severity": f.severity,
             "subject": orjson.dumps(f.subject, option=orjson.OPT_SORT_KEYS).decode()}
            for f in sent]
