"""Bus events: turning an EventBridge envelope, as a rule target receives it, into a `BusEvent`
(or straight into its `events` row, `bus_event_row`, as ingest writes it).

Owns the envelope's required fields, the derived keys (version, correlation key, size), how an
event's version is read (`VersionRule`: the catalog's `version-from` and default version), how
its time is read (`parse_time_ms`) and the reasons an envelope is refused. Pure: no I/O.
"""

from __future__ import annotations

import re
import time as _time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import orjson

from eventscope.records import BusEvent, event_of_row

DEFAULT_CORRELATION_PATHS: tuple[str, ...] = ("detail.orderId",)
REQUIRED_FIELDS = ("id", "source", "detail-type", "time", "detail")
DEFAULT_VERSION_FROM = "detail.version"
VERSION_FROM_SUFFIX = "detail-type-suffix"  # OrderPaid.v2 is version 2
VERSION_FROM_NONE = "none"  # the event carries no version (e.g. ECS's detail.version is a revision)


@dataclass(frozen=True, slots=True)
class VersionRule:
    """How an event type's version is read: `version-from`, and the version of an event
    that carries none (the type's declared default or only version)."""

    version_from: str = DEFAULT_VERSION_FROM
    default: str | None = None

    def version(self, detail: Any, detail_type: str = "") -> str | None:
        """The version of an event with this `detail` and `detail_type`, or None when unknown."""
        found: Any = None
        if self.version_from == VERSION_FROM_SUFFIX:
            base, dot_v, suffix = detail_type.rpartition(".v")
            found = suffix if dot_v and base and suffix else None
        elif self.version_from != VERSION_FROM_NONE:
            found = lookup({"detail": detail}, self.version_from)
            if isinstance(found, (dict, list)):
                found = None
        if found is None or found == "":
            return self.default
        return str(found).lower() if isinstance(found, bool) else str(found)


DEFAULT_RULE = VersionRule()


class RejectedRecord(ValueError):
    """A record that cannot be stored; `reason` is a short code, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def is_bus_event(record: Mapping[str, Any]) -> bool:
    """Whether a decoded JSON object looks like an EventBridge envelope."""
    return "detail-type" in record or ("source" in record and "detail" in record)


def parse_bus_event(
    envelope: Mapping[str, Any],
    size_bytes: int,
    correlation_paths: Sequence[str] = DEFAULT_CORRELATION_PATHS,
    version_rules: Mapping[tuple[str, str], VersionRule] | None = None,
) -> BusEvent:
    """Build a `BusEvent` from a decoded envelope, or raise `RejectedRecord` saying why not.

    `version_rules` (the catalog's, `Catalog.version_rules`) say how the version of each
    (source, detail-type) is read; other types keep `detail.version`.
    """
    return event_of_row(bus_event_row(envelope, size_bytes, correlation_paths, version_rules))


def bus_event_row(
    envelope: Mapping[str, Any],
    size_bytes: int,
    correlation_paths: Sequence[str] = DEFAULT_CORRELATION_PATHS,
    version_rules: Mapping[tuple[str, str], VersionRule] | None = None,
) -> tuple[Any, ...]:
    """`parse_bus_event` as the event's `events` row (`records.event_row` of it, in
    `EVENT_COLUMNS` order) without building the `BusEvent`: what ingest writes."""
    event_id, source, detail_type = (envelope.get("id"), envelope.get("source"),
                                     envelope.get("detail-type"))
    detail, time = envelope.get("detail"), envelope.get("time")
    if not (event_id and source and detail_type and time and detail is not None):
        missing = [name for name in REQUIRED_FIELDS if envelope.get(name) in (None, "")]
        raise RejectedRecord("missing_fields", f"envelope lacks {', '.join(missing)}")
    if type(detail) is not dict:
        raise RejectedRecord("invalid_detail", "envelope detail is not a JSON object")
    if not (type(event_id) is str and type(source) is str and type(detail_type) is str):
        wrong = [n for n in ("id", "source", "detail-type") if not isinstance(envelope[n], str)]
        raise RejectedRecord("invalid_field", f"envelope field {wrong[0]} is not a string")
    resources = envelope.get("resources")
    if version_rules:
        version: Any = rule_for(version_rules, source, detail_type).version(detail, detail_type)
    else:
        version = detail.get("version")
    account, region = envelope.get("account"), envelope.get("region")
    # A tuple in `EVENT_COLUMNS` order (the store's `events` columns), built once per event on
    # the ingest hot path.
    return (
        event_id, source, detail_type, parse_time_ms(time),
        None if version is None else str(version), first_value(envelope, correlation_paths),
        None if account is None else str(account), None if region is None else str(region),
        orjson.dumps(resources).decode() if resources else "[]", orjson.dumps(detail).decode(),
        size_bytes,
    )


def rule_for(rules: Mapping[tuple[str, str], VersionRule], source: str,
             detail_type: str) -> VersionRule:
    """The rule of one (source, detail-type); `OrderPaid.v2` finds a suffix rule of OrderPaid."""
    rule = rules.get((source, detail_type))
    if rule is None and ".v" in detail_type:
        rule = rules.get((source, detail_type.rpartition(".v")[0]))
        if rule is not None and rule.version_from != VERSION_FROM_SUFFIX:
            rule = None
    return DEFAULT_RULE if rule is None else rule


# Times an event may carry: from 2000-01-01 to a day ahead of this machine's clock. Outside,
# the time is a producer's bug (year 0001, 2099) and would wreck every time window.
EARLIEST_TIME_MS = 946_684_800_000
FUTURE_LEEWAY_MS = 86_400_000


def parse_time_ms(value: Any, now_ms: int | None = None) -> int:
    """Milliseconds since the epoch of an EventBridge `time` (ISO 8601, UTC when unzoned),
    refused (`invalid_time`) outside [2000-01-01, `now_ms` (the clock) + one day]."""
    time_ms = None
    if type(value) is str and len(value) == 20:
        # EventBridge's own shape, `2024-05-01T10:00:12Z`: its minute's (read once) plus its
        # seconds; any other shape, or an invalid minute or second, is left to `_iso_ms`.
        minute, second = _minute_ms(value[:17]), _SECOND_MS.get(value[17:])
        if minute is not None and second is not None:
            time_ms = minute + second
    if time_ms is None:
        time_ms = _iso_ms(value)
    latest = (int(_time.time() * 1000) if now_ms is None else now_ms) + FUTURE_LEEWAY_MS
    if not EARLIEST_TIME_MS <= time_ms <= latest:
        raise RejectedRecord("invalid_time", f"time {value[:40]!r} is outside 2000-01-01 .. "
                                             "a day from now")
    return time_ms


def _iso_ms(value: Any) -> int:
    """Milliseconds since the epoch of an ISO 8601 string (UTC when unzoned), unchecked."""
    if not isinstance(value, str):
        raise RejectedRecord("invalid_time", f"time {value!r} is not an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise RejectedRecord("invalid_time", f"time {value[:40]!r} is not ISO 8601") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return int(parsed.timestamp() * 1000)
    except (OverflowError, ValueError):  # 0001-01-01 with a positive offset
        return EARLIEST_TIME_MS - 1


_SECOND_MS = {f"{second:02d}Z": second * 1000 for second in range(60)}
_MINUTE_MS = {f"{minute:02d}": minute * 60_000 for minute in range(60)}


@lru_cache(maxsize=4096)
def _minute_ms(prefix: str) -> int | None:
    """`_iso_ms` of `YYYY-MM-DDTHH:MM:00Z` for a prefix `YYYY-MM-DDTHH:MM:`, or None (another
    shape, or no such minute)."""
    minute = _MINUTE_MS.get(prefix[14:16])
    if minute is None or prefix[13:14] != ":" or prefix[16:] != ":":
        return None
    hour = _hour_ms(prefix[:13])
    return None if hour is None else hour + minute


_HOUR = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}", re.ASCII)


@lru_cache(maxsize=4096)
def _hour_ms(prefix: str) -> int | None:
    """`_iso_ms` of `YYYY-MM-DDTHH:00:00Z` for such a prefix, or None (another shape, or no
    such hour)."""
    if _HOUR.fullmatch(prefix) is None or prefix[11:] > "23":
        return None
    try:
        return _iso_ms(prefix + ":00:00Z")
    except RejectedRecord:
        return None


def format_time(time_ms: int) -> str:
    """The EventBridge `time` string for milliseconds since the epoch (second precision)."""
    return datetime.fromtimestamp(time_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def lookup(document: Mapping[str, Any], dotted_path: str) -> Any:
    """The value at a dotted path such as `detail.order.id`, or None when absent."""
    current: Any = document
    for part in _split_path(dotted_path):
        if not isinstance(current, dict):  # decoded JSON: dict is the only mapping
            return None
        current = current.get(part)
    return current


@lru_cache(maxsize=1024)
def _split_path(dotted_path: str) -> tuple[str, ...]:
    return tuple(dotted_path.split("."))


@lru_cache(maxsize=64)
def _split_paths(dotted_paths: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(_split_path(path) for path in dotted_paths)


def first_value(document: Mapping[str, Any], dotted_paths: Sequence[str]) -> str | None:
    """The first scalar found at one of the paths, as a string (`lookup` of each, inline)."""
    for parts in _split_paths(tuple(dotted_paths)):
        value: Any = document
        for part in parts:
            if not isinstance(value, dict):
                value = None
                break
            value = value.get(part)
        if value is not None and not isinstance(value, (dict, list)):
            return str(value)
    return None


def envelope_of(event: BusEvent) -> dict[str, Any]:
    """The EventBridge envelope a stored event came from (for replay and display)."""
    envelope: dict[str, Any] = {
        "version": "0", "id": event.id, "detail-type": event.detail_type,
        "source": event.source, "account": event.account, "time": format_time(event.time_ms),
        "region": event.region, "resources": orjson.loads(event.resources),
        "detail": orjson.loads(event.detail),
    }
    return {key: value for key, value in envelope.items() if value is not None}
