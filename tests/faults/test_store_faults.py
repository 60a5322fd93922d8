"""The store failing under the tap (issue 17, part 2): down, full, and read at length while
written. Every case ends with each event stored exactly once and the dead-letter queue
empty: while the store fails the tap stops receiving and backs off, so messages wait in the
queue instead of spending their receive count.

Disk full is simulated honestly but not physically: SQLite's `max_page_count` caps the file
(SQLite then fails the write with SQLITE_FULL, "database or disk is full", the same error a
full disk gives); this machine lets tests mount no tmpfs.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from eventscope.collectors.backoff import MAX_PAUSE_SECONDS, Backoff
from eventscope.collectors.tap import MAX_RECEIVE_COUNT
from eventscope.collectors.tap_collector import TapCounters, run_tap
from eventscope.store import Store, create_engine, open_store
from tests.conftest_aws import aws, clients, moto_endpoint  # noqa: F401
from tests.faults.support import (assert_exactly_once, depth, envelope, install, send,
                                  tap_settings)


def run_for(seconds: float, target: Any, *args: Any, **kwargs: Any) -> None:
    """Run a tap loop in a thread for `seconds`, then stop it and wait for its batch."""
    stop = threading.Event()
    thread = threading.Thread(target=target, args=(*args, stop), kwargs=kwargs)
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()


def receive_counts(sqs: Any, url: str) -> list[int]:
    """How many times each waiting message had been received before this look (which
    receives each once, hidden, then makes them all visible again)."""
    found: list[dict[str, Any]] = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30,
                                     AttributeNames=["ApproximateReceiveCount"]).get(
                                         "Messages", []):
        found.extend(got)
    for start in range(0, len(found), 10):
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(found[start:start + 10])])
    return [int(m["Attributes"]["ApproximateReceiveCount"]) - 1 for m in found]


def test_the_redrive_limit_outlasts_a_day_of_backed_off_retries(aws: Any) -> None:
    """`tap install` sets SQS's maximum redrive limit, above one receive per longest pause
    for a whole day."""
    sqs, events = clients(aws, "sqs", "events")
    url, _ = install(sqs, events)
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "RedrivePolicy"])["Attributes"]["RedrivePolicy"])
    assert int(policy["maxReceiveCount"]) == MAX_RECEIVE_COUNT == 1000
    assert 86_400 / MAX_PAUSE_SECONDS < MAX_RECEIVE_COUNT
    pauses = Backoff(first=1.0)
    assert [pauses.next_pause() for _ in range(9)] == [1, 2, 4, 8, 16, 32, 64, 120, 120]


def test_store_down_backs_off_then_stores_everything_once(aws: Any, store_url: str) -> None:
    """PostgreSQL/SQLite unreachable: the tap pauses between attempts (few receives, none
    deleted, nothing in the DLQ); once the store is back every event is stored once."""
    sqs, events = clients(aws, "sqs", "events")
    url, dlq = install(sqs, events)
    sent = [envelope() for _ in range(30)]
    send(sqs, url, sent)
    down = Store(create_engine("postgresql://nobody@127.0.0.1:1/none" if "postgresql" in
                               store_url else "sqlite:////nonexistent-dir/x/store.db"))
    counters = TapCounters()
    settings = tap_settings(url, batch_size=10)
    run_for(1.6, run_tap, sqs, down, settings, counters, error_pause=0.2, max_pause=0.4)
    # 0.2 + 0.4 + 0.4 + 0.4 s of pauses: at most five attempts (without back-off: dozens)
    assert 1 <= counters.store_failures <= 5 and counters.stored == 0
    assert depth(sqs, url) == 30 and depth(sqs, dlq) == 0
    assert max(receive_counts(sqs, url)) <= 5
    store = open_store(store_url)
    run_tap(sqs, store, settings, TapCounters(), threading.Event(), until_empty=True)
    assert_exactly_once(store, [e["id"] for e in sent])
    assert depth(sqs, url) == 0 and depth(sqs, dlq) == 0


def full_store(path: Path, spare_pages: int) -> Store:
    """A SQLite store whose file may grow by only `spare_pages` pages."""
    url = f"sqlite:///{path}"
    with open_store(url).engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
    engine = create_engine(url)

    @sa.event.listens_for(engine, "connect")
    def _cap(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count={pages + spare_pages}")

    return Store(engine)


def test_disk_full_loses_nothing_once_space_returns(aws: Any, tmp_path: Path) -> None:
    """The store fills up mid-run: what fit is stored, the rest waits in the queue (none in
    the DLQ); after space returns every event is stored exactly once."""
    sqs, events = clients(aws, "sqs", "events")
    url, dlq = install(sqs, events)
    sent = [envelope(note="x" * 2000) for _ in range(80)]  # ~170 KB: more than 3 pages
    send(sqs, url, sent)
    path = tmp_path / "store.db"
    full, counters = full_store(path, spare_pages=3), TapCounters()
    settings = tap_settings(url, batch_size=10)
    run_for(1.5, run_tap, sqs, full, settings, counters, error_pause=0.2, max_pause=0.4)
    assert counters.store_failures >= 1 and counters.stored < 80
    assert depth(sqs, dlq) == 0
    full.engine.dispose()
    store = open_store(f"sqlite:///{path}")  # space back: no cap
    run_tap(sqs, store, settings, TapCounters(), threading.Event(), until_empty=True)
    assert_exactly_once(store, [e["id"] for e in sent])
    assert depth(sqs, url) == 0 and depth(sqs, dlq) == 0


def test_a_long_read_during_writes_blocks_no_batch(aws: Any, store: Store) -> None:
    """A reader holds one transaction open (a dashboard's long query) while the tap writes
    ten batches: every write commits, the reader's snapshot stays as it began, and every
    event is stored once."""
    sqs, events = clients(aws, "sqs", "events")
    url, dlq = install(sqs, events)
    first = [envelope() for _ in range(5)]
    send(sqs, url, first)
    settings = tap_settings(url, batch_size=10)
    run_tap(sqs, store, settings, TapCounters(), threading.Event(), until_empty=True)
    later = [envelope() for _ in range(100)]
    send(sqs, url, later)
    reader = store.engine.raw_connection()  # the driver's own: its transaction is explicit
    try:
        cursor = reader.cursor()
        cursor.execute("BEGIN" if store.engine.dialect.name == "sqlite"
                       else "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SELECT count(*) FROM events")
        before = cursor.fetchone()[0]
        counters = TapCounters()
        run_tap(sqs, store, settings, counters, threading.Event(), until_empty=True)
        cursor.execute("SELECT count(*) FROM events")
        during = cursor.fetchone()[0]
    finally:
        reader.rollback()
        reader.close()
    assert counters.store_failures == 0 and counters.stored == 100
    assert before == during == 5
    assert_exactly_once(store, [e["id"] for e in first + later])
    assert depth(sqs, dlq) == 0
