"""Scale benchmark: a whole company's bus into PostgreSQL through the real collector paths.

Owns the issue-15 scale measurement. A company-shaped stream (the simulator's bench company:
30 detail-types, ~1 KB envelopes; each Lambda consumer's log records copied under
`--invocations-per-event` functions in all) arrives at `--rate` events per second (default
580, ~50M a day; `--peak` triples it). Each minute of that traffic is generated first
(untimed), then written as the deployed collectors write it -- the tap Lambda handler
(`eventscope.collectors.handler.handle`, SQS batches of `--sqs-batch`) for the bus events, the logs
collector's `InvocationSink` (assembler -> `Store.write_batch` with the group's checkpoint)
per log group for the invocations -- into a fresh schema of PostgreSQL whose store was
prefilled with `--prefill-hours` of the same traffic (copies of one generated minute, written
with `Store.write_batch` directly). Writers settle rollups behind a 2-minute lag.

Per minute it prints: the collector seconds (wall time of the collector paths: parsing,
redaction, assembly and the store) and the store seconds (inside `Store.write_batch`, rollup
settling included), each over the 60 s of traffic; the COPY floor (a plain ``COPY`` of the
same event and invocation rows into unindexed tables of the same server, same run) and the
store seconds as a multiple of it; bytes on disk per stored event (``pg_total_relation_size``
of every store table / events). At the end: the averages, the trend (least-squares slope per
minute) of the ratio, bytes per event by table, and one RESULT line per target of the issue.
Run it on a quiet machine for figures; `--small` is a 1-minute check.

Usage: .venv/bin/python bench/scale_bench.py [--url URL] [--rate N] [--peak] [--minutes M]
       [--prefill-hours H] [--small] [--keep]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eventscope.collectors.handler import handle  # noqa: E402
from eventscope.collectors.logs_collector import InvocationSink, LogsCounters  # noqa: E402
from eventscope.collectors.tap_collector import TapSettings, classify_messages  # noqa: E402
from eventscope import simulator  # noqa: E402
from eventscope.lambda_logs import InvocationAssembler  # noqa: E402
from eventscope.records import EVENT_COLUMNS, Invocation, event_row  # noqa: E402
from eventscope.store import Store, open_store  # noqa: E402
from eventscope.tables import MINUTE_MS, events, invocations  # noqa: E402

DEFAULT_URL = os.environ.get("EVENTSCOPE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TARGET_AVERAGE, TARGET_PEAK, TARGET_FLOOR, TARGET_BYTES = 0.25, 0.75, 3.0, 600
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:eventscope-tap"
GENERATED_PER_S = 10_000  # simulator items per second on this machine, for the estimate
INVOCATION_COLUMNS = [c.name for c in invocations.columns]


@dataclasses.dataclass
class Minute:
    """One minute of traffic as the collectors receive it, and its rows for the floor."""

    messages: list[dict[str, Any]]
    logs: dict[str, list[dict[str, Any]]]
    event_rows: list[tuple[Any, ...]]
    invocations: list[Invocation]


def traffic(rate: int, start_ms: int, copies: int, seed: int) -> Iterator[Minute]:
    """Minutes of the company's traffic at `rate` events/s, times laid out from `start_ms`.

    The simulator's items are taken in order, `rate * 60` events a minute with the log
    records between them; their times are spread evenly over the minute (order kept), so
    a day's traffic lands in a day whatever the simulator's own pace. Each log record is
    copied under `copies` functions (a `-cN` suffix, N ms later: a distinct invocation key)."""
    items = simulator.simulate(simulator.CompanyConfig.bench(), seed=seed, n_events=10**9,
                               start=datetime.fromtimestamp(start_ms / 1000, tz=timezone.utc))
    per_minute, minute, count = rate * 60, 0, 0
    pending: list[simulator.SimItem] = []
    for item in items:
        pending.append(item)
        count += item.kind == "event"
        if count >= per_minute:
            yield _minute(pending, start_ms + minute * MINUTE_MS, copies)
            pending, minute, count = [], minute + 1, 0


def _minute(items: list[simulator.SimItem], start_ms: int, copies: int) -> Minute:
    messages, logs = [], defaultdict(list)
    step = MINUTE_MS / max(len(items), 1)
    for n, item in enumerate(items):
        at = start_ms + int(n * step)
        record = dict(item.record)
        if item.kind == "event":
            record["time"] = simulator.iso_seconds(at)
            messages.append({"messageId": str(uuid.uuid4()), "body": orjson.dumps(record).decode(),
                             "eventSourceARN": QUEUE_ARN})
            continue
        for copy in range(copies):
            group = record["logGroupName"] + (f"-c{copy}" if copy else "")
            logs[group].append({**record, "logGroupName": group, "timestamp": at + copy,
                                "eventId": f"{record['eventId']}{copy}"})
    settings = TapSettings(queue_url=QUEUE_ARN, sample_rate=1.0)
    rows = [event_row(e) for e in classify_messages(
        [{"MessageId": m["messageId"], "Body": m["body"]} for m in messages], settings).events]
    built: list[Invocation] = []
    for records in logs.values():
        assembler = InvocationAssembler()
        for record in records:
            built += assembler.feed(record)
    return Minute(messages, dict(logs), rows, built)


class TimedStore(Store):
    """The store, counting the wall seconds spent in `write_batch` (rollup settling included)."""

    seconds = 0.0

    def write_batch(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return super().write_batch(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started


def write_minute(store: Store, minute: Minute, sinks: dict[str, InvocationSink],
                 sqs_batch: int) -> float:
    """The collectors' work for one minute (tap handler, then each log group); wall seconds."""
    counters = LogsCounters()
    started = time.perf_counter()
    for i in range(0, len(minute.messages), sqs_batch):
        answer = handle({"Records": minute.messages[i:i + sqs_batch]}, None, store=store,
                        sample_rate=1.0)
        if answer["batchItemFailures"]:
            raise RuntimeError(f"the store refused a batch: {answer}")
    for group, records in minute.logs.items():
        sink = sinks.setdefault(group, InvocationSink())
        for record in records:
            sink.feed(record)
        sink.write(store, {("logs", group): str(records[-1]["timestamp"])}, counters)
        sink.invocations = []
    return time.perf_counter() - started


def prefill(store: Store, template: Minute, minutes: int, batch: int = 5000) -> int:
    """`minutes` copies of one minute before it, fresh ids, written directly; events stored."""
    stored = 0
    for m in range(minutes):
        shift = (m - minutes) * MINUTE_MS
        tag = f"p{m}-"
        rows = [(tag + r[0], r[1], r[2], r[3] + shift, *r[4:]) for r in template.event_rows]
        calls = [dataclasses.replace(c, request_id=tag + c.request_id, start_ms=c.start_ms + shift,
                                     end_ms=None if c.end_ms is None else c.end_ms + shift,
                                     event_id=None if c.event_id is None else tag + c.event_id)
                 for c in template.invocations]
        for i in range(0, max(len(rows), len(calls)), batch):
            stored += store.write_batch(rows[i:i + batch], calls[i:i + batch],
                                        settle=False).events
        if m % 10 == 9:
            print(f"  prefill {m + 1}/{minutes} minutes", flush=True)
    store.refresh_rollups()
    return stored


def copy_floor(engine: sa.Engine, minute: Minute) -> float:
    """Seconds for a plain COPY of the minute's event and invocation rows into unindexed
    tables (created beforehand, emptied after), one transaction."""
    from eventscope.pg_write import _invocation_row
    with engine.begin() as conn:
        for name, table in (("floor_events", events), ("floor_invocations", invocations)):
            conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {name} (LIKE {table.name} "
                                 "INCLUDING DEFAULTS)")
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        with cursor.copy(f"COPY floor_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
            for row in minute.event_rows:
                copy.write_row(row)
        with cursor.copy(f"COPY floor_invocations ({', '.join(INVOCATION_COLUMNS)}) "
                         "FROM STDIN") as copy:
            for call in minute.invocations:
                copy.write_row(_invocation_row(call))
        raw.commit()
        seconds = time.perf_counter() - started
        cursor.execute("TRUNCATE floor_events, floor_invocations")
        raw.commit()
    finally:
        raw.close()
    return seconds


def store_bytes(engine: sa.Engine) -> int:
    """Bytes on disk of every store table of the schema (heap, indexes, TOAST)."""
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' "
            "AND c.relname NOT IN ('floor_events', 'floor_invocations')").scalar() or 0)


def table_bytes(engine: sa.Engine, exact: int) -> str:
    """Bytes per event of each big table (all its partitions), heap+TOAST and indexes."""
    parts = []
    with engine.connect() as conn:
        for name in ("events", "invocations"):
            heap, index = conn.exec_driver_sql(
                "SELECT coalesce(sum(pg_table_size(relid)), 0), "
                "coalesce(sum(pg_indexes_size(relid)), 0) FROM pg_partition_tree(%(t)s::regclass) "
                "WHERE isleaf", {"t": name}).one()
            parts.append(f"{name} {heap / exact:.0f} + indexes {index / exact:.0f}")
    return ", ".join(parts)


def slope(values: list[float]) -> float:
    """Least-squares slope of the values per step (0 for fewer than two)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    cov = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
    return cov / sum((x - mean_x) ** 2 for x in range(n))


def result(name: str, value: float, target: float, unit: str = "") -> None:
    verdict = "met" if value <= target else "missed"
    print(f"RESULT {name}: {value:.3f}{unit} (target <= {target}{unit}) {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL to use (a schema of "
                        "its own is made in it and dropped after, unless --keep)")
    parser.add_argument("--rate", type=int, default=580, help="events per second (580: 50M/day)")
    parser.add_argument("--peak", action="store_true", help="3x the rate")
    parser.add_argument("--minutes", type=float, default=5, help="minutes of traffic measured")
    parser.add_argument("--prefill-hours", type=float, default=2.0)
    parser.add_argument("--invocations-per-event", type=int, default=3,
                        help="consumer copies of each log record (the simulator's ~1 per event)")
    parser.add_argument("--sqs-batch", type=int, default=1000,
                        help="messages per tap handler call (the event-source mapping's batch)")
    parser.add_argument("--small", action="store_true",
                        help="a 1-minute check: --minutes 1 --prefill-hours 0.1")
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args(argv)
    if args.small:
        args.minutes, args.prefill_hours = 1, 0.1
    rate = args.rate * (3 if args.peak else 1)
    minutes, prefill_minutes = max(1, int(args.minutes)), int(args.prefill_hours * 60)
    copies = args.invocations_per_event
    generate_s = (minutes + 1) * rate * 60 * 4.3 / GENERATED_PER_S
    estimate = generate_s * 2 + minutes * 60 * 0.5 + prefill_minutes * rate * 60 * 4 / 40_000
    print(f"scale bench: {rate} events/s for {minutes} min on a store prefilled with "
          f"{prefill_minutes} min; estimated {estimate / 60:.0f} min "
          f"(generation ~{generate_s:.0f} s, untimed)", flush=True)

    schema = f"scale_{os.getpid()}"
    admin = sa.create_engine(args.url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in args.url else "?"
    url = f"{args.url}{separator}options=-csearch_path%3D{schema}"
    open_store(url).engine.dispose()  # the schema
    store = TimedStore(sa.create_engine(url))
    store.rollup_lag_ms = 2 * MINUTE_MS  # the deployed writers' setting: settle behind
    try:
        start = int(time.time() * 1000)
        start -= start % MINUTE_MS
        stream = traffic(rate, start, copies, args.seed)
        template = next(stream)
        calls_per_event = len(template.invocations) / max(len(template.event_rows), 1)
        records = sum(len(r) for r in template.logs.values())
        print(f"traffic: {len(template.event_rows)} events/min, {calls_per_event:.2f} "
              f"invocations/event, {records / max(len(template.invocations), 1):.2f} log "
              "records/invocation", flush=True)
        began = time.perf_counter()
        stored = prefill(store, template, prefill_minutes)
        print(f"prefill: {stored:,} events in {time.perf_counter() - began:.0f} s", flush=True)

        sinks: dict[str, InvocationSink] = {}
        ratios: list[float] = []
        store_ratios: list[float] = []
        floors: list[float] = []
        print("minute  collect_s  ratio  store_s  ratio  floor_s  x_floor  bytes/event  "
              "dirty_min", flush=True)
        for n in range(minutes):
            minute = next(stream)
            store.seconds = 0.0
            seconds = write_minute(store, minute, sinks, args.sqs_batch)
            writing = store.seconds
            floor = copy_floor(store.engine, minute)
            stored += len(minute.event_rows)
            ratios.append(seconds / 60)
            store_ratios.append(writing / 60)
            floors.append(writing / floor)
            per_event = store_bytes(store.engine) / max(stored, 1)
            print(f"{n + 1:>6}  {seconds:>9.1f}  {seconds / 60:>5.3f}  {writing:>7.1f}  "
                  f"{writing / 60:>5.3f}  {floor:>7.2f}  {writing / floor:>7.1f}  "
                  f"{per_event:>11.0f}  {store.dirty_minutes():>9}", flush=True)
        began = time.perf_counter()
        store.rollup_lag_ms = 0
        store.settle_rollups()
        settle_s = time.perf_counter() - began
        with store.engine.connect() as conn:
            exact = int(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar()
                        or 0)
        per_event = store_bytes(store.engine) / max(exact, 1)
        average = sum(ratios) / len(ratios)
        writes = sum(store_ratios) / len(store_ratios)
        print(f"average ratio {average:.3f} (collector paths; {writes:.3f} in write_batch), "
              f"slope {slope(ratios):+.4f} per minute, write_batch "
              f"{sum(floors) / len(floors):.1f}x the COPY floor, {per_event:.0f} bytes/event "
              f"({exact:,} events), last rollups settled in {settle_s:.1f} s")
        print(f"bytes per event by table: {table_bytes(store.engine, max(exact, 1))}")
        result("peak ratio" if args.peak else "average ratio", average,
               TARGET_PEAK if args.peak else TARGET_AVERAGE)
        if len(ratios) < 3:
            print("RESULT trend of the ratio per minute: not checked (fewer than 3 minutes)")
        else:
            result("trend of the ratio per minute", slope(ratios), 0.01)
        result("write_batch as a multiple of the COPY floor", sum(floors) / len(floors),
               TARGET_FLOOR, "x")
        result("bytes per event", per_event, TARGET_BYTES, " B")
    finally:
        store.engine.dispose()
        if not args.keep:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
