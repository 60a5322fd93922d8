"""The tap's dead-letter queue is no silent sink (issue 17, part 2): its depth and age are
sampled into the store, read through the findings layer (the read model a dashboard tile
shows), alerted by `check`, and `eventscope tap redrive` moves its messages back, where the
tap stores each event once, however many times it is redriven (replayed).

Messages reach the DLQ the way SQS sends them: the queue's redrive limit is lowered to 1 and
each message is received twice without being deleted, so moto moves it.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from eventscope.cli import main
from eventscope.collectors.tap_collector import TapCounters, run_tap
from eventscope.findings import read
from eventscope.store import Store
from tests.conftest_aws import aws, clients, moto_endpoint  # noqa: F401
from tests.faults.support import (BUS, assert_exactly_once, depth, envelope, install, send,
                                  tap_settings)


def dead_letter(sqs: Any, url: str, dlq: str, count: int) -> list[str]:
    """`count` events sent, received past a redrive limit of 1: SQS moves them to the DLQ."""
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    original = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])[
        "Attributes"]["RedrivePolicy"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"})})
    sent = [envelope() for _ in range(count)]
    send(sqs, url, sent)
    for _ in range(2 * count):
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        if depth(sqs, dlq) == count:
            break
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": original})
    assert depth(sqs, dlq) == count and depth(sqs, url) == 0
    return [e["id"] for e in sent]


def cli(aws: Any, *args: str) -> Any:
    return CliRunner().invoke(main, [*args, "--endpoint-url", aws.endpoint_url,
                                     "--region", aws.region])


def test_dlq_depth_and_age_reach_the_read_model_and_check(aws: Any, store: Store,
                                                          store_url: str,
                                                          tmp_path: Path) -> None:
    """Seven dead letters: the tap samples them, `read.dead_letters` shows 7 and their age,
    `check` reports a `dead_letters` warning (exit 0 by default, exit 1 when the
    thresholds make 5 an error)."""
    sqs, events = clients(aws, "sqs", "events")
    url, dlq = install(sqs, events)
    dead_letter(sqs, url, dlq, 7)
    time.sleep(1.0)  # an age of at least a second
    run_tap(sqs, store, tap_settings(url, dlq), TapCounters(), threading.Event(),
            until_empty=True)
    shown, = read.dead_letters(store.engine)
    assert (shown["queue"], shown["source_queue"], shown["messages"]) == (dlq, url, 7)
    assert shown["oldest_age_s"] >= 1 and shown["nonempty_for_s"] >= 0
    result = CliRunner().invoke(main, ["check", "--db", store_url, "--json"])
    assert result.exit_code == 0, result.output
    found = [f for f in json.loads(result.output)["findings"] if f["kind"] == "dead_letters"]
    assert [(f["severity"], f["subject"], f["evidence"]["messages"]) for f in found] == [
        ("warning", {"queue": dlq}, 7)]
    strict = tmp_path / "thresholds.yaml"
    strict.write_text("dead_letters:\n  error: 5\n")
    result = CliRunner().invoke(main, ["check", "--db", store_url, "--json",
                                       "--thresholds", str(strict)])
    assert result.exit_code == 1, result.output


def test_redrive_moves_dead_letters_back_and_the_tap_stores_each_once(
        aws: Any, store: Store) -> None:
    """`tap redrive` empties the DLQ into the queue; the tap stores the 12 events once; the
    next DLQ sample is 0 and `check` no longer reports it."""
    sqs, events = clients(aws, "sqs", "events")
    url, dlq = install(sqs, events)
    ids = dead_letter(sqs, url, dlq, 12)
    settings = tap_settings(url, dlq)
    run_tap(sqs, store, settings, TapCounters(), threading.Event(), until_empty=True)
    assert read.dead_letters(store.engine)[0]["messages"] == 12
    result = cli(aws, "tap", "redrive", "--bus", BUS, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["moved"] == 12
    assert depth(sqs, dlq) == 0 and depth(sqs, url) == 12
    run_tap(sqs, store, settings, TapCounters(), threading.Event(), until_empty=True)
    assert_exactly_once(store, ids)
    shown, = read.dead_letters(store.engine)
    assert (shown["messages"], shown["nonempty_for_s"]) == (0, None)


def test_redriving_the_same_events_again_stores_nothing_twice(aws: Any, store: Store) -> None:
    """A replay of events already stored (the same envelopes dead-lettered and redriven a
    second time, `--limit` in two steps): every id stays stored once."""
    sqs, events = clients(aws, "sqs", "events")
    url, dlq = install(sqs, events)
    settings = tap_settings(url, dlq)
    ids = dead_letter(sqs, url, dlq, 6)
    assert cli(aws, "tap", "redrive", "--bus", BUS).exit_code == 0
    run_tap(sqs, store, settings, TapCounters(), threading.Event(), until_empty=True)
    bodies = [json.dumps(envelope(event_id)) for event_id in ids]
    send(sqs, dlq, bodies)  # the same events dead-lettered again
    for _ in range(2):
        result = cli(aws, "tap", "redrive", "--bus", BUS, "--limit", "3", "--json")
        assert result.exit_code == 0 and json.loads(result.output)["moved"] == 3
    counters = TapCounters()
    run_tap(sqs, store, settings, counters, threading.Event(), until_empty=True)
    assert (counters.received, counters.stored, counters.duplicates) == (6, 0, 6)
    assert_exactly_once(store, ids)
    assert depth(sqs, dlq) == 0


def test_redrive_without_a_tap_is_one_usage_line(aws: Any) -> None:
    """No tap on the bus: exit 2 and one `error:` line, no traceback."""
    result = cli(aws, "tap", "redrive", "--bus", "nobody")
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "Traceback" not in result.output


def _overview_with(tmp_path: Path, monkeypatch: Any, samples: list[dict[str, Any]]) -> Any:
    """The overview page over the dashboard scenario's store plus these DLQ samples."""
    from eventscope.store import open_store
    from tests.dashboard_harness import page, seed
    url = seed(f"sqlite:///{tmp_path / 'dlq.db'}")
    store = open_store(url)
    for sample in samples:
        store.put_queue_depth(sample)
    store.engine.dispose()
    monkeypatch.setenv("EVENTSCOPE_DB", url)
    monkeypatch.delenv("EVENTSCOPE_CATALOG", raising=False)
    return page("overview")


def _sample(messages: int) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {"queue": "https://sqs.eu-west-1.amazonaws.com/123456789012/eventscope-tap-dlq",
            "source_queue": "https://sqs.eu-west-1.amazonaws.com/123456789012/eventscope-tap",
            "observed_ms": now, "messages": messages,
            "oldest_sent_ms": now - 90_000 if messages else None,
            "nonempty_since_ms": now - 60_000 if messages else None}


def test_dlq_depth_shows_on_the_overview_with_how_to_redrive(tmp_path: Path,
                                                              monkeypatch: Any) -> None:
    """Seven waiting dead letters: an error on the overview naming the count and the
    redrive command, and the queue's row with its depth and age."""
    at = _overview_with(tmp_path, monkeypatch, [_sample(7)])
    assert not at.exception
    dead_letter_errors = [e.value for e in at.error if "dead-letter" in e.value]
    assert dead_letter_errors == [  # besides the banner over the scenario's findings
        "7 messages wait in dead-letter queues: these events are not in the store. "
        "Move them back with `eventscope tap redrive --bus BUS`."]
    shown = next(df.value for df in at.dataframe if "dead-letter queue" in df.value.columns)
    row = shown.iloc[0]
    assert (row["dead-letter queue"].endswith("eventscope-tap-dlq"), row["messages"]) == (True, 7)
    assert row["oldest message (s)"] >= 90


@pytest.mark.parametrize("samples, expected", [
    ([], "No dead-letter queue sampled yet"), ([_sample(0)], "Dead-letter queues are empty.")])
def test_the_overview_says_when_no_dlq_was_sampled_or_it_is_empty(
        tmp_path: Path, monkeypatch: Any, samples: list[dict[str, Any]], expected: str) -> None:
    at = _overview_with(tmp_path, monkeypatch, samples)
    assert not at.exception
    assert not [e.value for e in at.error if "dead-letter" in e.value]
    said = [c.value for c in at.caption] + [s.value for s in at.success]
    assert any(text.startswith(expected) for text in said), said
