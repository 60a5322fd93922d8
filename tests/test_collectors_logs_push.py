"""CloudWatch Logs pushed: the `awslogs` handler on real-shaped payloads (both engines), and
`eventscope logs subscribe|unsubscribe` against moto's CloudWatch Logs and Lambda over HTTP.

Payloads are built here the way CloudWatch Logs documents them for a Lambda destination
(`{"awslogs": {"data": base64(gzip(json))}}`, `messageType`, `owner`, `logGroup`,
`logStream`, `subscriptionFilters`, `logEvents` of `id`/`timestamp`/`message`), from the
project's own Lambda log fixtures (`tests/data/lambda/`, both log formats).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from eventscope.cli import main
from eventscope.collectors.handler import handle_logs
from eventscope.collectors.logs_push import (COLLECTOR, FILTER_NAME, PushCounters, StreamState,
                                             statement_id, store_push, subscribe, unsubscribe)
from eventscope.errors import StoreError
from eventscope.lambda_logs import assemble_invocations
from eventscope.store import (CheckpointMoved, Store, checkpoints, create_engine, invocations,
                              open_store, quarantine)
from tests.conftest_aws import REGION, aws, clients, moto_endpoint  # noqa: F401

DATA = Path(__file__).parent / "data/lambda"
ACCOUNT = "123456789012"


def records_of(name: str) -> list[dict[str, Any]]:
    """A fixture's `filter_log_events`-shaped records (one log group and stream each)."""
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line]


def payload(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The Lambda event a subscription filter delivers for `records` (one stream)."""
    first = records[0]
    document = {"messageType": "DATA_MESSAGE", "owner": ACCOUNT, "logGroup": first["logGroupName"],
                "logStream": first["logStreamName"], "subscriptionFilters": [FILTER_NAME],
                "logEvents": [{"id": r["eventId"], "timestamp": r["timestamp"],
                               "message": r["message"]} for r in records]}
    return encoded(json.dumps(document).encode())


def encoded(document: bytes) -> dict[str, Any]:
    return {"awslogs": {"data": base64.b64encode(gzip.compress(document)).decode()}}


def rows(store: Store) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            sa.select(invocations).order_by(invocations.c.start_ms))]


def quarantined(store: Store) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        return sorted((r.origin, r.reason) for r in conn.execute(sa.select(quarantine)))


FIELDS = ("request_id", "start_ms", "consumer", "outcome", "event_id", "end_ms", "duration_ms",
          "error_type", "complete", "log_format")


def as_polled(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What the polling path's assembler makes of the same records."""
    return sorted(tuple(getattr(inv, f) for f in FIELDS) for inv in assemble_invocations(records))


def as_stored(store: Store) -> list[tuple[Any, ...]]:
    return sorted(tuple(bool(r[f]) if f == "complete" else r[f] for f in FIELDS)
                  for r in rows(store))


# --- the handler ----------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["text_ok.ndjson", "text_timeout.ndjson",
                                     "json_powertools.ndjson", "json_error.ndjson"])
def test_a_payload_gives_the_invocations_the_polling_path_gives(fixture: str,
                                                                store: Store) -> None:
    """Both Lambda log formats: the pushed records become the same invocation rows as the
    polling collector's assembler makes of them (outcome, duration, event id, error type)."""
    records = records_of(fixture)
    counters = PushCounters()
    for stream in sorted({(r["logGroupName"], r["logStreamName"]) for r in records}):
        store_push(payload([r for r in records
                            if (r["logGroupName"], r["logStreamName"]) == stream]),
                   store, counters=counters)
    assert as_stored(store) == as_polled(records)
    assert counters.records == len(records) and counters.invocations_stored >= 1


def test_the_powertools_correlation_id_becomes_the_event_id(store: Store) -> None:
    """A Powertools line's correlation_id is the invocation's event id, as when polled."""
    store_push(payload(records_of("json_powertools.ndjson")), store)
    assert all(r["event_id"] for r in rows(store))


def test_a_control_message_is_acknowledged_and_stores_nothing(store: Store) -> None:
    """CloudWatch Logs' reachability check: counted, nothing stored, nothing quarantined."""
    document = {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "",
                "logStream": "", "subscriptionFilters": [], "logEvents": [
                    {"id": "", "timestamp": 1714557600000,
                     "message": "CWL CONTROL MESSAGE: Checking health of destination Lambda."}]}
    counters = store_push(encoded(json.dumps(document).encode()), store)
    assert counters.control_messages == 1 and counters.records == 0
    assert rows(store) == [] and quarantined(store) == []


def split_invocation() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The text fixture's two invocations cut after the first one's START and a log line."""
    records = records_of("text_ok.ndjson")
    cut = next(i for i, r in enumerate(records) if r["message"].startswith("START")) + 2
    return records[:cut], records[cut:]


def test_an_invocation_split_across_two_payloads_is_one_complete_row(store: Store) -> None:
    """START in the first payload, END and REPORT in the second: after the first a partial
    row and its records kept for the stream; after the second the same row, complete, equal
    to what the polling path makes of all the records, and nothing kept."""
    first, second = split_invocation()
    after_first = store_push(payload(first), store)
    assert [r["complete"] for r in rows(store)] == [False]
    assert after_first.pending_records > 0
    store_push(payload(second), store)
    assert as_stored(store) == as_polled(first + second)
    assert [r["complete"] for r in rows(store)] == [True, True]
    key = f"{first[0]['logGroupName']}:{first[0]['logStreamName']}"
    assert StreamState.decode(store.checkpoint(COLLECTOR, key)).records == []


def test_payloads_delivered_twice_are_stored_once(store: Store) -> None:
    """At-least-once delivery: each payload of a split invocation twice, in order and after
    completion; one complete row, the repeats skipped by record id before parsing."""
    first, second = split_invocation()
    counters = PushCounters()
    for event in (payload(first), payload(first), payload(second), payload(second),
                  payload(first)):
        store_push(event, store, counters=counters)
    assert [(r["request_id"], r["complete"]) for r in rows(store)] == [
        ("34ba5ace-f086-4ff7-8698-e95fb8d058ea", True),
        ("8c21aecb-5116-49d7-8ace-b86f95b686c5", True)]
    assert counters.records_already_seen >= len(first) + len(second)


def test_records_of_one_payload_seen_again_in_the_next_are_parsed_once(store: Store) -> None:
    """Overlapping payloads (the second repeats the first's records): one row, the repeated
    records counted as already seen."""
    first, second = split_invocation()
    counters = PushCounters()
    store_push(payload(first), store, counters=counters)
    store_push(payload(first + second), store, counters=counters)
    assert [r["complete"] for r in rows(store)] == [True, True]
    assert counters.records_already_seen == len(first)


# --- two runs on one stream at once ------------------------------------------------------


class ReadThenOvertaken(Store):
    """A real store whose first checkpoint read is followed by another run's whole push (a
    second Lambda container on the same stream) before this run goes on."""

    def __init__(self, url: str, other_run: Any) -> None:
        super().__init__(create_engine(url))
        self.other_run = other_run

    def checkpoint(self, collector: str, key: str) -> str | None:
        value = super().checkpoint(collector, key)
        if self.other_run is not None:
            other_run, self.other_run = self.other_run, None
            other_run()
        return value


def test_two_runs_on_one_stream_at_once_lose_nothing(store_url: str, store: Store,
                                                     tmp_path: Path) -> None:
    """The first half of a split invocation read its stream's state, then another run stored
    the second half before it wrote. The first run's write finds the state moved, writes
    nothing, reads it again and redoes its payload: the store ends exactly as if the second
    half had simply arrived first (same rows, same stream state; without the check the
    first run's write would drop the other's state and store the invocation twice), and
    the first run counts its records once."""
    first, second = split_invocation()
    slow = ReadThenOvertaken(store_url, lambda: store_push(payload(second), store))
    counters = store_push(payload(first), slow)
    in_order = open_store(f"sqlite:///{tmp_path / 'in-order.db'}")
    for half in (second, first):
        store_push(payload(half), in_order)
    key = f"{first[0]['logGroupName']}:{first[0]['logStreamName']}"
    assert as_stored(store) == as_stored(in_order)
    assert [r["request_id"] for r in rows(store)] == sorted({i.request_id for i in
                                                             assemble_invocations(first + second)})
    assert store.checkpoint(COLLECTOR, key) == in_order.checkpoint(COLLECTOR, key)
    assert (counters.payloads, counters.records) == (1, len(first))


def one_invocation() -> list[Any]:
    return list(assemble_invocations(records_of("text_ok.ndjson")))[:1]


def test_a_batch_expecting_a_checkpoint_that_moved_writes_nothing(store: Store) -> None:
    """`expect_checkpoints`: a stale expected value, or expecting none where one exists,
    raises CheckpointMoved and stores none of the batch; the value read now is taken."""
    key = ("logs-push", "group:stream")
    store.write_batch(checkpoints_={key: "v1"})
    for stale in ("v0", None):
        with pytest.raises(CheckpointMoved):
            store.write_batch((), one_invocation(), (), {key: "v2"},
                              expect_checkpoints={key: stale})
        assert (store.checkpoint(*key), rows(store)) == ("v1", [])
    store.write_batch((), one_invocation(), (), {key: "v2"}, expect_checkpoints={key: "v1"})
    assert store.checkpoint(*key) == "v2" and len(rows(store)) == 1
    with pytest.raises(ValueError, match="no new value"):
        store.write_batch((), (), (), {}, expect_checkpoints={key: "v2"})


def test_a_batch_written_apart_with_a_moved_checkpoint_is_redone_without_loss_or_twice(
        store: Store) -> None:
    """A batch holding a row the engine refuses is written in parts, its claim with the
    last: parts may commit before the claim finds the checkpoint moved. Redone with the
    value read now, the batch leaves each row stored once, the refused row quarantined
    once, and the new checkpoint: the same as one delivery."""
    from dataclasses import replace
    key = ("logs-push", "group:stream")
    store.write_batch(checkpoints_={key: "v1"})
    good = one_invocation()
    broken = replace(good[0], request_id="refused", consumer=None)  # violates NOT NULL
    with pytest.raises(CheckpointMoved):
        store.write_batch((), [*good, broken], (), {key: "v2"}, expect_checkpoints={key: "v0"})
    assert store.checkpoint(*key) == "v1"
    store.write_batch((), [*good, broken], (), {key: "v2"}, expect_checkpoints={key: "v1"})
    assert store.checkpoint(*key) == "v2"
    assert [r["request_id"] for r in rows(store)] == [good[0].request_id]
    assert quarantined(store) == [("store", "store_rejected")]


def test_a_claim_waiting_behind_a_writer_sees_its_change(store_url: str, store: Store) -> None:
    """A conditional batch that must wait for another transaction holding the checkpoint
    (PostgreSQL's row lock, SQLite's write lock) checks the value that transaction
    committed, not the one before: it raises CheckpointMoved."""
    key = ("logs-push", "group:stream")
    store.write_batch(checkpoints_={key: "v1"})
    holder = create_engine(store_url)
    outcome: list[BaseException | None] = []
    with holder.begin() as conn:
        conn.execute(sa.update(checkpoints).where(checkpoints.c.key == key[1])
                     .values(value="other"))

        def claim() -> None:
            try:
                store.write_batch((), one_invocation(), (), {key: "v2"},
                                  expect_checkpoints={key: "v1"})
                outcome.append(None)
            except CheckpointMoved as moved:
                outcome.append(moved)

        waiter = threading.Thread(target=claim)
        waiter.start()
        time.sleep(0.5)  # the claim is now waiting for the lock (it cannot finish before)
        assert outcome == []
    waiter.join(timeout=30)
    holder.dispose()
    assert len(outcome) == 1 and isinstance(outcome[0], CheckpointMoved)
    assert (store.checkpoint(*key), rows(store)) == ("other", [])


def readonly(store_url: str) -> Store:
    """A real store on the same SQLite file opened read-only: every write fails."""
    path = store_url.removeprefix("sqlite:///")
    return Store(create_engine(f"sqlite:///file:{path}?mode=ro&uri=true"))


def test_a_store_failure_propagates_and_the_retry_stores_it(tmp_path: Path) -> None:
    """A store that refuses the write (a read-only database) raises StoreError from the
    handler, so Lambda retries the delivery; the retry, once writable, stores it."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    writable = open_store(url)
    event = payload(records_of("text_ok.ndjson"))
    with pytest.raises(StoreError):
        handle_logs(event, None, store=readonly(url))
    assert rows(writable) == []
    handle_logs(event, None, store=writable)
    assert [r["complete"] for r in rows(writable)] == [True, True]


def test_the_entry_point_reads_the_store_url_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`eventscope.collectors.logs_lambda_handler` opens $EVENTSCOPE_DB and stores there."""
    import eventscope.collectors.handler
    from eventscope.collectors import logs_lambda_handler

    url = f"sqlite:///{tmp_path / 'lambda.db'}"
    monkeypatch.setenv("EVENTSCOPE_DB", url)
    monkeypatch.setattr(eventscope.collectors.handler, "_STORE", None)
    counters = logs_lambda_handler(payload(records_of("text_ok.ndjson")), None)
    assert counters["invocations_stored"] == 2
    assert len(rows(open_store(url))) == 2


@pytest.mark.parametrize(("event", "reason"), [
    ({"awslogs": {"data": "not base64 at all!"}}, "bad_base64"),
    ({"awslogs": {"data": base64.b64encode(b"plain bytes, not gzip").decode()}}, "bad_gzip"),
    ({"awslogs": {"data": base64.b64encode(gzip.compress(b"{not json")).decode()}}, "bad_json"),
    ({"awslogs": {"data": base64.b64encode(gzip.compress(b"[1, 2]")).decode()}}, "bad_shape"),
    ({"awslogs": {"data": base64.b64encode(gzip.compress(b"{}")[:-6]).decode()}}, "bad_gzip"),
    ({"Records": []}, "not_awslogs"),
])
def test_a_malformed_payload_is_quarantined_with_its_reason(event: dict[str, Any], reason: str,
                                                            store: Store) -> None:
    """Bad base64, bad or truncated gzip, bad JSON, a wrong shape, not a logs event at all:
    one quarantine row with the reason, no exception (a retry would not make it better)."""
    counters = store_push(event, store)
    assert counters.quarantined == 1 and quarantined(store) == [("awslogs", reason)]


def test_a_gzip_bomb_is_refused_without_inflating_it(store: Store) -> None:
    """A payload inflating past the cap is quarantined as too large."""
    bomb = encoded(b"{" + b" " * (17 * 1024 * 1024) + b"}")
    store_push(bomb, store)
    assert quarantined(store) == [("awslogs", "payload_too_large")]


def test_a_bad_log_event_is_quarantined_and_the_others_stored(store: Store) -> None:
    """One log event without an id among good ones: it alone is quarantined."""
    records = records_of("text_ok.ndjson")
    event = json.loads(gzip.decompress(base64.b64decode(payload(records)["awslogs"]["data"])))
    event["logEvents"].insert(3, {"timestamp": "soon", "message": 42})
    store_push(encoded(json.dumps(event).encode()), store)
    assert quarantined(store) == [(f"awslogs:{records[0]['logGroupName']}", "bad_record")]
    assert [r["complete"] for r in rows(store)] == [True, True]


_PROPERTY_STORE: list[Store] = []


def property_store() -> Store:
    """One SQLite store for all the property test's examples."""
    if not _PROPERTY_STORE:
        _PROPERTY_STORE.append(open_store(f"sqlite:///{tempfile.mkdtemp()}/p.db"))
    return _PROPERTY_STORE[0]


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)
_log_event = st.fixed_dictionaries({"id": st.text(max_size=8) | st.integers(),
                                    "timestamp": st.integers() | st.text(max_size=5),
                                    "message": st.text(max_size=80) | _json})
_documents = st.fixed_dictionaries({
    "messageType": st.sampled_from(["DATA_MESSAGE", "CONTROL_MESSAGE", "OTHER"]) | _json,
    "logGroup": st.text(max_size=20) | _json, "logStream": st.text(max_size=20) | _json,
    "logEvents": st.lists(_log_event | _json, max_size=6) | _json})
_garbage = st.one_of(
    st.builds(lambda b: {"awslogs": {"data": base64.b64encode(b).decode()}}, st.binary()),
    st.builds(lambda b: encoded(b), st.binary()),
    st.builds(lambda t: {"awslogs": {"data": t}}, st.text()),
    _json,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(event=_garbage)
def test_random_bytes_never_raise_and_are_quarantined_once(event: Any) -> None:
    """Random bytes (as base64, as gzip), random text, random JSON as the event: the handler
    never raises, and the payload is quarantined once with a reason."""
    counters = store_push(event, property_store())
    assert (counters.quarantined, counters.records, counters.control_messages) == (1, 0, 0)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(document=_documents)
def test_random_documents_never_raise_and_every_log_event_is_accounted_for(
        document: dict[str, Any]) -> None:
    """Random documents of the payload's shape: never raises; a well-formed DATA_MESSAGE
    has each log event read or quarantined, anything else is one quarantined payload or an
    acknowledged control message."""
    counters = store_push(encoded(json.dumps(document).encode()), property_store())
    well_formed = (document["messageType"] == "DATA_MESSAGE"
                   and all(isinstance(document[k], str) and document[k]
                           for k in ("logGroup", "logStream"))
                   and isinstance(document["logEvents"], list))
    if well_formed:
        assert counters.records + counters.quarantined == len(document["logEvents"])
    elif document["messageType"] == "CONTROL_MESSAGE":
        assert counters.control_messages == 1 and counters.quarantined == 0
    else:
        assert counters.quarantined == 1 and counters.records == 0


# --- subscribe / unsubscribe ------------------------------------------------------------------


def make_function(aws: Any, name: str = "eventscope-logs") -> str:
    """A Lambda function in moto (never invoked here), its ARN."""
    iam, lambda_ = clients(aws, "iam", "lambda")
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]
    }))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    arn: str = lambda_.create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="handler.handler",
        Code={"ZipFile": code.getvalue()})["FunctionArn"]
    return arn


@pytest.fixture
def groups(aws: Any) -> Any:
    """60 Lambda log groups (two describe pages) and one outside the prefix."""
    logs, = clients(aws, "logs")
    for i in range(60):
        logs.create_log_group(logGroupName=f"/aws/lambda/fn-{i:02d}")
    logs.create_log_group(logGroupName="/ecs/web")
    return logs


def filters(logs: Any, group: str) -> dict[str, str]:
    found = logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"]
    return {f["filterName"]: f["destinationArn"] for f in found}


def permission(lambda_: Any, arn: str) -> list[dict[str, Any]]:
    try:
        policy = json.loads(lambda_.get_policy(FunctionName=arn)["Policy"])
    except lambda_.exceptions.ResourceNotFoundException:
        return []
    return [s for s in policy["Statement"] if s["Sid"] == statement_id("/aws/lambda/")]


def test_subscribe_puts_our_filter_on_every_group_under_the_prefix(aws: Any, groups: Any) -> None:
    """All 60 groups (across describe pages) get the filter towards the function, the group
    outside the prefix none; one permission statement lets CloudWatch Logs invoke it."""
    arn = make_function(aws)
    lambda_, = clients(aws, "lambda")
    report = subscribe(groups, lambda_, "/aws/lambda/", arn)
    assert len(report.created) == 60 and report.permission == "added"
    assert all(filters(groups, f"/aws/lambda/fn-{i:02d}") == {FILTER_NAME: arn}
               for i in range(60))
    assert filters(groups, "/ecs/web") == {}
    statement, = permission(lambda_, arn)
    assert statement["Principal"] == {"Service": "logs.amazonaws.com"}
    assert "log-group:/aws/lambda/*" in json.dumps(statement["Condition"])


def test_a_second_subscribe_changes_nothing_and_says_so(aws: Any, groups: Any) -> None:
    """Idempotent: the second run finds every group unchanged and the permission present."""
    arn = make_function(aws)
    lambda_, = clients(aws, "lambda")
    subscribe(groups, lambda_, "/aws/lambda/", arn)
    again = subscribe(groups, lambda_, "/aws/lambda/", arn)
    assert not again.changed and len(again.unchanged) == 60 and again.permission == "present"
    assert len(permission(lambda_, arn)) == 1


def test_a_changed_pattern_updates_our_filter(aws: Any, groups: Any) -> None:
    """Run again with another filter pattern: our filters are updated, not duplicated."""
    arn = make_function(aws)
    lambda_, = clients(aws, "lambda")
    subscribe(groups, lambda_, "/aws/lambda/fn-0", arn)
    report = subscribe(groups, lambda_, "/aws/lambda/fn-0", arn, filter_pattern="REPORT")
    assert len(report.updated) == 10 and report.created == []
    found = groups.describe_subscription_filters(logGroupName="/aws/lambda/fn-03")
    assert [f["filterPattern"] for f in found["subscriptionFilters"]] == ["REPORT"]


def test_a_group_holding_two_foreign_filters_is_reported_full_and_left_alone(
        aws: Any, groups: Any) -> None:
    """CloudWatch allows two filters per group: a group with two of someone else's is
    reported full, its filters untouched; one foreign filter leaves room for ours."""
    ours, theirs = make_function(aws), make_function(aws, "datadog-forwarder")
    lambda_, = clients(aws, "lambda")
    for name in ("datadog", "lumigo"):
        groups.put_subscription_filter(logGroupName="/aws/lambda/fn-07", filterName=name,
                                       filterPattern="", destinationArn=theirs)
    groups.put_subscription_filter(logGroupName="/aws/lambda/fn-08", filterName="datadog",
                                   filterPattern="", destinationArn=theirs)
    report = subscribe(groups, lambda_, "/aws/lambda/", ours)
    assert report.full == ["/aws/lambda/fn-07 (datadog, lumigo)"]
    assert filters(groups, "/aws/lambda/fn-07") == {"datadog": theirs, "lumigo": theirs}
    assert filters(groups, "/aws/lambda/fn-08") == {"datadog": theirs, FILTER_NAME: ours}
    removed = unsubscribe(groups, lambda_, "/aws/lambda/")
    assert "/aws/lambda/fn-07" in removed.absent
    assert filters(groups, "/aws/lambda/fn-08") == {"datadog": theirs}


def test_a_dry_run_reports_and_changes_nothing(aws: Any, groups: Any) -> None:
    """--dry-run on subscribe and on unsubscribe: the report says what would change; no
    filter and no permission is put or deleted."""
    arn = make_function(aws)
    lambda_, = clients(aws, "lambda")
    planned = subscribe(groups, lambda_, "/aws/lambda/", arn, dry_run=True)
    assert len(planned.created) == 60 and planned.permission == "added"
    assert filters(groups, "/aws/lambda/fn-00") == {} and permission(lambda_, arn) == []
    subscribe(groups, lambda_, "/aws/lambda/", arn)
    planned = unsubscribe(groups, lambda_, "/aws/lambda/", dry_run=True)
    assert len(planned.removed) == 60 and planned.permission == "removed"
    assert filters(groups, "/aws/lambda/fn-00") == {FILTER_NAME: arn}
    assert len(permission(lambda_, arn)) == 1


def test_unsubscribe_removes_only_our_filters_and_our_statement(aws: Any, groups: Any) -> None:
    """Our filters and our statement go; a foreign filter and another statement stay; a
    second unsubscribe finds nothing to remove."""
    ours, theirs = make_function(aws), make_function(aws, "other")
    lambda_, = clients(aws, "lambda")
    subscribe(groups, lambda_, "/aws/lambda/", ours)
    groups.put_subscription_filter(logGroupName="/aws/lambda/fn-01", filterName="datadog",
                                   filterPattern="", destinationArn=theirs)
    lambda_.add_permission(FunctionName=ours, StatementId="someone-else", Action=(
        "lambda:InvokeFunction"), Principal="events.amazonaws.com")
    report = unsubscribe(groups, lambda_, "/aws/lambda/")
    assert len(report.removed) == 60 and report.permission == "removed"
    assert filters(groups, "/aws/lambda/fn-01") == {"datadog": theirs}
    assert permission(lambda_, ours) == []
    policy = json.loads(lambda_.get_policy(FunctionName=ours)["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["someone-else"]
    again = unsubscribe(groups, lambda_, "/aws/lambda/")
    assert not again.changed and len(again.absent) == 60


def run_cli(aws: Any, *args: str) -> Any:
    return CliRunner().invoke(main, [*args, "--endpoint-url", aws.endpoint_url,
                                     "--region", REGION])


def test_the_commands_subscribe_and_unsubscribe(aws: Any, groups: Any) -> None:
    """`eventscope logs subscribe --dry-run` (says what it would do, puts nothing), then for
    real, then again (exit 0, "nothing to change"), `--json` unsubscribe (60 removed)."""
    arn = make_function(aws)
    planned = run_cli(aws, "logs", "subscribe", "--prefix", "/aws/lambda/",
                      "--destination-arn", arn, "--dry-run")
    assert planned.exit_code == 0, planned.output
    assert "would be subscribed: /aws/lambda/fn-00" in planned.output
    assert "lambda permission: added (dry run)" in planned.output
    assert filters(groups, "/aws/lambda/fn-00") == {}
    first = run_cli(aws, "logs", "subscribe", "--prefix", "/aws/lambda/",
                    "--destination-arn", arn)
    assert first.exit_code == 0, first.output
    assert "subscribed: /aws/lambda/fn-59" in first.output
    second = run_cli(aws, "logs", "subscribe", "--prefix", "/aws/lambda/",
                     "--destination-arn", arn)
    assert second.exit_code == 0 and "nothing to change" in second.output
    removed = run_cli(aws, "logs", "unsubscribe", "--prefix", "/aws/lambda/", "--json")
    assert removed.exit_code == 0 and len(json.loads(removed.output)["removed"]) == 60


def test_subscribe_exits_1_naming_full_groups(aws: Any, groups: Any) -> None:
    """A group full of foreign filters: the others are subscribed, exit 1, one error line."""
    arn, theirs = make_function(aws), make_function(aws, "other")
    for name in ("a", "b"):
        groups.put_subscription_filter(logGroupName="/aws/lambda/fn-00", filterName=name,
                                       filterPattern="", destinationArn=theirs)
    result = run_cli(aws, "logs", "subscribe", "--prefix", "/aws/lambda/",
                     "--destination-arn", arn)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: 1 log group(s) already hold two")
    assert filters(groups, "/aws/lambda/fn-01") == {FILTER_NAME: arn}


def test_a_destination_that_is_not_a_function_arn_is_one_error_line(aws: Any) -> None:
    """A mistyped ARN: exit 2, one `error:` line, nothing called."""
    result = run_cli(aws, "logs", "subscribe", "--prefix", "/aws/lambda/",
                     "--destination-arn", "arn:aws:sqs:us-east-1:123456789012:q")
    assert result.exit_code == 2 and result.stderr.startswith("error: CloudWatch Logs cannot")


def kinesis_payloads(kinesis: Any, stream: str) -> list[dict[str, Any]]:
    """The payloads the emulator's CloudWatch Logs delivered to a Kinesis stream, as the
    Lambda events a subscription filter gives (`awslogs.data`: base64 of the gzip)."""
    shard = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"][0]
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    found = kinesis.get_records(ShardIterator=iterator)["Records"]
    return [{"awslogs": {"data": r["Data"].decode() if r["Data"][:2] == b"H4"
                         else base64.b64encode(r["Data"]).decode()}} for r in found]


def test_payloads_the_emulator_delivers_complete_a_split_invocation(aws: Any,
                                                                    store: Store) -> None:
    """End to end through moto's own subscription delivery: `subscribe` towards a Kinesis
    stream, an invocation's records written in two `put_log_events` calls (two payloads),
    the handler stores one complete invocation."""
    logs, kinesis = clients(aws, "logs", "kinesis")
    kinesis.create_stream(StreamName="cwl", ShardCount=1)
    stream_arn = kinesis.describe_stream(StreamName="cwl")["StreamDescription"]["StreamARN"]
    group, stream = "/aws/lambda/warranty-consumer", "2026/12/01/[$LATEST]0a1b2c3d4e5f"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    report = subscribe(logs, None, "/aws/lambda/", stream_arn,
                       role_arn=f"arn:aws:iam::{ACCOUNT}:role/cwl-to-kinesis")
    assert report.created == [group] and report.permission == "not needed"
    records = records_of("text_ok.ndjson")
    shift = int(time.time() * 1000) - 60_000 - records[0]["timestamp"]  # CloudWatch's 14 days
    for record in records:
        record["timestamp"] += shift
    first, second = records[:3], records[3:]
    for part in (first, second):
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
            {"timestamp": r["timestamp"], "message": r["message"]} for r in part])
    events = kinesis_payloads(kinesis, "cwl")
    assert len(events) == 2
    counters = PushCounters()
    for event in events:
        store_push(event, store, counters=counters)
    assert counters.quarantined == 0 and counters.records == len(records)
    assert [(r["request_id"], r["complete"]) for r in rows(store)] == [
        ("34ba5ace-f086-4ff7-8698-e95fb8d058ea", True),
        ("8c21aecb-5116-49d7-8ace-b86f95b686c5", True)]
