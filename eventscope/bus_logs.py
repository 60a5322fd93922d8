"""EventBridge bus logs: the bus's own CloudWatch Logs records turned into delivery outcomes.

Owns reading one log record of an event bus's logging (`message_type` such as
INVOCATION_ATTEMPT_SUCCESS, ..._RETRYABLE_FAILURE, ..._PERMANENT_FAILURE, INVOCATION_DLQ)
into a `deliveries` row: which event, which rule and target, what happened, and the error.
Steps that say nothing about a target (EVENT_RECEIPT, RULE_MATCH, ...) are skipped. Shapes
follow AWS's "EventBridge event bus log schema"; the per-target fields are read from
`details` under the names AWS documents (`rule_arn`, `target_arn`, `attempt_count`) and
tolerated when absent. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from eventscope.decoding import decode_object
from eventscope.events import RejectedRecord

OUTCOMES: Mapping[str, str] = {
    "INVOCATION_ATTEMPT_SUCCESS": "ok",
    "INVOCATION_SUCCESS": "ok",
    "INVOCATION_ATTEMPT_RETRYABLE_FAILURE": "retrying",
    "INVOCATION_ATTEMPT_THROTTLE": "retrying",
    "INVOCATION_ATTEMPT_PERMANENT_FAILURE": "failed",
    "INVOCATION_FAILURE": "failed",
    "INVOCATION_DLQ": "dead_lettered",
}


def parse_delivery(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The `deliveries` row of one CloudWatch Logs record of a bus log, None for other steps.

    Raises `RejectedRecord` when the message is not a bus log record at all.
    """
    raw = str(record.get("message", "")).encode()
    body = decode_object(raw)
    message_type = body.get("message_type")
    if not isinstance(message_type, str):
        raise RejectedRecord("not_a_bus_log", "no message_type: not an EventBridge bus log record")
    outcome = OUTCOMES.get(message_type)
    if outcome is None:
        return None
    details = found if isinstance(found := body.get("details"), Mapping) else {}
    error = found if isinstance(found := body.get("error"), Mapping) else {}
    return {
        "key": hashlib.sha1(raw).hexdigest(),
        "event_id": _text(body.get("event_id")),
        "bus": _bus_name(body.get("resource_arn")),
        "rule_arn": _text(details.get("rule_arn")),
        "target_arn": _text(details.get("target_arn")),
        "message_type": message_type,
        "outcome": outcome,
        "attempt": _int(details.get("attempt_count")),
        "time_ms": _int(body.get("message_timestamp_ms")) or int(record.get("timestamp", 0)),
        "error_code": _text(error.get("http_status_code")),
        "error_message": _text(error.get("error_message")),
    }


def _bus_name(arn: Any) -> str | None:
    return arn.rsplit("event-bus/", 1)[-1] if isinstance(arn, str) and "event-bus/" in arn else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
