"""The consumer-logs collector against moto's CloudWatch Logs over HTTP."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings, strategies as st

from eventscope.collectors.logs_collector import (COLLECTOR, MAX_OVERLAP_MS, GroupCheckpoint,
                                                  LogsCounters, LogsSettings, collect_logs,
                                                  discover_groups, next_checkpoint)
from eventscope.sampling import keep
from eventscope.store import Store, invocations as invocations_table, open_store
from tests.conftest_aws import aws, clients, moto_endpoint  # noqa: F401

LINES = json.loads(
    (Path(__file__).parent / "data/collectors/lambda_invocation_text.json").read_text())
GROUP = "/aws/lambda/warranty-consumer"
STREAM = "2025/06/02/[$LATEST]8f2c1d7e4b5a4c3d9e0f1a2b3c4d5e6f"


def invocation_lines(start_ms: int) -> tuple[str, list[dict[str, Any]]]:
    """One invocation's four real-shaped lines, 10 ms apart from `start_ms`."""
    rid, event_id = str(uuid.uuid4()), str(uuid.uuid4())
    return rid, [{"timestamp": start_ms + 10 * i,
                  "message": line.replace("{rid}", rid).replace("{event_id}", event_id)}
                 for i, line in enumerate(LINES)]


def put(logs: Any, records: list[dict[str, Any]], stream: str = STREAM) -> None:
    logs.put_log_events(logGroupName=GROUP, logStreamName=stream,
                        logEvents=sorted(records, key=lambda r: r["timestamp"]))


def stored(store: Store) -> dict[str, bool]:
    with store.engine.connect() as conn:
        return {rid: bool(complete) for rid, complete in conn.execute(
            sa.select(invocations_table.c.request_id, invocations_table.c.complete))}


@pytest.fixture
def logs(aws: Any) -> Any:
    client, = clients(aws, "logs")
    client.create_log_group(logGroupName=GROUP)
    client.create_log_stream(logGroupName=GROUP, logStreamName=STREAM)
    return client


def now_ms() -> int:
    return int(time.time() * 1000)


def run(logs: Any, store: Store, **overrides: Any) -> LogsCounters:
    counters = LogsCounters()
    settings = LogsSettings(since_ms=now_ms() - 3_600_000, **overrides)
    collect_logs(logs, store, settings, counters)
    return counters


def test_discovers_groups_by_prefix_across_pages(aws: Any) -> None:
    """All 55 groups under the prefix are found (two describe pages), others are not."""
    logs, = clients(aws, "logs")
    for i in range(55):
        logs.create_log_group(logGroupName=f"/aws/lambda/fn-{i:02d}")
    logs.create_log_group(logGroupName="/ecs/not-a-lambda")
    assert len(discover_groups(logs, "/aws/lambda/")) == 55


def test_invocations_are_stored_with_a_checkpoint(logs: Any, store: Store) -> None:
    """Two invocations' records become two complete invocations and a group checkpoint."""
    base = now_ms() - 60_000
    rid1, first = invocation_lines(base)
    rid2, second = invocation_lines(base + 1000)
    put(logs, first + second)
    counters = run(logs, store)
    assert stored(store) == {rid1: True, rid2: True}
    assert counters.records_read == 8
    assert store.checkpoint(COLLECTOR, GROUP) is not None


def test_second_run_skips_records_already_read(logs: Any, store: Store) -> None:
    """Re-reading the overlap window finds the same records and stores nothing new."""
    _, lines = invocation_lines(now_ms() - 60_000)
    put(logs, lines)
    run(logs, store)
    again = run(logs, store)
    assert again.records_already_seen == 4 and again.invocations_built == 0


def test_late_records_inside_the_overlap_window_are_collected(logs: Any, store: Store) -> None:
    """An invocation whose records arrive after a newer one was read is still stored."""
    base = now_ms() - 120_000
    rid_new, newer = invocation_lines(base + 60_000)
    put(logs, newer)
    run(logs, store)
    rid_late, late = invocation_lines(base)  # a minute older than what was already read
    logs.create_log_stream(logGroupName=GROUP, logStreamName=STREAM + "-b")
    put(logs, late, stream=STREAM + "-b")
    run(logs, store)
    assert stored(store) == {rid_new: True, rid_late: True}


def test_invocation_split_across_runs_is_completed(logs: Any, store: Store) -> None:
    """START/END read in one run and REPORT in the next end as one complete invocation."""
    rid, lines = invocation_lines(now_ms() - 60_000)
    put(logs, lines[:3])
    run(logs, store)
    assert stored(store) == {rid: False}
    put(logs, lines[3:])
    run(logs, store)
    assert stored(store) == {rid: True}


class EmptyFirstPage:
    """The real logs client, except that the first filter page is empty but has a nextToken."""

    def __init__(self, logs: Any) -> None:
        self.logs, self.done = logs, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.logs, name)

    def filter_log_events(self, **kwargs: Any) -> Any:
        if self.done:
            kwargs.pop("nextToken", None) if kwargs.get("nextToken") == "empty-page" else None
            return self.logs.filter_log_events(**kwargs)
        self.done = True
        return {"events": [], "nextToken": "empty-page"}


def test_paging_continues_after_an_empty_page(logs: Any, store: Store) -> None:
    """An empty page with a nextToken does not end the read."""
    rid, lines = invocation_lines(now_ms() - 60_000)
    put(logs, lines)
    counters = run(EmptyFirstPage(logs), store)
    assert counters.pages == 2 and stored(store) == {rid: True}


def test_paging_follows_next_token_over_many_pages(logs: Any, store: Store) -> None:
    """More records than one page holds are all read (moto pages at 10,000 records)."""
    base = now_ms() - 600_000
    records = []
    for i in range(2600):
        _, lines = invocation_lines(base + i * 50)
        records.extend(lines)
    for start in range(0, len(records), 5000):
        put(logs, records[start:start + 5000])
    counters = run(logs, store)
    assert counters.records_read == 10_400 and counters.pages >= 2
    assert len(stored(store)) == 2600


def test_checkpoint_keeps_only_ids_inside_the_window() -> None:
    """Pure: ids older than newest-minus-overlap are dropped from the checkpoint."""
    settings = LogsSettings(overlap_ms=1000)
    checkpoint = next_checkpoint(None, {"a": 0, "b": 5000, "c": 5500}, [], settings)
    assert checkpoint == GroupCheckpoint(4500, {"b": 5000, "c": 5500})


def test_collect_logs_command_reads_a_group(logs: Any, aws: Any, tmp_path: Path) -> None:
    """`eventscope collect logs` over the emulator stores the invocation and prints counters."""
    from click.testing import CliRunner

    from eventscope.cli import main

    rid, lines = invocation_lines(now_ms() - 60_000)
    put(logs, lines)
    db = f"sqlite:///{tmp_path / 's.db'}"
    result = CliRunner().invoke(main, ["collect", "logs", "--since", "1h", "--db", db,
                                       "--endpoint-url", aws.endpoint_url, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["invocations_stored"] == 1


def test_collect_logs_rejects_a_bad_since(aws: Any) -> None:
    """A malformed --since is one clear usage error."""
    from click.testing import CliRunner

    from eventscope.cli import main

    result = CliRunner().invoke(main, ["collect", "logs", "--since", "yesterday"])
    assert result.exit_code == 2 and "neither a duration" in result.output


def outcomes(store: Store) -> dict[str, tuple[str, str]]:
    with store.engine.connect() as conn:
        return {rid: (consumer, outcome) for rid, consumer, outcome in conn.execute(
            sa.select(invocations_table.c.request_id, invocations_table.c.consumer,
                      invocations_table.c.outcome))}


def test_invocations_of_events_the_tap_sampled_out_are_dropped_and_counted(
        logs: Any, store: Store) -> None:
    """At the store's 30 % rate an invocation is kept exactly when its event id is; one with
    no event id is always kept."""
    store.record_sample_rate(0.3)
    base = now_ms() - 600_000
    kept: set[str] = set()
    records: list[dict[str, Any]] = []
    for i in range(40):
        rid, lines = invocation_lines(base + i * 100)
        event_id = json.loads(lines[1]["message"])["correlation_id"]
        kept.update([rid] if keep(event_id, 0.3) else [])
        records += lines
    rid_plain, plain = invocation_lines(base + 5000)
    records += [plain[0], plain[2], plain[3]]  # no Powertools line: no event id
    put(logs, records)
    counters = run(logs, store)
    assert set(stored(store)) == kept | {rid_plain}
    assert counters.invocations_sampled_out == 40 - len(kept) > 0
    assert counters.invocations_stored == len(kept) + 1


def test_a_late_timeout_line_read_in_a_later_run_turns_the_invocation_into_a_timeout(
        logs: Any, store: Store) -> None:
    """Older runtimes write "Task timed out" after REPORT: read later, it updates the row."""
    start = now_ms() - 60_000
    rid, lines = invocation_lines(start)
    put(logs, lines)
    run(logs, store)
    assert outcomes(store)[rid][1] == "ok"
    late = {"timestamp": start + 31,
            "message": f"2025-06-02T10:15:03.000Z {rid} Task timed out after 3.00 seconds\n"}
    put(logs, [late])
    run(logs, store)
    assert outcomes(store) == {rid: ("warranty-consumer", "timeout")}


def test_functions_sharing_a_custom_log_group_keep_their_own_names(aws: Any,
                                                                    store: Store) -> None:
    """Lambda names a shared group's streams after the function: consumers do not merge."""
    logs, = clients(aws, "logs")
    group = "/shop/order-consumers"
    logs.create_log_group(logGroupName=group)
    base, expected = now_ms() - 60_000, {}
    for n, function in enumerate(("warranty-consumer", "invoice-mailer")):
        stream = f"2025/06/02/{function}[$LATEST]{uuid.uuid4().hex}"
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        rid, lines = invocation_lines(base + n * 1000)
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=lines)
        expected[rid] = (function, "ok")
    run(logs, store, log_groups=(group,))
    assert outcomes(store) == expected


def test_the_tap_handlers_rate_samples_the_invocations_collected_later(logs: Any,
                                                                       store: Store) -> None:
    """The Lambda tap handler records its rate; `collect logs` then keeps exactly the
    invocations whose events the handler stored: every stored event id has its event."""
    from eventscope.collectors.handler import handle

    base = now_ms() - 600_000
    bodies, records = [], []
    for i in range(30):
        _, lines = invocation_lines(base + i * 100)
        event_id = json.loads(lines[1]["message"])["correlation_id"]
        bodies.append({"version": "0", "id": event_id, "detail-type": "OrderCancelled",
                       "source": "shop.orders", "account": "123456789012",
                       "time": "2025-06-02T10:15:00Z", "region": "eu-west-1", "resources": [],
                       "detail": {"orderId": f"o-{i}"}})
        records += lines
    handle({"Records": [{"messageId": str(i), "body": json.dumps(body),
                         "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:tap"}
                        for i, body in enumerate(bodies)]}, None, store=store, sample_rate=0.4)
    assert store.sample_rate() == 0.4
    put(logs, records)
    counters = run(logs, store)
    with store.engine.connect() as conn:
        stored_events = set(conn.execute(sa.text("SELECT id FROM events")).scalars())
        handled = set(conn.execute(sa.text("SELECT event_id FROM invocations")).scalars())
    assert handled == stored_events and 0 < len(handled) < 30
    assert counters.invocations_sampled_out == 30 - len(handled)


def test_polling_fetches_each_record_about_once(logs: Any, tmp_path: Path) -> None:
    """Six passes over a group written to between them (an invocation every 200 ms, its
    records ingested within ~30 ms of their time): the window follows that lateness plus a
    50 ms margin, so a pass fetches about only the records it has not read (the issue's
    fixed 5-minute window fetched ~6 per new record; the same passes with a 5-minute
    margin, run alongside on another store, print their ratio for comparison)."""
    tight, wide = (open_store(f"sqlite:///{tmp_path / name}") for name in ("a.db", "b.db"))
    totals = {"tight": LogsCounters(), "wide": LogsCounters()}
    since = now_ms() - 60_000
    for _ in range(6):
        for _ in range(5):
            _, lines = invocation_lines(now_ms() - 30)
            put(logs, lines)
            time.sleep(0.2)
        for name, store, margin in (("tight", tight, 50), ("wide", wide, 300_000)):
            collect_logs(logs, store, LogsSettings(since_ms=since, overlap_ms=margin),
                         totals[name])
    ratios = {name: c.records_read / c.records_new for name, c in totals.items()}
    print(f"records fetched per new record: {ratios['tight']:.2f} with the window tied to "
          f"lateness, {ratios['wide']:.2f} with a 5-minute margin")
    assert totals["tight"].records_new == totals["wide"].records_new == 6 * 5 * 4
    assert ratios["tight"] < 1.3 and ratios["wide"] > 3
    assert len(stored(tight)) == 30


@settings(max_examples=80)
@given(stamps=st.dictionaries(st.text(min_size=1, max_size=8),
                              st.integers(0, 4_000_000_000_000), min_size=1, max_size=20),
       lateness=st.integers(0, 30 * 3600_000), ingested=st.integers(0, 4_000_000_000_000),
       margin=st.integers(0, 3600_000))
def test_the_window_is_the_observed_lateness_plus_the_margin(
        stamps: dict[str, int], lateness: int, ingested: int, margin: int) -> None:
    """Pure: resume = min(newest record, newest ingestion) - (lateness + margin), the window
    capped at MAX_OVERLAP_MS; every id at or after it is kept (a re-read skips it)."""
    checkpoint = next_checkpoint(None, stamps, [], LogsSettings(overlap_ms=margin),
                                 now_ms=ingested, lateness_ms=lateness, ingested_ms=ingested)
    assert checkpoint is not None
    newest = min(max(stamps.values()), ingested)
    assert checkpoint.resume_ms == newest - min(lateness + margin, MAX_OVERLAP_MS)
    assert checkpoint.seen == {k: v for k, v in stamps.items() if v >= checkpoint.resume_ms}
