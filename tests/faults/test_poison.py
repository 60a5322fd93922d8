"""Poison inputs on every write path (issue 17, part 1): a NUL, a lone surrogate or an
integer beyond 64 bits never takes a batch down, on SQLite and PostgreSQL. Text is stored
escaped (``\\u0000``), a value no escape can keep is quarantined with its reason, and the rest
of the batch is stored and acknowledged."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st

from eventscope.collectors.handler import handle
from eventscope.collectors.logs_collector import LogsCounters, LogsSettings, collect_logs
from eventscope.collectors.service import Loop, run_loop, run_service
from eventscope.collectors.tap_collector import TapCounters, run_tap
from eventscope.ingest import ingest_paths
from eventscope.poison import escape_text
from eventscope.records import BusEvent, Invocation
from eventscope.store import Store, collector_status, events as events_table, invocations
from tests.conftest_aws import aws, clients, moto_endpoint  # noqa: F401
from tests.faults.support import (assert_exactly_once, depth, envelope, install, quarantined,
                                  send, tap_settings)

NUL_ID = "evt-\x00-1"


def poisoned_envelopes() -> list[dict[str, Any]]:
    """The issue's case: NUL in the id, the source, the detail-type and the order id."""
    return [envelope(NUL_ID), envelope(source="com.shop\x00orders"),
            envelope(detail_type="Order\x00Placed"), envelope(order_id="ord-\x00-9")]


def test_store_escapes_nul_and_lone_surrogates_and_quarantines_64_bit_overflow(
        store: Store) -> None:
    """One batch holding every poison kind: the escapable rows are stored escaped, the
    overflowing one is quarantined with its reason, the clean row is stored as given."""
    rows = [BusEvent("clean", "s", "d", 1, "{}", 2),
            BusEvent("nul\x00id", "s\x00", "d", 1, "{}", 2, correlation_key="k\x00"),
            BusEvent("surrogate\udc80", "s", "d\ud800", 1, "{}", 2),
            BusEvent("too-big", "s", "d", 2 ** 70, "{}", 2)]
    written = store.write_batch(rows)
    assert (written.events, written.quarantined) == (3, 1)
    with store.engine.connect() as conn:
        got = dict(conn.execute(sa.select(events_table.c.id, events_table.c.source)).all())
    assert got == {"clean": "s", "nul\\u0000id": "s\\u0000", "surrogate\\udc80": "s"}
    assert quarantined(store) == [{"origin": "store", "position": "event too-big",
                                   "reason": "value_out_of_range"}]


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(codec=None, categories=None), max_size=30))
def test_any_text_is_storable_and_reads_back_as_its_escape(store: Store, text: str) -> None:
    """Whatever the text (NUL, surrogates, any code point), the row is stored and reads back
    as `escape_text` of it; clean text reads back unchanged."""
    event_id = f"{uuid.uuid4()}{text}"
    assert store.write_batch([BusEvent(event_id, text, "d", 1, "{}", 2)]).events == 1
    with store.engine.connect() as conn:
        source = conn.execute(sa.select(events_table.c.source).where(
            events_table.c.id == escape_text(event_id))).scalar_one()
    assert source == escape_text(text)
    if "\x00" not in text and text == text.encode("utf-8", "replace").decode():
        assert source == text


def test_a_row_the_engine_refuses_is_quarantined_the_others_and_checkpoint_commit(
        store: Store) -> None:
    """An invocation the engine refuses (NOT NULL) does not hold back its 50 neighbours nor
    the checkpoint written with them."""
    good = [Invocation(f"r{i}", "fn", "/aws/lambda/fn", "s", 1000 + i, "ok", complete=True)
            for i in range(50)]
    bad = Invocation("bad", None, "/aws/lambda/fn", "s", 5, "ok")  # type: ignore[arg-type]
    written = store.write_batch((), [*good[:25], bad, *good[25:]],
                                checkpoints_={("logs", "/aws/lambda/fn"): "42"})
    assert (written.invocations, written.quarantined) == (50, 1)
    assert store.checkpoint("logs", "/aws/lambda/fn") == "42"
    assert [q["reason"] for q in quarantined(store)] == ["store_rejected"]


def test_tap_stores_a_poisoned_batch_and_deletes_every_message(aws: Any, store: Store) -> None:
    """Poisoned and clean envelopes in one SQS batch: all stored once, the queue drained,
    nothing in the dead-letter queue."""
    sqs, events = clients(aws, "sqs", "events")
    url, dlq = install(sqs, events)
    clean = [envelope() for _ in range(6)]
    poisoned = poisoned_envelopes()
    send(sqs, url, poisoned + clean)
    counters = TapCounters()
    run_tap(sqs, store, tap_settings(url, batch_size=20), counters, threading.Event(),
            until_empty=True, error_pause=0)
    assert counters.store_failures == 0 and counters.stored == 10
    assert_exactly_once(store, [escape_text(e["id"]) for e in poisoned + clean])
    assert depth(sqs, url) == 0 and depth(sqs, dlq) == 0


def test_lambda_handler_stores_a_poisoned_batch_without_item_failures(store: Store) -> None:
    """The SQS event-source mapping's batch with NULs: no batchItemFailures, all stored."""
    bodies = poisoned_envelopes() + [envelope()]
    event = {"Records": [{"messageId": str(i), "body": json.dumps(b),
                          "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:tap"}
                         for i, b in enumerate(bodies)]}
    assert handle(event, None, store=store, sample_rate=1.0) == {"batchItemFailures": []}
    assert_exactly_once(store, [escape_text(b["id"]) for b in bodies])


def test_ingest_stores_2001_lines_when_one_holds_a_nul(store: Store, tmp_path: Path) -> None:
    """The issue's measured case: 0 of 2,001 stored; now 2,001 of 2,001."""
    lines = [envelope() for _ in range(2000)] + [envelope(NUL_ID)]
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in lines) + b"\n")
    ingest_paths(store, [str(path)], workers=0)
    assert_exactly_once(store, [escape_text(e["id"]) for e in lines])


def test_logs_collector_stores_an_invocation_whose_lines_hold_nul(aws: Any, store: Store) -> None:
    """A consumer's error message with a NUL: the invocation is stored, its message escaped."""
    logs, = clients(aws, "logs")
    group, stream = "/aws/lambda/poisoned", "2026/11/30/[$LATEST]0123456789abcdef"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    start = int(time.time() * 1000) - 60_000
    rid = str(uuid.uuid4())
    lines = [f"START RequestId: {rid} Version: $LATEST",
             f"{time.strftime('%Y-%m-%dT%H:%M:%S.000Z')}\t{rid}\tERROR\tbad byte \x00 here",
             f"END RequestId: {rid}",
             f"REPORT RequestId: {rid}\tDuration: 5.00 ms\tBilled Duration: 5 ms\t"
             "Memory Size: 128 MB\tMax Memory Used: 60 MB"]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": start + i, "message": line} for i, line in enumerate(lines)])
    collect_logs(logs, store, LogsSettings(log_groups=(group,), since_ms=start - 1000),
                 LogsCounters())
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(invocations.c.request_id)).scalars().all() == [rid]


def test_a_loop_whose_step_raises_anything_is_failing_then_recovers() -> None:
    """An unexpected exception (a bug, a poison value) makes the loop `failing`, counts a
    restart, and the loop goes on; the next good step makes it `running` again."""
    seen: list[str] = []
    stop = threading.Event()
    loop = Loop("tap", lambda: None, TapCounters())

    def step() -> None:
        seen.append(loop.state)
        if len(seen) == 1:
            raise KeyError("orderId")
        if len(seen) == 3:
            stop.set()

    loop.step = step
    run_loop(loop, stop, error_pause=0)
    assert seen == ["running", "failing", "running"]
    assert (loop.errors, loop.restarts) == (1, 1)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_loop_thread_is_reported_failing_and_restarted(store: Store) -> None:
    """A step that ends its thread (SystemExit escapes `run_loop`): the heartbeat line and
    `collector_status` say `failing`, the loop is started again and runs."""
    calls: list[int] = []
    stop, failing_read = threading.Event(), threading.Event()

    def step() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise SystemExit  # ends the thread, as an uncatchable error would
        if len(calls) == 2:
            # the restarted step lasts until a heartbeat has read `failing` back from the
            # store (a fixed sleep lost that race on a loaded machine); bounded, so a state
            # never stored fails the assertion below instead of hanging
            failing_read.wait(10)
        if len(calls) >= 3:
            stop.set()

    loop = Loop("tap", step, TapCounters())
    lines: list[str] = []
    stored_states: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        with store.engine.connect() as conn:
            stored_states.extend(conn.execute(sa.select(collector_status.c.state)).scalars())
        if "failing" in stored_states:
            failing_read.set()

    run_service([loop], store, stop, heartbeat_seconds=0.05, echo=echo)
    assert len(calls) >= 3 and loop.restarts == 1
    assert any("tap[failing]" in line for line in lines)
    assert "failing" in stored_states
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(collector_status)).mappings().one()
    assert orjson.loads(row["counters"])["restarts"] == 1


def test_a_loop_failing_when_stopped_stays_failing_for_the_exit_code() -> None:
    """Stopped while its last step failed: the state stays `failing`, which `collect all`
    turns into exit 1 (`failing_loops`); a loop that recovered ends `stopped`."""
    from eventscope.collectors.service import failing_loops
    from eventscope.errors import StoreError

    stop = threading.Event()

    def broken() -> None:
        stop.set()
        raise StoreError("cannot write to store: disk full")

    loops = [Loop("tap", broken, TapCounters()), Loop("rules", lambda: None, TapCounters())]
    run_loop(loops[0], stop, error_pause=0)
    run_loop(loops[1], stop, error_pause=0)  # stop is set: it ends without a step
    assert (loops[0].state, loops[1].state) == ("failing", "stopped")
    assert failing_loops(loops) == ["tap"]
