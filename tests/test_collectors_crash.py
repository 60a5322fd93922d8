"""Fault tests with real collector processes: kill -9 mid-run, SIGTERM, two collectors on PG."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from eventscope.collectors.tap import install_tap
from tests.conftest_aws import aws, clients, moto_endpoint, put_events  # noqa: F401

BUS = "shop-bus"
ROOT = Path(__file__).resolve().parent.parent
ENTRIES = json.loads((ROOT / "tests/data/collectors/put_events_entries.json").read_text())


def start_collector(aws: Any, db_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "eventscope", "collect", "tap", "--bus", BUS, "--wait", "1",
         "--batch-size", "10", "--db", db_url, "--region", aws.region,
         "--endpoint-url", aws.endpoint_url, "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def event_count(db_url: str) -> int:
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("select count(*) from events")).scalar() or 0)
    except sa.exc.OperationalError:
        return 0  # the collector has not created the schema yet
    except sa.exc.ProgrammingError:
        return 0
    finally:
        engine.dispose()


def wait_for(condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def queue_empty(sqs: Any, url: str) -> bool:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return attributes["ApproximateNumberOfMessages"] == "0" == attributes[
        "ApproximateNumberOfMessagesNotVisible"]


@pytest.fixture
def tap_queue(aws: Any) -> tuple[Any, str]:
    sqs, events = clients(aws, "sqs", "events")
    events.create_event_bus(Name=BUS)
    url = install_tap(sqs, events, BUS).queue_url
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "2"})
    put_events(events, BUS, ENTRIES * 3)  # 120 events: each entry put three times, new ids
    return sqs, url


def test_kill_9_mid_run_then_restart_stores_every_event_once(
        aws: Any, tap_queue: Any, store_url: str) -> None:
    """SIGKILL after some batches: a restarted collector ends with all 120 events, once each."""
    sqs, url = tap_queue
    first = start_collector(aws, store_url)
    wait_for(lambda: event_count(store_url) >= 30)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert event_count(store_url) < 120
    second = start_collector(aws, store_url)
    wait_for(lambda: event_count(store_url) == 120 and queue_empty(sqs, url))
    second.send_signal(signal.SIGTERM)
    out, err = second.communicate(timeout=30)
    assert second.returncode == 0, err.decode()
    assert event_count(store_url) == 120


def test_two_collectors_on_one_queue_store_each_event_once(
        aws: Any, tap_queue: Any, store_url: str) -> None:
    """Two processes sharing the tap queue and the store: 120 events stored, none twice."""
    if not store_url.startswith("postgresql"):
        pytest.skip("several collectors share a PostgreSQL store")
    sqs, url = tap_queue
    procs = [start_collector(aws, store_url) for _ in range(2)]
    wait_for(lambda: event_count(store_url) == 120 and queue_empty(sqs, url))
    totals = []
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()
        totals.append(json.loads(out))
    assert sum(t["stored"] for t in totals) == 120
    assert all(t["received"] > 0 for t in totals)
