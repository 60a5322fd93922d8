"""CloudWatch Logs pushed to eventscope: the `awslogs` payload and the subscription filters.

Owns two things:

* **Reading a push.** A subscription filter delivers a log stream's records to a Lambda
  function as ``{"awslogs": {"data": ...}}``: base64 of gzip of a JSON document with
  ``messageType`` (``DATA_MESSAGE``, or ``CONTROL_MESSAGE`` when CloudWatch Logs checks that the
  destination is reachable), ``owner``, ``logGroup``, ``logStream``, ``subscriptionFilters``
  and ``logEvents`` (``id``, ``timestamp``, ``message``). `decode_awslogs` undoes the
  encoding or says why it cannot (`BadPayload`); `store_push` feeds the records to the same
  `InvocationAssembler` as the polling collector (`collectors.logs_collector.InvocationSink`:
  same parsing, sampling and redaction) and writes the invocations. An invocation's records
  may come in several payloads: one still open at the end of a payload is written as partial
  and its records are kept in the store (table `checkpoints`, collector `logs-push`, one row
  per log stream), then fed again before the stream's next payload, which completes the same
  row. Two runs on one stream at once (Lambda may run them side by side) cannot lose each
  other's state: the state is replaced only if it is still what the run read, in the same
  transaction as the run's invocations; a run that finds it changed writes nothing, reads it
  again and redoes its payload (at most `MAX_CLAIMS` times, then the error is raised and
  the delivery retried). A payload delivered again is stored once: its records are skipped
  by id (the newest `MAX_PENDING_SEEN` per stream), and a fragment of an invocation
  completed lately (its request id known with another start) is not stored as a second row.
  Store errors are raised (the Lambda invocation fails and is retried); a payload that
  cannot be decoded is quarantined with its reason and acknowledged. The states of streams
  idle for a day are deleted by `eventscope prune` (`retention.IDLE_CHECKPOINTS_MS`).
* **Installing the push.** `subscribe` puts a subscription filter named `FILTER_NAME` on
  every log group under a prefix (all pages), never touching a filter it does not own (a
  group already holding two filters is reported full) and, for a Lambda destination, adds one
  resource-policy statement (`statement_id(prefix)`) letting logs.amazonaws.com invoke it.
  Both are idempotent; `unsubscribe` deletes only filters of that name and that statement.
  Subscription filters and permission statements cannot be tagged: they are known by name.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import zlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import botocore.exceptions
import orjson

from eventscope.limits import QUARANTINE_READ
from eventscope.records import Quarantined
from eventscope.redaction import RedactionSettings
from eventscope.store import CheckpointMoved, Store

from eventscope.collectors.logs_collector import DEFAULT_HOLD_MS, InvocationSink, discover_groups

COLLECTOR = "logs-push"
FILTER_NAME = "eventscope-logs"
MAX_FILTERS_PER_GROUP = 2  # CloudWatch Logs' quota
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024  # decompressed; CloudWatch sends at most ~1 MB batches
MAX_PENDING_RECORDS = 5_000  # records of one open invocation kept between payloads
MAX_PENDING_SEEN = 1_000  # newest record ids remembered per stream (a repeat is skipped)
MAX_CLOSED = 1_000  # request ids completed lately remembered per stream, with their start
MAX_CLAIMS = 5  # attempts at a payload while other runs keep changing its stream's state
LOGS_PRINCIPAL = "logs.amazonaws.com"


# --- reading a push -----------------------------------------------------------------------


class BadPayload(Exception):
    """An `awslogs` payload that cannot be decoded: `reason` is a short machine word."""

    def __init__(self, reason: str, detail: str, raw: bytes) -> None:
        super().__init__(detail)
        self.reason, self.detail, self.raw = reason, detail, raw


@dataclass
class PushCounters:
    """What one push (or a series of them) did."""

    payloads: int = 0
    control_messages: int = 0
    records: int = 0
    records_already_seen: int = 0  # delivered again: skipped before parsing
    invocations_built: int = 0
    invocations_stored: int = 0
    invocations_sampled_out: int = 0
    pending_records: int = 0  # kept for the stream's next payload (an open invocation)
    quarantined: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class StreamState:
    """What a log stream's next payload needs: the records of its open invocation, the ids of
    the records processed lately (a repeat is skipped before parsing) and the request ids
    completed lately with their start (a repeated fragment of one is not stored again)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  # record id -> timestamp
    closed: dict[str, int] = field(default_factory=dict)  # request id -> start_ms

    def encode(self) -> str:
        return orjson.dumps({"records": self.records, "seen": self.seen,
                             "closed": self.closed}).decode()

    @staticmethod
    def decode(value: str | None) -> StreamState:
        if not value:
            return StreamState()
        data = orjson.loads(value)
        return StreamState(list(data.get("records", [])), dict(data.get("seen", {})),
                           dict(data.get("closed", {})))


def decode_awslogs(event: Any) -> dict[str, Any]:
    """The JSON document inside a Lambda event from a subscription filter, checked for the
    fields eventscope reads; `BadPayload` with the reason when it is not one."""
    awslogs = event.get("awslogs") if isinstance(event, Mapping) else None
    data = awslogs.get("data") if isinstance(awslogs, Mapping) else None
    if not isinstance(data, str):
        raise BadPayload("not_awslogs", "the event has no awslogs.data text", _raw(event))
    encoded = data.encode("utf-8", "replace")
    try:
        compressed = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadPayload("bad_base64", f"awslogs.data is not base64: {exc}",
                         encoded[:QUARANTINE_READ]) from None
    text = _gunzip(compressed, encoded)
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BadPayload("bad_json", f"the gunzipped payload is not JSON: {exc}",
                         text[:QUARANTINE_READ]) from None
    _check_shape(document, text)
    return dict(document)


def _raw(value: Any) -> bytes:
    """Anything taken from an event, as the bytes quarantine keeps."""
    try:
        return orjson.dumps(value, default=str)[:QUARANTINE_READ]
    except (TypeError, orjson.JSONEncodeError):
        return repr(value).encode("utf-8", "replace")[:QUARANTINE_READ]


def _gunzip(compressed: bytes, encoded: bytes) -> bytes:
    """gzip-decompressed bytes, at most `MAX_PAYLOAD_BYTES` (a bomb is refused, not read)."""
    inflater = zlib.decompressobj(wbits=31)  # gzip framing only
    try:
        text = inflater.decompress(compressed, MAX_PAYLOAD_BYTES)
    except zlib.error as exc:
        raise BadPayload("bad_gzip", f"awslogs.data is not gzip: {exc}",
                         encoded[:QUARANTINE_READ]) from None
    if inflater.unconsumed_tail:
        raise BadPayload("payload_too_large",
                         f"the payload inflates past {MAX_PAYLOAD_BYTES} bytes",
                         encoded[:QUARANTINE_READ])
    if not inflater.eof:
        raise BadPayload("bad_gzip", "awslogs.data is a truncated gzip stream",
                         encoded[:QUARANTINE_READ])
    return text


def _check_shape(document: Any, text: bytes) -> None:
    kind = document.get("messageType") if isinstance(document, dict) else None
    if kind == "CONTROL_MESSAGE":
        return
    if kind != "DATA_MESSAGE":
        raise BadPayload("bad_shape", f"messageType {str(kind)[:80]!r} is neither "
                         "DATA_MESSAGE nor CONTROL_MESSAGE", text[:QUARANTINE_READ])
    for name, kind_ in (("logGroup", str), ("logStream", str), ("logEvents", list)):
        if not isinstance(document.get(name), kind_) or (kind_ is str and not document[name]):
            raise BadPayload("bad_shape", f"DATA_MESSAGE without a valid {name}",
                             text[:QUARANTINE_READ])


def _records(document: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Quarantined]]:
    """The payload's log events as `filter_log_events`-shaped records, and those refused."""
    group, stream = document["logGroup"], document["logStream"]
    records: list[dict[str, Any]] = []
    refused: list[Quarantined] = []
    for n, item in enumerate(document["logEvents"]):
        # AWS documents the id as text (56 digits); moto sends a number: both are taken
        ok = (isinstance(item, dict) and type(item.get("id")) in (str, int)
              and type(item.get("timestamp")) is int and isinstance(item.get("message"), str))
        if not ok:
            refused.append(Quarantined(
                origin=f"awslogs:{group}", position=f"{stream} event {n}", reason="bad_record",
                detail="a log event without an id, an integer timestamp and a text message",
                raw=_raw(item)))
            continue
        records.append({"eventId": str(item["id"]), "timestamp": item["timestamp"],
                        "message": item["message"], "logGroupName": group,
                        "logStreamName": stream})
    return records, refused


def store_push(event: Any, store: Store, redaction: RedactionSettings | None = None,
               counters: PushCounters | None = None,
               hold_ms: int = DEFAULT_HOLD_MS) -> PushCounters:
    """Decode one pushed payload and store its invocations (see the module docstring).

    A payload that cannot be decoded is quarantined and counted; a control message is
    counted; a store error propagates so the delivery is retried."""
    counters = counters if counters is not None else PushCounters()
    counters.payloads += 1
    try:
        document = decode_awslogs(event)
    except BadPayload as bad:
        sink = InvocationSink(redaction, store.sample_rate())
        sink.write(store, {}, counters, [Quarantined(
            origin="awslogs", position="payload", reason=bad.reason, detail=bad.detail[:500],
            raw=bad.raw)])
        counters.quarantined += 1
        return counters
    if document["messageType"] == "CONTROL_MESSAGE":
        counters.control_messages += 1
        return counters
    records, refused = _records(document)
    key = f"{document['logGroup']}:{document['logStream']}"
    for _ in range(MAX_CLAIMS - 1):
        with contextlib.suppress(CheckpointMoved):
            return _added(counters, _store_records(store, key, records, refused, redaction,
                                                   hold_ms))
    # the last attempt: a state moved again raises, the invocation fails and is retried
    return _added(counters, _store_records(store, key, records, refused, redaction, hold_ms))


def _added(counters: PushCounters, attempt: PushCounters) -> PushCounters:
    """`counters` with an attempt's counts added."""
    for name, value in attempt.as_dict().items():
        setattr(counters, name, getattr(counters, name) + value)
    return counters


def _store_records(store: Store, key: str, records: list[dict[str, Any]],
                   refused: list[Quarantined], redaction: RedactionSettings | None,
                   hold_ms: int) -> PushCounters:
    """One attempt at storing a payload's records against the stream's state as read now:
    the new state is written only if no other run changed it meanwhile (`CheckpointMoved`
    otherwise, and nothing is written). Returns this attempt's counters (payloads aside)."""
    counters = PushCounters()
    stored_state = store.checkpoint(COLLECTOR, key)
    state = StreamState.decode(stored_state)
    fresh = _unseen(records, state, counters)
    counters.records += len(records)
    sink = InvocationSink(redaction, store.sample_rate())
    merged = sorted([*state.records, *fresh], key=lambda r: r["timestamp"])
    for record in merged:
        sink.feed(record)
    sink.finish()
    sink.invocations = [i for i in sink.invocations
                        if state.closed.get(i.request_id, i.start_ms) == i.start_ms]
    after = _next_state(state, merged, fresh, sink, hold_ms)
    if fresh:
        sink.write(store, {(COLLECTOR, key): after.encode()}, counters, refused,
                   expect={(COLLECTOR, key): stored_state})
    else:
        sink.write(store, {}, counters, refused)
    counters.pending_records += len(after.records)
    counters.quarantined += len(refused)
    return counters


def _unseen(records: list[dict[str, Any]], state: StreamState,
            counters: PushCounters) -> list[dict[str, Any]]:
    """The records not processed before (by id), each once."""
    fresh, ids = [], set(state.seen) | {r["eventId"] for r in state.records}
    for record in records:
        if record["eventId"] in ids:
            counters.records_already_seen += 1
            continue
        ids.add(record["eventId"])
        fresh.append(record)
    return fresh


def _next_state(state: StreamState, merged: list[dict[str, Any]],
                fresh: list[dict[str, Any]], sink: InvocationSink,
                hold_ms: int) -> StreamState:
    """The stream's state after a payload: the records of the invocation still open (not
    older than `hold_ms` before the newest record), the newest record ids, the request ids
    completed within `hold_ms`."""
    if not merged:
        return state
    newest = merged[-1]["timestamp"]
    recent = newest - hold_ms
    starts = [p.start_ms for p in sink.partials if p.start_ms >= recent]
    held = ([r for r in merged if r["timestamp"] >= min(starts)][-MAX_PENDING_RECORDS:]
            if starts else [])
    seen = {**state.seen, **{r["eventId"]: r["timestamp"] for r in fresh}}
    seen_kept = sorted((ts, rid) for rid, ts in seen.items() if ts >= recent)
    closed = {**state.closed, **{i.request_id: i.start_ms for i in sink.invocations
                                 if i.complete}}
    closed_kept = sorted((ts, rid) for rid, ts in closed.items() if ts >= recent)
    return StreamState(held, {rid: ts for ts, rid in seen_kept[-MAX_PENDING_SEEN:]},
                       {rid: ts for ts, rid in closed_kept[-MAX_CLOSED:]})


# --- installing the push ------------------------------------------------------------------


class SubscriptionError(Exception):
    """The destination cannot be used (not an ARN eventscope knows how to subscribe)."""


@dataclass
class SubscriptionReport:
    """What a subscribe or unsubscribe did (or, dry run, would do), group by group."""

    prefix: str
    destination_arn: str | None = None
    dry_run: bool = False
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    full: list[str] = field(default_factory=list)  # two filters already, none ours
    permission: str = ""  # added / present / updated / removed / absent / not needed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed
                    or self.permission in ("added", "updated", "removed"))


def statement_id(prefix: str) -> str:
    """The Lambda permission's statement id for a prefix: stable, and one per prefix."""
    return f"eventscope-logs-{hashlib.sha256(prefix.encode()).hexdigest()[:12]}"


def subscribe(logs: Any, lambda_: Any, prefix: str, destination_arn: str,
              filter_pattern: str = "", role_arn: str | None = None,
              dry_run: bool = False) -> SubscriptionReport:
    """Put `FILTER_NAME` towards `destination_arn` on every group under `prefix`."""
    arn = _parse_arn(destination_arn)
    report = SubscriptionReport(prefix, destination_arn, dry_run)
    if arn["service"] == "lambda":
        report.permission = _ensure_permission(lambda_, arn, prefix, dry_run)
    else:
        report.permission = "not needed"
        if role_arn is None:
            raise SubscriptionError(f"a {arn['service']} destination needs --role-arn (a role "
                                    "CloudWatch Logs assumes to write to it)")
    wanted = {"destinationArn": destination_arn, "filterPattern": filter_pattern}
    for group in discover_groups(logs, prefix):
        filters = logs.describe_subscription_filters(logGroupName=group).get(
            "subscriptionFilters", [])
        ours = next((f for f in filters if f.get("filterName") == FILTER_NAME), None)
        if ours is not None and all(ours.get(k, "") == v for k, v in wanted.items()) and (
                role_arn is None or ours.get("roleArn") == role_arn):
            report.unchanged.append(group)
            continue
        if ours is None and len(filters) >= MAX_FILTERS_PER_GROUP:
            names = ", ".join(str(f.get("filterName")) for f in filters)
            report.full.append(f"{group} ({names})")
            continue
        if not dry_run:
            extra = {"roleArn": role_arn} if role_arn else {}
            logs.put_subscription_filter(logGroupName=group, filterName=FILTER_NAME,
                                         filterPattern=filter_pattern,
                                         destinationArn=destination_arn, **extra)
        (report.created if ours is None else report.updated).append(group)
    return report


def unsubscribe(logs: Any, lambda_: Any, prefix: str, dry_run: bool = False
                ) -> SubscriptionReport:
    """Delete `FILTER_NAME` from every group under `prefix`, and the prefix's permission
    statement from each Lambda those filters pointed to."""
    report = SubscriptionReport(prefix, dry_run=dry_run)
    destinations: set[str] = set()
    for group in discover_groups(logs, prefix):
        filters = logs.describe_subscription_filters(logGroupName=group).get(
            "subscriptionFilters", [])
        ours = next((f for f in filters if f.get("filterName") == FILTER_NAME), None)
        if ours is None:
            report.absent.append(group)
            continue
        destinations.add(str(ours.get("destinationArn", "")))
        if not dry_run:
            logs.delete_subscription_filter(logGroupName=group, filterName=FILTER_NAME)
        report.removed.append(group)
    outcomes = []
    for destination in sorted(destinations):
        try:
            arn = _parse_arn(destination)
        except SubscriptionError:
            continue
        if arn["service"] == "lambda":
            outcomes.append(_remove_permission(lambda_, arn, prefix, dry_run))
    report.permission = "removed" if "removed" in outcomes else ("absent" if outcomes
                                                                 else "not needed")
    if len(destinations) == 1:
        report.destination_arn = next(iter(destinations))
    return report


def _parse_arn(arn: str) -> dict[str, str]:
    """arn:partition:service:region:account:resource, checked for a destination's needs."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[4].isdigit():
        raise SubscriptionError(f"{arn!r} is not an AWS ARN with a region and an account")
    partition, service, region, account, resource = parts[1:]
    if service not in ("lambda", "firehose", "kinesis", "logs"):
        raise SubscriptionError(f"CloudWatch Logs cannot deliver to a {service} ARN: give a "
                                "Lambda function, Firehose stream, Kinesis stream or "
                                "logs destination")
    if service == "lambda" and not resource.startswith("function:"):
        raise SubscriptionError(f"{arn!r} is not a Lambda function ARN")
    return {"arn": arn, "partition": partition, "service": service, "region": region,
            "account": account}


def _statement(arn: Mapping[str, str], prefix: str) -> dict[str, Any]:
    source = (f"arn:{arn['partition']}:logs:{arn['region']}:{arn['account']}:"
              f"log-group:{prefix}*")
    return {"StatementId": statement_id(prefix), "Action": "lambda:InvokeFunction",
            "Principal": LOGS_PRINCIPAL, "SourceArn": source, "SourceAccount": arn["account"]}


def _policy_statement(lambda_: Any, function_arn: str, sid: str) -> dict[str, Any] | None:
    try:
        policy = lambda_.get_policy(FunctionName=function_arn)["Policy"]
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    for statement in json.loads(policy).get("Statement", []):
        if statement.get("Sid") == sid:
            return dict(statement)
    return None


def _ensure_permission(lambda_: Any, arn: Mapping[str, str], prefix: str,
                       dry_run: bool) -> str:
    """logs.amazonaws.com may invoke the function for the prefix's groups: one statement."""
    wanted = _statement(arn, prefix)
    existing = _policy_statement(lambda_, arn["arn"], wanted["StatementId"])
    if existing is not None and wanted["SourceArn"] in json.dumps(existing.get("Condition")):
        return "present"
    if not dry_run:
        if existing is not None:
            lambda_.remove_permission(FunctionName=arn["arn"], StatementId=wanted["StatementId"])
        lambda_.add_permission(FunctionName=arn["arn"], **wanted)
    return "added" if existing is None else "updated"


def _remove_permission(lambda_: Any, arn: Mapping[str, str], prefix: str, dry_run: bool) -> str:
    sid = statement_id(prefix)
    if _policy_statement(lambda_, arn["arn"], sid) is None:
        return "absent"
    if not dry_run:
        lambda_.remove_permission(FunctionName=arn["arn"], StatementId=sid)
    return "removed"
