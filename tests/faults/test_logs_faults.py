"""The logs collector under faults (issue 17, part 3): a future-dated record, records an hour
late, a log group refused (AccessDenied) among healthy ones, and a pagination interrupted
mid-way. Each case ends with every invocation stored exactly once (the natural key is
request id + start; the test counts rows per request id, it does not assume it).

The refusal and the interruption are injected at botocore's `before-send` hook of a real
client talking to moto's server: the answer CloudWatch Logs gives, handled by botocore.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from botocore.awsrequest import AWSResponse
from hypothesis import given, settings, strategies as st

from eventscope.collectors.clients import client_config, make_client
from eventscope.collectors.logs_collector import (CHECKPOINT_MARGIN_MS, MAX_OVERLAP_MS,
                                                  LogGroupsFailed, LogsCounters, LogsSettings,
                                                  collect_logs, next_checkpoint)
from eventscope.store import Store, invocations
from tests.conftest_aws import aws, clients, moto_endpoint  # noqa: F401

LINES = json.loads((Path(__file__).parents[1] / "data/collectors/lambda_invocation_text.json")
                   .read_text())
STREAM = "2026/11/30/[$LATEST]8f2c1d7e4b5a4c3d9e0f1a2b3c4d5e6f"
MINUTE = 60_000


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_kwargs: Any) -> Any:
        yield self.data


def now_ms() -> int:
    return int(time.time() * 1000)


def make_group(logs: Any, group: str) -> None:
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=STREAM)


def put_invocation(logs: Any, group: str, start_ms: int) -> str:
    """One invocation's four real-shaped lines (START, a Powertools line, END, REPORT)."""
    rid, event_id = str(uuid.uuid4()), str(uuid.uuid4())
    logs.put_log_events(logGroupName=group, logStreamName=STREAM, logEvents=[
        {"timestamp": start_ms + 10 * i,
         "message": line.replace("{rid}", rid).replace("{event_id}", event_id)}
        for i, line in enumerate(LINES)])
    return rid


def stored(store: Store) -> Counter[str]:
    with store.engine.connect() as conn:
        return Counter(conn.execute(sa.select(invocations.c.request_id)).scalars())


def assert_exactly_once(store: Store, rids: list[str]) -> None:
    found = stored(store)
    assert set(found) == set(rids), (set(rids) - set(found), set(found) - set(rids))
    assert max(found.values()) == 1


def collect(logs: Any, store: Store, groups: tuple[str, ...], **overrides: Any) -> LogsCounters:
    counters = LogsCounters()
    collect_logs(logs, store, LogsSettings(log_groups=groups, since_ms=now_ms() - 3 * 3600_000,
                                           **overrides), counters)
    return counters


def test_a_future_dated_record_does_not_blind_the_group(aws: Any, store: Store) -> None:
    """The issue's case: one record dated 90 minutes ahead; the next pass still stores the
    three invocations written after it (it stored 0 of 3)."""
    logs, = clients(aws, "logs")
    group = "/aws/lambda/future"
    make_group(logs, group)
    first = [put_invocation(logs, group, now_ms() - 2 * MINUTE)]
    logs.put_log_events(logGroupName=group, logStreamName=STREAM, logEvents=[
        {"timestamp": now_ms() + 90 * MINUTE, "message": "clock skew: a line from the future"}])
    collect(logs, store, (group,))
    later = [put_invocation(logs, group, now_ms() - 20_000 + i * 100) for i in range(3)]
    collect(logs, store, (group,))
    assert_exactly_once(store, first + later)


def test_records_an_hour_late_are_caught_once_lateness_was_seen(aws: Any,
                                                                 store: Store) -> None:
    """A group whose records arrive an hour late: after the first late one, the re-read
    window follows that lateness, so the next hour-late record is stored, and the records
    read twice are stored once."""
    logs, = clients(aws, "logs")
    group = "/aws/lambda/late"
    make_group(logs, group)
    rids = [put_invocation(logs, group, now_ms() - 61 * MINUTE),
            put_invocation(logs, group, now_ms() - 2 * MINUTE)]
    first = collect(logs, store, (group,))
    assert first.invocations_stored == 2
    rids.append(put_invocation(logs, group, now_ms() - 60 * MINUTE))  # written an hour late
    second = collect(logs, store, (group,))
    assert second.invocations_stored == 1 and second.records_already_seen >= 8
    assert_exactly_once(store, rids)


def deny(logs: Any, group: str) -> None:
    """FilterLogEvents on `group` answered as CloudWatch Logs answers a missing permission."""
    def answer(request: Any, **_kwargs: Any) -> AWSResponse | None:
        if json.loads(request.body).get("logGroupName") != group:
            return None
        message = f"not authorized to perform: logs:FilterLogEvents on {group}"
        body = json.dumps({"__type": "AccessDeniedException", "message": message})
        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.1"},
                           _Body(body.encode()))

    logs.meta.events.register("before-send.cloudwatch-logs.FilterLogEvents", answer)


def test_a_refused_group_fails_alone_and_is_retried(aws: Any, store: Store) -> None:
    """AccessDenied on one of three groups: the two others are stored, the pass names the
    refused one; once allowed, the next pass stores its invocation (once)."""
    logs = make_client("logs", aws)
    groups = ("/aws/lambda/a", "/aws/lambda/denied", "/aws/lambda/c")
    rids = {}
    for group in groups:
        make_group(logs, group)
        rids[group] = put_invocation(logs, group, now_ms() - 2 * MINUTE)
    deny(logs, "/aws/lambda/denied")
    counters = LogsCounters()
    with pytest.raises(LogGroupsFailed) as failed:
        collect_logs(logs, store, LogsSettings(log_groups=groups,
                                               since_ms=now_ms() - 3600_000), counters)
    assert list(failed.value.failures) == ["/aws/lambda/denied"]
    assert "AccessDenied" in failed.value.failures["/aws/lambda/denied"]
    assert counters.groups_failed == 1
    assert_exactly_once(store, [rids["/aws/lambda/a"], rids["/aws/lambda/c"]])
    allowed, = clients(aws, "logs")
    collect(allowed, store, groups)
    assert_exactly_once(store, list(rids.values()))


def test_collect_logs_exits_1_with_the_healthy_groups_stored(aws: Any, tmp_path: Path) -> None:
    """The command's contract: exit 1 and one `error:` line naming the failing group, after
    storing the healthy one (it exited 1 with nothing stored)."""
    from click.testing import CliRunner

    from eventscope.cli import main
    from eventscope.store import open_store

    logs, = clients(aws, "logs")
    make_group(logs, "/aws/lambda/ok")
    rid = put_invocation(logs, "/aws/lambda/ok", now_ms() - 2 * MINUTE)
    db = f"sqlite:///{tmp_path / 's.db'}"
    result = CliRunner().invoke(main, [
        "collect", "logs", "--log-group", "/aws/lambda/ok", "--log-group", "/aws/lambda/gone",
        "--since", "1h", "--db", db, "--endpoint-url", aws.endpoint_url, "--json"])
    assert result.exit_code == 1, result.output
    assert "error: 1 log group(s) failed" in result.output and "/aws/lambda/gone" in result.output
    assert_exactly_once(open_store(db), [rid])


def test_an_interrupted_pagination_restarts_from_the_checkpoint(aws: Any, store: Store) -> None:
    """Throttled past botocore's retries on the third page of five: nothing of the pass is
    committed (the checkpoint did not move), the next pass reads every page again and each
    invocation is stored once."""
    logs = make_client("logs", aws, client_config(max_attempts=2))
    group = "/aws/lambda/paged"
    make_group(logs, group)
    base = now_ms() - 30 * MINUTE
    rids = [put_invocation(logs, group, base + i * 1000) for i in range(30)]  # 120 records
    calls = [0]

    def throttle_third_page(request: Any, **_kwargs: Any) -> AWSResponse | None:
        calls[0] += 1
        if calls[0] not in (3, 4):  # both attempts of the third page
            return None
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"})
        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.1"},
                           _Body(body.encode()))

    logs.meta.events.register("before-send.cloudwatch-logs.FilterLogEvents",
                              throttle_third_page)
    with pytest.raises(LogGroupsFailed):
        collect(logs, store, (group,), page_size=25)
    assert not stored(store)
    counters = collect(logs, store, (group,), page_size=25)
    assert counters.pages == 5
    assert_exactly_once(store, rids)


@settings(max_examples=60)
@given(stamps=st.dictionaries(st.text(min_size=1, max_size=8),
                              st.integers(0, 4_000_000_000_000), min_size=1, max_size=20),
       lateness=st.integers(-3600_000, 30 * 3600_000), now=st.integers(10 ** 12, 3 * 10 ** 12))
def test_a_checkpoint_never_resumes_past_now_and_keeps_what_it_may_meet_again(
        stamps: dict[str, int], lateness: int, now: int) -> None:
    """Whatever the records' times (future ones included) and lateness: the resume point is
    at most now - margin - overlap, and every record at or after it stays known by id (so a
    re-read skips it); the window never exceeds the cap."""
    settings_ = LogsSettings()
    checkpoint = next_checkpoint(None, stamps, [], settings_, now_ms=now, lateness_ms=lateness)
    assert checkpoint is not None
    assert checkpoint.resume_ms <= now - CHECKPOINT_MARGIN_MS - settings_.overlap_ms
    newest = min(max(stamps.values()), now - CHECKPOINT_MARGIN_MS)
    assert checkpoint.resume_ms >= newest - MAX_OVERLAP_MS
    assert checkpoint.seen == {k: v for k, v in stamps.items() if v >= checkpoint.resume_ms}
