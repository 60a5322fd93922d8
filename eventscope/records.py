"""The core records eventscope stores: bus events, consumer invocations, quarantined inputs.

Plain frozen dataclasses with no behaviour beyond conversion to rows and back; parsing lives in
`eventscope.events` (bus envelopes) and `eventscope.lambda_logs` (consumer log records).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Literal

Outcome = Literal["ok", "error", "timeout"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "error", "timeout")
FAILED_OUTCOMES: tuple[Outcome, ...] = ("error", "timeout")


@dataclass(frozen=True, slots=True)
class BusEvent:
    """One EventBridge event as a rule target receives it, plus derived keys."""

    id: str
    source: str
    detail_type: str
    time_ms: int
    detail: str  # the detail object, serialised as compact JSON
    size_bytes: int  # size of the whole envelope as received, in UTF-8 bytes
    account: str | None = None
    region: str | None = None
    resources: str = "[]"  # JSON array
    version: str | None = None  # the event's schema version (detail.version by default)
    correlation_key: str | None = None  # the order id or other entity key


# The `events` table's columns in its order (eventscope.tables; the Store refuses a mismatch).
EVENT_COLUMNS = ("id", "source", "detail_type", "time_ms", "version", "correlation_key",
                 "account", "region", "resources", "detail", "size_bytes")
event_row: Callable[[BusEvent], tuple[Any, ...]] = operator.attrgetter(*EVENT_COLUMNS)
"""An event as its `events` row, a plain tuple in `EVENT_COLUMNS` order (cheap to pickle)."""
_ROW_AS_FIELDS = operator.itemgetter(*(EVENT_COLUMNS.index(f.name) for f in fields(BusEvent)))


def event_of_row(row: tuple[Any, ...]) -> BusEvent:
    """The `BusEvent` of an `events` row: the inverse of `event_row`."""
    return BusEvent(*_ROW_AS_FIELDS(row))


@dataclass(frozen=True, slots=True)
class Invocation:
    """One Lambda invocation of a consumer, reconstructed from its CloudWatch Logs records.

    `start_ms` is the timestamp of the invocation's first record (its START line when present);
    together with `request_id` it is the natural key, because Lambda's asynchronous retries
    can reuse a request id.
    """

    request_id: str
    consumer: str  # the function name (log group /aws/lambda/<name>)
    log_group: str
    log_stream: str
    start_ms: int
    outcome: Outcome
    event_id: str | None = None  # the EventBridge event id it handled (Powertools correlation_id)
    end_ms: int | None = None
    duration_ms: float | None = None
    error_type: str | None = None
    error_message: str | None = None
    max_memory_mb: int | None = None
    complete: bool = False  # True once the REPORT (platform.report) record was seen
    log_format: Literal["text", "json"] = "text"


@dataclass(frozen=True, slots=True)
class Quarantined:
    """An input that could not be understood, kept with the reason it was refused."""

    origin: str  # file path, "-" for stdin, or a collector source such as "sqs:<queue>"
    position: str  # where in the origin: "line 12", a message id, a log record id
    reason: str  # a short machine-friendly reason, e.g. "invalid_json", "missing_fields"
    detail: str  # a one-line human explanation
    raw: bytes  # the input as received, capped (see eventscope.limits.QUARANTINE_RAW_CAP)
