"""The tap under SQS's own faults (issue 17, part 2): kill -9 at random points of a real
collector process while events flow, a crash before and after the commit, a partial delete,
an expired visibility timeout, duplicate deliveries and throttled deletes. Each case ends with
every event id stored exactly once and the dead-letter queue empty.

Faults inside one process are injected at botocore's `before-send` hook of a real client (the
answer SQS would give, handled by botocore's own retry logic); the kill -9 case kills real
`eventscope collect tap` processes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from botocore.awsrequest import AWSResponse

from eventscope.collectors.clients import client_config, make_client
from eventscope.collectors.tap_collector import (TapCounters, poll_once, process_batch,
                                                 receive_batch, run_tap)
from eventscope.store import Store, open_store
from tests.conftest_aws import aws, clients, moto_endpoint  # noqa: F401
from tests.faults.support import (BUS, assert_exactly_once, depth, envelope, install, send,
                                  stored_ids, tap_settings)

ROOT = Path(__file__).resolve().parents[2]


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_kwargs: Any) -> Any:
        yield self.data


def sqs_answer(request: Any, status: int, payload: dict[str, Any],
               error: str | None = None) -> AWSResponse:
    """An SQS JSON-protocol answer, as botocore would receive it over HTTP."""
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    if error:
        headers["x-amzn-query-error"] = f"{error};Sender"
    return AWSResponse(request.url, status, headers, _Body(json.dumps(payload).encode()))


# --- kill -9 at random points ------------------------------------------------------------

def start_collector(aws: Any, db_url: str, stderr: Any = subprocess.DEVNULL
                    ) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "eventscope", "collect", "tap", "--bus", BUS, "--wait", "1",
         "--batch-size", "10", "--db", db_url, "--region", aws.region,
         "--endpoint-url", aws.endpoint_url, "--json"],
        env=env, stdout=subprocess.DEVNULL, stderr=stderr)


def wait_for_handler(proc: subprocess.Popen[bytes], signum: int, timeout: float = 30) -> None:
    """Until the process catches `signum` (Linux: its /proc status's SigCgt mask), so a signal
    sent next reaches its handler, not Python's start-up (which dies of it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        status = Path(f"/proc/{proc.pid}/status").read_text()
        caught = int(next(line for line in status.splitlines()
                          if line.startswith("SigCgt:")).split()[1], 16)
        if caught & (1 << (signum - 1)):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {proc.pid} never caught signal {signum}")


def test_kill_9_at_random_points_while_events_flow_loses_and_duplicates_nothing(
        aws: Any, store_url: str, tmp_path: Path) -> None:
    """Events keep arriving while a real collector process is killed with SIGKILL at random
    moments (before its first commit, between commit and delete, mid-receive); a last
    collector drains the queue: every id stored exactly once, none in the DLQ."""
    seed = int(os.environ.get("FAULTS_SEED", random.randrange(2 ** 32)))
    rng = random.Random(seed)
    sqs, events = clients(aws, "sqs", "events")
    url, dlq = install(sqs, events, visibility=2)
    open_store(store_url).engine.dispose()  # the schema first: the processes race otherwise
    sent: list[str] = []
    flowing = threading.Event()

    def feed() -> None:  # 30 events every 0.2 s while the collectors come and go
        while not flowing.is_set() and len(sent) < 240:
            batch = [envelope() for _ in range(30)]
            send(sqs, url, batch)
            sent.extend(e["id"] for e in batch)
            time.sleep(0.2)

    feeder = threading.Thread(target=feed)
    feeder.start()
    kills = []
    try:
        for _ in range(3):
            proc = start_collector(aws, store_url)
            delay = rng.uniform(0.5, 2.0)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills.append(round(delay, 2))
    finally:
        flowing.set()
        feeder.join()
    log = (tmp_path / "last.err").open("wb")
    last = start_collector(aws, store_url, log)
    store = open_store(store_url)
    deadline = time.monotonic() + 60
    while len(stored_ids(store)) < len(sent) or depth(sqs, url):
        assert time.monotonic() < deadline, f"not drained (seed {seed}, kills at {kills})"
        time.sleep(0.2)
    wait_for_handler(last, signal.SIGTERM)  # drained before it started: stop it cleanly
    last.send_signal(signal.SIGTERM)
    last.wait(timeout=30)
    log.close()
    assert last.returncode == 0, (tmp_path / "last.err").read_text()[-2000:]
    assert_exactly_once(store, sent)
    assert depth(sqs, dlq) == 0, f"seed {seed}"


# --- crash before and after the commit -----------------------------------------------------

def test_a_crash_before_the_commit_leaves_every_message_to_come_back(
        aws: Any, store: Store) -> None:
    """Killed before commit: nothing stored, nothing deleted; the next run stores all once."""
    sqs, events = clients(aws, "sqs", "events")
    url, dlq = install(sqs, events, visibility=1)
    sent = [envelope() for _ in range(20)]
    send(sqs, url, sent)
    settings = tap_settings(url, batch_size=20)

    def die(_conn: Any) -> None:  # the rows are inserted; the process dies before COMMIT
        raise SystemExit("killed before commit")

    sa.event.listen(store.engine, "commit", die)
    try:
        with pytest.raises(SystemExit):
            poll_once(sqs, store, settings, TapCounters())
    finally:
        sa.event.remove(store.engine, "commit", die)
    assert not stored_ids(store) and depth(sqs, url) == 20
    time.sleep(1.1)  # the visibility timeout of the dead collector's batch
    run_tap(sqs, store, settings, TapCounters(), threading.Event(), until_empty=True)
    assert_exactly_once(store, [e["id"] for e in sent])
    assert depth(sqs, url) == 0 and depth(sqs, dlq) == 0


def test_a_crash_after_the_commit_before_the_delete_stores_nothing_twice(
        aws: Any, store: Store) -> None:
    """Killed between commit and delete: the batch is redelivered and found stored already."""
    sqs, events = clients(aws, "sqs", "events")
    url, dlq = install(sqs, events, visibility=1)
    sent = [envelope() for _ in range(20)]
    send(sqs, url, sent)

    def die(**_kwargs: Any) -> None:
        raise SystemExit("killed after commit")

    sqs.meta.events.register("before-send.sqs.DeleteMessageBatch", die)
    with pytest.raises(SystemExit):
        poll_once(sqs, store, tap_settings(url, batch_size=20), TapCounters())
    sqs.meta.events.unregister("before-send.sqs.DeleteMessageBatch", die)
    assert len(stored_ids(store)) == 20 and depth(sqs, url) == 20
    time.sleep(1.1)
    counters = TapCounters()
    run_tap(sqs, store, tap_settings(url, batch_size=20), counters, threading.Event(),
            until_empty=True)
    assert (counters.stored, counters.duplicates) == (0, 20)
    assert_exactly_once(store, [e["id"] for e in sent])
    assert depth(sqs, url) == 0 and depth(sqs, dlq) == 0


# --- partial delete, visibility expiry, duplicates, throttling -----------------------------

def test_a_partial_delete_redelivers_only_the_undeleted_and_stores_them_once(
        aws: Any, store: Store) -> None:
    """DeleteMessageBatch keeps failing for 3 of 10 entries: those are counted, come back
    after the visibility timeout and are found stored; the others are gone."""
    sqs, events = clients(aws, "sqs", "events")
    plain, = clients(aws, "sqs")
    url, dlq = install(sqs, events, visibility=1)
    sent = [envelope() for _ in range(10)]
    send(sqs, url, sent)
    doomed = {"0", "4", "9"}

    def partial(request: Any, **_kwargs: Any) -> AWSResponse:
        entries = json.loads(request.body)["Entries"]
        keep = [e for e in entries if e["Id"] not in doomed]
        if keep:
            plain.delete_message_batch(QueueUrl=url, Entries=keep)
        return sqs_answer(request, 200, {
            "Successful": [{"Id": e["Id"]} for e in keep],
            "Failed": [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError",
                        "Message": "injected"} for e in entries if e["Id"] in doomed]})

    sqs.meta.events.register("before-send.sqs.DeleteMessageBatch", partial)
    counters = TapCounters()
    poll_once(sqs, store, tap_settings(url, batch_size=10), counters)
    sqs.meta.events.unregister("before-send.sqs.DeleteMessageBatch", partial)
    assert counters.delete_failures == 3 and depth(sqs, url) == 3
    time.sleep(1.1)
    again = TapCounters()
    run_tap(sqs, store, tap_settings(url), again, threading.Event(), until_empty=True)
    assert (again.received, again.duplicates) == (3, 3)
    assert_exactly_once(store, [e["id"] for e in sent])
    assert depth(sqs, url) == 0 and depth(sqs, dlq) == 0


def test_a_batch_whose_visibility_expired_is_stored_once_by_two_collectors(
        aws: Any, store: Store) -> None:
    """A slow collector's batch becomes visible again and a second collector stores it; the
    slow one's late write finds every event stored (duplicates, not new rows)."""
    sqs, events = clients(aws, "sqs", "events")
    url, dlq = install(sqs, events, visibility=1)
    sent = [envelope() for _ in range(10)]
    send(sqs, url, sent)
    slow_settings = tap_settings(url, batch_size=10, visibility_seconds=3600)
    slow_batch = receive_batch(sqs, slow_settings)
    time.sleep(1.2)  # longer than the queue's visibility timeout
    fast = TapCounters()
    run_tap(sqs, store, tap_settings(url), fast, threading.Event(), until_empty=True)
    slow = TapCounters()
    process_batch(sqs, store, slow_batch, slow_settings, slow)
    assert fast.stored == 10 and (slow.stored, slow.duplicates) == (0, 10)
    assert_exactly_once(store, [e["id"] for e in sent])
    assert depth(sqs, url) == 0 and depth(sqs, dlq) == 0


def test_duplicate_deliveries_in_and_across_batches_are_stored_once(
        aws: Any, store: Store) -> None:
    """EventBridge delivers at least once: the same event twice in one batch and again in a
    later one is one row, the repeats counted as duplicates."""
    sqs, events = clients(aws, "sqs", "events")
    url, dlq = install(sqs, events)
    sent = [envelope() for _ in range(5)]
    send(sqs, url, sent + sent[:2])
    counters = TapCounters()
    run_tap(sqs, store, tap_settings(url, batch_size=10), counters, threading.Event(),
            until_empty=True)
    send(sqs, url, sent[2:])
    run_tap(sqs, store, tap_settings(url, batch_size=10), counters, threading.Event(),
            until_empty=True)
    assert counters.received == 10 and counters.stored == 5
    assert_exactly_once(store, [e["id"] for e in sent])
    assert depth(sqs, url) == 0 and depth(sqs, dlq) == 0


def test_deletes_throttled_past_the_retry_budget_lose_and_duplicate_nothing(
        aws: Any, store: Store) -> None:
    """Every DeleteMessageBatch attempt throttled (past botocore's retries) for a while: the
    loop counts an AWS error and goes on; the batch comes back and is found stored."""
    _, events = clients(aws, "sqs", "events")
    sqs = make_client("sqs", aws, client_config(max_attempts=2))
    url, dlq = install(sqs, events, visibility=1)
    sent = [envelope() for _ in range(10)]
    send(sqs, url, sent)
    throttled = [0]

    def throttle(request: Any, **_kwargs: Any) -> AWSResponse | None:
        if throttled[0] >= 2:
            return None
        throttled[0] += 1
        return sqs_answer(request, 400, {"__type": "com.amazonaws.sqs#ThrottlingException",
                                         "message": "Rate exceeded"}, "ThrottlingException")

    sqs.meta.events.register("before-send.sqs.DeleteMessageBatch", throttle)
    counters = TapCounters()
    run_tap(sqs, store, tap_settings(url), counters, threading.Event(), until_empty=True,
            error_pause=1.1)  # the pause outlasts the visibility: the batch comes back
    assert counters.aws_errors == 1 and throttled[0] == 2
    assert_exactly_once(store, [e["id"] for e in sent])
    assert depth(sqs, url) == 0 and depth(sqs, dlq) == 0
