"""`collect all` as a real process over moto, its loops' error handling, and the Lambda handler."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from hypothesis import given, settings, strategies as st

from eventscope.collectors import lambda_handler
from eventscope.collectors.handler import handle
from eventscope.collectors.service import Loop, run_loop, wait_in_slices
from eventscope.collectors.tap import install_tap
from eventscope.collectors.tap_collector import TapCounters
from eventscope.errors import StoreError
from eventscope.store import Store
from tests.conftest_aws import aws, clients, make_bus_queue, moto_endpoint, put_events  # noqa: F401
from tests.signals import linux_only, signal_another_thread

ROOT = Path(__file__).resolve().parent.parent
ENTRIES = json.loads((ROOT / "tests/data/collectors/put_events_entries.json").read_text())
LINES = json.loads((ROOT / "tests/data/collectors/lambda_invocation_text.json").read_text())
BUS = "shop-bus"
GROUP = "/aws/lambda/warranty-consumer"


def scalar(db_url: str, sql: str) -> Any:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    except sa.exc.OperationalError:
        return None
    finally:
        engine.dispose()


@linux_only
def test_collect_all_runs_every_source_and_stops_cleanly_on_sigterm(
        aws: Any, tmp_path: Path) -> None:
    """Tap, logs and rules all land in the store; SIGTERM ends with exit 0 and 'stopped' rows.

    The SIGTERM goes to one of the loops' threads, as the kernel may deliver it, and the
    heartbeat is longer than the test waits: the service once noticed such a signal only at
    its next heartbeat."""
    sqs, events, logs = clients(aws, "sqs", "events", "logs")
    make_bus_queue(events, sqs, BUS, "warranty", "warranty-orders", {"source": ["com.shop.orders"]})
    install_tap(sqs, events, BUS)
    put_events(events, BUS, ENTRIES[:12])
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="s")
    rid, start = str(uuid.uuid4()), int(time.time() * 1000) - 30_000
    logs.put_log_events(logGroupName=GROUP, logStreamName="s", logEvents=[
        {"timestamp": start + i, "message": line.replace("{rid}", rid).replace("{event_id}", "e")}
        for i, line in enumerate(LINES)])
    db = f"sqlite:///{tmp_path / 'all.db'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "eventscope", "collect", "all", "--bus", BUS, "--wait", "1",
         "--heartbeat", "120s", "--logs-every", "1s", "--rules-every", "1s", "--db", db,
         "--endpoint-url", aws.endpoint_url, "--region", aws.region],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (scalar(db, "select count(*) from events") == 12
               and scalar(db, "select count(*) from invocations") == 1
               and scalar(db, "select count(*) from rule_snapshots")):
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.2)
    signal_another_thread(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert "heartbeat" in out.decode() and "stored=12" in out.decode()
    states = scalar(db, "select group_concat(distinct state) from collector_status")
    assert states == "stopped"


def test_a_failing_step_is_counted_and_retried_not_fatal() -> None:
    """A loop whose step fails twice keeps running, counts the errors and recovers."""
    calls, stop = [], threading.Event()

    def step() -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise StoreError("cannot write to store: database is locked")
        stop.set()

    loop = Loop("tap", step, TapCounters())
    run_loop(loop, stop, error_pause=0)
    assert (loop.errors, len(calls), loop.state) == (2, 3, "stopped")
    assert loop.last_error == "cannot write to store: database is locked"


def sqs_event(sqs: Any, url: str) -> dict[str, Any]:
    """The event an SQS event-source mapping hands Lambda, built from real received messages."""
    messages = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        messages.extend(got)
    arn = sqs.get_queue_attributes(QueueUrl=url,
                                   AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
                         "body": m["Body"], "attributes": {}, "messageAttributes": {},
                         "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
                         "eventSourceARN": arn, "awsRegion": "us-east-1"} for m in messages]}


def test_lambda_handler_stores_the_batch(aws: Any, store: Store) -> None:
    """A batch from the tap queue is stored and no item is reported as failed."""
    sqs, events = clients(aws, "sqs", "events")
    events.create_event_bus(Name=BUS)
    url = install_tap(sqs, events, BUS).queue_url
    put_events(events, BUS, ENTRIES[:8])
    assert handle(sqs_event(sqs, url), None, store=store) == {"batchItemFailures": []}
    assert store.counts()["events"] == 8


class DownStore:
    """A store whose server is unreachable: every call fails as the real one does."""

    def write_batch(self, *args: Any, **kwargs: Any) -> Any:
        raise StoreError("cannot write to store: connection refused")

    def pii_key(self) -> bytes:
        raise StoreError("cannot read store: connection refused")


def test_lambda_handler_reports_every_message_when_the_store_is_down(aws: Any) -> None:
    """With the store unreachable every message id comes back in batchItemFailures."""
    sqs, events = clients(aws, "sqs", "events")
    events.create_event_bus(Name=BUS)
    url = install_tap(sqs, events, BUS).queue_url
    put_events(events, BUS, ENTRIES[:3])
    event = sqs_event(sqs, url)
    result = handle(event, None, store=DownStore())  # type: ignore[arg-type]
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(
        r["messageId"] for r in event["Records"])


def test_lambda_handler_entry_point_reads_the_store_url_from_the_environment(
        aws: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """`eventscope.collectors.lambda_handler` opens $EVENTSCOPE_DB and stores the batch there."""
    import eventscope.collectors.handler

    sqs, events = clients(aws, "sqs", "events")
    events.create_event_bus(Name=BUS)
    url = install_tap(sqs, events, BUS).queue_url
    put_events(events, BUS, ENTRIES[:2])
    db = f"sqlite:///{tmp_path / 'lambda.db'}"
    monkeypatch.setenv("EVENTSCOPE_DB", db)
    monkeypatch.setattr(eventscope.collectors.handler, "_STORE", None)
    assert lambda_handler(sqs_event(sqs, url), None) == {"batchItemFailures": []}
    assert scalar(db, "select count(*) from events") == 2


@settings(max_examples=25, deadline=None)
@given(timeout=st.one_of(st.none(), st.floats(-1.0, 0.05)), already_set=st.booleans())
def test_wait_in_slices_answers_like_event_wait(timeout: float | None,
                                                already_set: bool) -> None:
    """`wait_in_slices` is `Event.wait` cut into slices: True at once when stop is set (any
    timeout, none included), False once a timeout passed without it, never earlier."""
    stop = threading.Event()
    if already_set:
        stop.set()
    elif timeout is None:  # with no timeout it returns only when stop is set
        threading.Timer(0.05, stop.set).start()
    began = time.monotonic()
    answer = wait_in_slices(stop, timeout)
    assert answer == (already_set or timeout is None)
    if not answer:
        assert time.monotonic() - began >= (timeout or 0.0)
