"""Collector benchmark: the tap collector's own cost per message, and end to end vs moto.

1. In memory: an SQS stand-in answers receive/delete from a list of real-shaped EventBridge
   envelopes, so what is measured is the collector itself (decode + parse + sample + PII
   redaction + one SQLite transaction per batch + delete bookkeeping). Printed beside the
   store's own floor (`write_batch` of the already-parsed events) and the 20,000 events/s
   target.
2. End to end against moto's server over HTTP: the collector draining the tap queue,
   printed beside moto's own ceiling for receive + delete of the same number of messages
   measured in the same run. moto's every call slows in proportion to the queue's depth, so
   the messages go through in rounds (`--round`, default 100: fill, then drain, timed) and
   the run stops starting rounds once `--e2e-seconds` have passed: it always finishes.

Usage: python bench/collector_bench.py [--events 50000] [--e2e 500] [--round 100]
       [--e2e-seconds 120]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import tempfile
import threading
import time
import uuid
from typing import Any

from eventscope.collectors.pii import redaction_filter
from eventscope.collectors.tap_collector import TapCounters, TapSettings, classify_messages, run_tap
from eventscope.redaction import RedactionSettings
from eventscope.store import open_store


def envelopes(n: int, seed: int = 7) -> list[str]:
    """n real-shaped envelopes (~1 KB) as an SQS body, as the tap rule delivers them."""
    rng = random.Random(seed)
    kinds = ["OrderPlaced", "OrderCancelled", "PaymentCaptured", "ShipmentDispatched"]
    out = []
    for i in range(n):
        kind = kinds[i % 4]
        detail = {"version": "1", "orderId": f"ord-{i // 3}",
                  "customerId": f"cus-{rng.randint(1, 9999)}",
                  "amount": round(rng.uniform(5, 500), 2), "currency": rng.choice(["EUR", "USD"]),
                  "items": [{"sku": f"SKU-{rng.randint(1, 500)}", "qty": rng.randint(1, 3),
                             "title": "cotton t-shirt, crew neck, size L"} for _ in range(3)],
                  "shipping": {"city": "Lyon", "postcode": "69002", "method": "standard"},
                  "metadata": {"correlationId": str(uuid.UUID(int=rng.getrandbits(128))),
                               "channel": rng.choice(["web", "app"])}}
        out.append(json.dumps({
            "version": "0", "id": str(uuid.UUID(int=rng.getrandbits(128))), "detail-type": kind,
            "source": "com.shop.orders", "account": "123456789012",
            "time": "2025-06-02T10:15:00Z", "region": "eu-west-1", "resources": [],
            "detail": detail}))
    return out


class MemorySqs:
    """Answers the tap collector's SQS calls from memory."""

    def __init__(self, bodies: list[str]) -> None:
        self.messages = [{"MessageId": str(i), "ReceiptHandle": f"rh-{i}", "Body": b}
                         for i, b in enumerate(bodies)]
        self.position = 0
        self.deleted = 0

    def receive_message(self, QueueUrl: str, WaitTimeSeconds: int,
                        MaxNumberOfMessages: int) -> dict[str, Any]:
        chunk = self.messages[self.position:self.position + MaxNumberOfMessages]
        self.position += len(chunk)
        return {"Messages": chunk}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.deleted += len(Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def in_memory(n: int, batch_size: int, redact: bool) -> float:
    bodies = envelopes(n)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/bench.db")
        sqs = MemorySqs(bodies)
        hook = redaction_filter(RedactionSettings(key=b"bench")) if redact else None
        counters = TapCounters()
        started = time.process_time()
        run_tap(sqs, store, TapSettings(queue_url="q", batch_size=batch_size, wait_seconds=0),
                counters, threading.Event(), until_empty=True, event_filter=hook)
        cpu = time.process_time() - started
        assert counters.stored == n and sqs.deleted == n, counters
        store.engine.dispose()
    return n / cpu


def store_floor(n: int, batch_size: int) -> float:
    """The store's own rate: write_batch of already-parsed events, same batch size."""
    settings = TapSettings(queue_url="q")
    events = classify_messages([{"Body": b} for b in envelopes(n)], settings).events
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/floor.db")
        started = time.process_time()
        for i in range(0, n, batch_size):
            store.write_batch(events[i:i + batch_size])
        cpu = time.process_time() - started
        store.engine.dispose()
    return n / cpu


def end_to_end(n: int, round_size: int = 100, budget_s: float = 120.0
               ) -> tuple[float, float, int]:
    """(collector msgs/s, moto's receive+delete ceiling msgs/s, messages measured) over
    HTTP, same run: rounds alternate between the two, each on its own queue."""
    from moto.server import ThreadedMotoServer

    from eventscope.collectors.clients import AwsSettings, make_client
    from eventscope.collectors.tap import install_tap

    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}.items():
        os.environ.setdefault(name, value)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    aws = AwsSettings(region="us-east-1", endpoint_url=f"http://{host}:{port}")
    sqs, events = make_client("sqs", aws), make_client("events", aws)
    bodies = envelopes(n)
    spent = {"collector": 0.0, "ceiling": 0.0}
    done = 0
    deadline = time.perf_counter() + budget_s
    try:
        events.create_event_bus(Name="bench")
        tap_url = install_tap(sqs, events, "bench").queue_url
        ceiling_url = sqs.create_queue(QueueName="ceiling")["QueueUrl"]
        with tempfile.TemporaryDirectory() as tmp:
            store = open_store(f"sqlite:///{tmp}/e2e.db")
            for start in range(0, n, round_size):
                if time.perf_counter() > deadline:
                    break
                chunk = bodies[start:start + round_size]
                spent["ceiling"] += _drain_seconds(sqs, ceiling_url, chunk)
                spent["collector"] += _collector_seconds(sqs, tap_url, chunk, store)
                done += len(chunk)
            store.engine.dispose()
    finally:
        server.stop()
    return done / spent["collector"], done / spent["ceiling"], done


def _fill(sqs: Any, url: str, bodies: list[str]) -> None:
    for i in range(0, len(bodies), 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i:i + 10])])


def _drain_seconds(sqs: Any, url: str, bodies: list[str]) -> float:
    """moto's own ceiling: plain receive(10) + delete_message_batch, nothing else."""
    _fill(sqs, url, bodies)
    started, done = time.perf_counter(), 0
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
        done += len(got)
    if done != len(bodies):
        raise RuntimeError(f"ceiling drained {done} of {len(bodies)} messages")
    return time.perf_counter() - started


def _collector_seconds(sqs: Any, url: str, bodies: list[str], store: Any) -> float:
    _fill(sqs, url, bodies)
    counters = TapCounters()
    started = time.perf_counter()
    run_tap(sqs, store, TapSettings(queue_url=url, wait_seconds=0), counters,
            threading.Event(), until_empty=True,
            event_filter=redaction_filter(RedactionSettings(key=b"bench")))
    elapsed = time.perf_counter() - started
    if counters.stored != len(bodies):
        raise RuntimeError(f"collector stored {counters.stored} of {len(bodies)} messages")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--e2e", type=int, default=500,
                        help="messages end to end against moto (default 500)")
    parser.add_argument("--round", type=int, default=100,
                        help="messages queued at once end to end (default 100)")
    parser.add_argument("--e2e-seconds", type=float, default=120.0,
                        help="no new end-to-end round after this many seconds (default 120)")
    args = parser.parse_args()
    floor = store_floor(args.events, 100)
    print(f"in memory, {args.events} events of ~1 KB, SQLite, CPU time of this process:")
    print(f"  store floor (write_batch only, batches of 100) {floor:>9,.0f} events/s")
    for batch, redact in ((100, True), (100, False), (1000, True)):
        rate = in_memory(args.events, batch, redact)
        print(f"  collector batch={batch:<5} redaction={'on ' if redact else 'off'}   "
              f"{rate:>9,.0f} events/s  = {rate / floor:.2f}x store floor, "
              f"{rate / 20_000:.2f}x the 20k/s target")
        if (batch, redact) == (100, True):
            print(f"RESULT collector in memory (batch 100, redaction on): {rate:,.0f} events "
                  f"per CPU second; store floor {floor:,.0f}/CPU s; ratio {rate / floor:.2f}; "
                  f"target >= 20,000/CPU s; {'met' if rate >= 20_000 else 'MISSED'}")
    collector, ceiling, done = end_to_end(args.e2e, args.round, args.e2e_seconds)
    print(f"end to end over HTTP against moto, {done} of {args.e2e} messages in rounds of "
          f"{args.round} (wall time; moto serves one call at a time):")
    print(f"  moto receive+delete ceiling   {ceiling:>9,.0f} msgs/s")
    print(f"  collector (tap queue → SQLite) {collector:>8,.0f} msgs/s  = "
          f"{collector / ceiling:.2f}x moto's ceiling")
    print(f"RESULT collector end to end vs moto: {collector:,.0f} msgs per wall second; "
          f"moto's receive+delete ceiling {ceiling:,.0f}/s; ratio {collector / ceiling:.2f}; "
          f"target none (moto bounds it); n/a")


if __name__ == "__main__":
    main()
