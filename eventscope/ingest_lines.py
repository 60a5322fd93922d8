"""Parsing one block of NDJSON input lines into what ingest writes: the pure half of ingest.

Owns recognising what each line is (an EventBridge envelope, a CloudWatch Logs record, or
something to quarantine), redacting events' PII, and packing a block's results compactly
(events as their rows, log records as `lambda_logs.parse_checked_record` facts) so they cross a
process boundary cheaply: `eventscope.ingest` runs `parse_block` in worker processes. It
imports neither the store nor SQLAlchemy, so workers start fast. No I/O.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventscope.decoding import checked_depth, checked_kept, decode_unchecked
from eventscope.events import (DEFAULT_CORRELATION_PATHS, RejectedRecord, VersionRule,
                               bus_event_row, is_bus_event)
from eventscope.lambda_logs import ParsedRecord, parse_checked_record
from eventscope.limits import QUARANTINE_READ
from eventscope.records import EVENT_COLUMNS, BusEvent, Quarantined, event_of_row
from eventscope.replay_marker import is_echo
from eventscope.redaction import (RedactionSettings, redact_parts, redaction_rows,
                                  scrub_quarantined)
from eventscope.sampling import keep

LOG_RECORD_FIELDS: Mapping[str, type | tuple[type, ...]] = {
    "logGroupName": str, "logStreamName": str, "timestamp": int, "message": str,
}
LineItem = BusEvent | dict[str, Any] | Quarantined | None  # None: a replay's echo
_Item = tuple[Any, ...] | dict[str, Any] | Quarantined | None  # an event as its row

_BLANK = b" \t"
_COLUMN = {name: index for index, name in enumerate(EVENT_COLUMNS)}
_ID, _DETAIL_TYPE, _DETAIL, _RESOURCES, _CORRELATION_KEY = (
    _COLUMN[name] for name in ("id", "detail_type", "detail", "resources", "correlation_key"))


@dataclass(frozen=True)
class LineOptions:
    """How lines are read: where the correlation key is, how PII is redacted (if at all), and
    the fraction of events kept (by `eventscope.sampling`'s hash of the event id)."""

    correlation_paths: tuple[str, ...] = DEFAULT_CORRELATION_PATHS
    redaction: RedactionSettings | None = None
    sample_rate: float = 1.0
    version_rules: Mapping[tuple[str, str], VersionRule] | None = None  # the catalog's


@dataclass(frozen=True)
class Block:
    """Whole lines of one input, starting at line number `first_line`."""

    origin: str
    first_line: int
    data: bytes


@dataclass
class ParsedBlock:
    """What a block's lines hold, in input order within each kind."""

    origin: str = ""  # the block's input
    lines: int = 0  # non-blank lines
    event_rows: list[tuple[Any, ...]] = field(default_factory=list)  # records.event_row
    events_sampled_out: int = 0
    replay_echoes: int = 0  # events eventscope replay (or an archive replay) re-sent
    redaction_rows: list[dict[str, Any]] = field(default_factory=list)  # `redactions` rows
    log_records: int = 0
    log_facts: list[ParsedRecord] = field(default_factory=list)  # records that say something
    quarantined: list[Quarantined] = field(default_factory=list)


def parse_block(block: Block, options: LineOptions) -> ParsedBlock:
    """Classify, parse and redact every non-blank line of a block."""
    parsed = ParsedBlock(block.origin)
    streams: dict[tuple[str, str], tuple[str, str]] = {}  # one key per stream: smaller pickles
    # Read once, not per line.
    origin, rate, redaction = block.origin, options.sample_rate, options.redaction
    paths, rules = options.correlation_paths, options.version_rules
    # Lines as `data.split(b"\n")` gives them (a last one with no newline too), each found
    # with memchr rather than split's byte-by-byte loop.
    for line_no, raw in enumerate(io.BytesIO(block.data), block.first_line):
        raw = raw.rstrip(b"\r\n")
        if not raw or (raw[0] in _BLANK and not raw.strip()):
            continue
        parsed.lines += 1
        item, detail = _classify(raw, origin, line_no, paths, rules)
        if item is None:
            parsed.replay_echoes += 1
        elif type(item) is tuple:
            if rate < 1 and not keep(item[_ID], rate):
                parsed.events_sampled_out += 1
                continue
            if redaction is None:
                parsed.event_rows.append(item)
            else:
                _add_event(parsed, item, redaction, detail)
        elif type(item) is Quarantined:
            parsed.quarantined.extend(scrub_quarantined([item], redaction)
                                      if redaction is not None else [item])
        else:
            parsed.log_records += 1
            facts = parse_checked_record(item)  # type: ignore[arg-type]
            if facts is not None:
                key = streams.setdefault(facts[0], facts[0])
                parsed.log_facts.append((key, facts[1], facts[2]))
    return parsed


def _add_event(parsed: ParsedBlock, row: tuple[Any, ...], redaction: RedactionSettings | None,
               detail: dict[str, Any] | None = None) -> None:
    """The event's row (redacted, `detail` being its freshly decoded detail: redaction walks
    it in place rather than decoding the row's detail again) and its redaction records."""
    if redaction is not None:
        changes, found = redact_parts(row[_ID], row[_DETAIL_TYPE], row[_DETAIL], row[_RESOURCES],
                                      row[_CORRELATION_KEY], redaction, detail)
        if changes:
            patched = list(row)
            for name, value in changes.items():
                patched[_COLUMN[name]] = value
            row = tuple(patched)
        if found:
            parsed.redaction_rows.extend(redaction_rows(found, int(time.time() * 1000)))
    parsed.event_rows.append(row)


def classify_line(
    raw: bytes, origin: str, line_no: int,
    correlation_paths: Sequence[str] = DEFAULT_CORRELATION_PATHS,
    version_rules: Mapping[tuple[str, str], VersionRule] | None = None,
) -> LineItem:
    """A bus event, a log record (a dict), the line's quarantine record, or None for the echo
    of a replay (stored already as the original: not new traffic)."""
    item = _classify(raw, origin, line_no, correlation_paths, version_rules)[0]
    return event_of_row(item) if type(item) is tuple else item  # type: ignore[return-value]


def _classify(raw: bytes, origin: str, line_no: int, correlation_paths: Sequence[str],
              version_rules: Mapping[tuple[str, str], VersionRule] | None
              ) -> tuple[_Item, dict[str, Any] | None]:
    """`classify_line` with a bus event as its row (`events.bus_event_row`), and a bus
    event's decoded detail (no one else holds it).

    The line is decoded without the look for integers beyond 64 bits, which only a bus event
    keeps (its detail is stored): a log record is read for its four fields alone, and the
    rest is quarantined as raw bytes. A bus event that may hold one is decoded again, the
    full way (`checked_kept`), so it is exactly what `decode_object(raw)` gives."""
    try:
        record = decode_unchecked(raw)
        if is_bus_event(record):
            record = checked_kept(raw, record)
            if is_echo(record):
                return None, None
            detail = record.get("detail")
            return (bus_event_row(record, len(raw), correlation_paths, version_rules),
                    detail if type(detail) is dict else None)
        checked_depth(raw, record)
        if "logGroupName" in record or "message" in record:
            return checked_log_record(record), None
        raise RejectedRecord("unrecognised", "neither an EventBridge envelope nor a log record")
    except RejectedRecord as rejected:
        return quarantine_item(origin, f"line {line_no}", rejected, raw), None


def checked_log_record(record: dict[str, Any]) -> dict[str, Any]:
    """The record itself when it has the CloudWatch Logs fields the parser needs."""
    if (type(record.get("logGroupName")) is str and type(record.get("logStreamName")) is str
            and type(record.get("timestamp")) is int and type(record.get("message")) is str):
        return record
    missing = [name for name, kind in LOG_RECORD_FIELDS.items()
               if not isinstance(record.get(name), kind) or isinstance(record.get(name), bool)]
    raise RejectedRecord("missing_fields", f"log record lacks {', '.join(missing)}")


def quarantine_item(origin: str, position: str, rejected: RejectedRecord,
                    raw: bytes) -> Quarantined:
    """The quarantine record for a refused input, its raw bytes capped."""
    return Quarantined(origin=origin, position=position, reason=rejected.reason,
                       detail=str(rejected), raw=raw[:QUARANTINE_READ])
