"""Scale benchmark: a whole company's bus into PostgreSQL through the real collector paths.

Owns the issue-15 scale measurement. A company-shaped stream (the simulator's bench company:
30 detail-types, ~1 KB envelopes; each Lambda consumer's log records copied under
`--invocations-per-event` functions in all) arrives at `--rate` events per second (default
580, ~50M a day; `--peak` triples it). Each minute of that traffic is generated first
(untimed), then written as the deployed collectors write it -- the tap Lambda handler
(`eventscope.collectors.handler.handle`, SQS batches of `--sqs-batch`) for the bus events,
the logs collector's `InvocationSink` (assembler -> `Store.write_batch` with the group's checkpoint)
per log group for the invocations -- into a fresh schema of PostgreSQL whose store was
prefilled with `--prefill-hours` of the same traffic at the average rate (one generated minute
COPYed once and multiplied by the server, fresh ids, shifted times; see `prefill`). Writers
settle rollups behind a 2-minute lag.

Per minute it prints: the collector seconds (wall time of the collector paths: parsing,
redaction, assembly and the store) and the store seconds (inside `Store.write_batch`, rollup
settling included), each over the 60 s of traffic; two floors for the same event and
invocation rows, each the faster of two runs in the same run: a plain ``COPY`` into bare
unindexed tables, and a ``COPY`` into a twin schema made by `open_store` (the same
partitioned, indexed tables, empty); the store seconds as a multiple of each; bytes on disk
per stored event (``pg_total_relation_size`` of every store table / events). At the end: the
averages, the trend of the ratio (least-squares slope per minute, first and last minute),
bytes per event by table, the generation and whole-run seconds, and one RESULT line per
target of the issue. Run it on a quiet machine for figures; `--small` is a 1-minute check.

Usage: .venv/bin/python bench/scale_bench.py [--url URL] [--rate N] [--peak] [--minutes M]
       [--prefill-hours H] [--small] [--keep]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eventscope import partitions, simulator  # noqa: E402
from eventscope.collectors.handler import handle  # noqa: E402
from eventscope.collectors.logs_collector import InvocationSink, LogsCounters  # noqa: E402
from eventscope.collectors.tap_collector import TapSettings, classify_messages  # noqa: E402
from eventscope.lambda_logs import InvocationAssembler  # noqa: E402
from eventscope.records import EVENT_COLUMNS, Invocation, event_row  # noqa: E402
from eventscope.store import Store, open_store  # noqa: E402
from eventscope.tables import DAY_MS, MINUTE_MS, events, invocations  # noqa: E402

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


_UUID_HEAD = re.compile(r"\b[0-9a-f]{8}(?=-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b)")


def traffic(rate: int, start_ms: int, copies: int, seed: int) -> Iterator[Minute]:
    """Minutes of the company's traffic at `rate` events/s, times laid out from `start_ms`.

    The simulator's items are taken in order, `rate * 60` events a minute with the log
    records between them; their times are spread evenly over the minute (order kept), so
    a day's traffic lands in a day whatever the simulator's own pace. Each log record is
    copied under `copies` functions (a `-cN` suffix, N ms later: a distinct invocation key).
    The simulator makes the first minute (~45 s at 3x the average rate); every later minute
    is that one re-keyed -- each UUID in its records (event, request, order ids) gets a
    first group of its own -- which keeps the shape and costs a few seconds."""
    items = simulator.simulate(simulator.CompanyConfig.bench(), seed=seed, n_events=10**9,
                               start=datetime.fromtimestamp(start_ms / 1000, tz=timezone.utc))
    first: list[simulator.SimItem] = []
    count = 0
    for item in items:
        first.append(item)
        count += item.kind == "event"
        if count >= rate * 60:
            break
    yield _minute(first, start_ms, copies, rows=True)
    minute = 1
    while True:
        head = f"{minute:08x}"
        rekeyed = [item._replace(record=orjson.loads(_UUID_HEAD.sub(
            head, orjson.dumps(item.record).decode()))) for item in first]
        yield _minute(rekeyed, start_ms + minute * MINUTE_MS, copies, rows=False)
        minute += 1


def _minute(items: list[simulator.SimItem], start_ms: int, copies: int, rows: bool) -> Minute:
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
    if not rows:  # the measured minutes: their rows are what the collectors hand the store
        return Minute(messages, dict(logs), [], [])
    settings = TapSettings(queue_url=QUEUE_ARN, sample_rate=1.0)
    event_rows = [event_row(e) for e in classify_messages(
        [{"MessageId": m["messageId"], "Body": m["body"]} for m in messages], settings).events]
    built: list[Invocation] = []
    for records in logs.values():
        assembler = InvocationAssembler()
        for record in records:
            built += assembler.feed(record)
    return Minute(messages, dict(logs), event_rows, built)


class TimedStore(Store):
    """The store, counting the wall seconds spent in `write_batch` (rollup settling included)
    and keeping the events and invocations it was handed (for the floors), untimed."""

    seconds = 0.0
    handed: tuple[list[Any], list[Invocation]] = ([], [])

    def write_batch(self, *args: Any, **kwargs: Any) -> Any:
        self.handed[0].extend(kwargs.get("events_", args[0] if args else ()))
        self.handed[1].extend(kwargs.get("invocations_", args[1] if len(args) > 1 else ()))
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


def prefill(store: Store, template: Minute, minutes: int, chunk: int = 10) -> int:
    """`minutes` copies of one minute before it, fresh ids (a `pN-` prefix) and shifted times:
    the minute COPYed once into a temporary table, then multiplied by the server into the
    store's own tables one minute a statement (rows in the traffic's order, so the indexes
    grow as under live writes), `chunk` minutes a transaction, events and invocations in two
    connections at once; their days' partitions made first. Then the minutes are marked stale
    and the rollups refreshed once (`Store.refresh_rollups`). Returns the events stored."""
    if minutes <= 0:
        return 0
    first = min(r[EVENT_COLUMNS.index("time_ms")] for r in template.event_rows)
    now = int(time.time() * 1000)
    with store.engine.begin() as conn:
        if partitions.is_partitioned(conn):
            days = partitions.wanted_days([first - minutes * MINUTE_MS, now], now)
            days |= set(range(partitions.day_of(first - minutes * MINUTE_MS), now, DAY_MS))
            for name in BIG_TABLES:
                partitions.ensure_days(conn, name, days)
    shifted, prefixed = {"time_ms", "start_ms", "end_ms"}, {"id", "request_id", "event_id"}

    def fill(name: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        select = ", ".join(f"'p' || %(g)s::text || '-' || {c}" if c in prefixed else
                           f"{c} + %(shift)s::bigint" if c in shifted else c for c in columns)
        raw = store.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(f"CREATE TEMPORARY TABLE prefill_{name} (LIKE {name})")
            with cursor.copy(f"COPY prefill_{name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            for g in range(minutes):
                cursor.execute(f"INSERT INTO {name} ({', '.join(columns)}) SELECT {select} "
                               f"FROM prefill_{name}",
                               {"g": g, "shift": (g - minutes) * MINUTE_MS})
                if g % chunk == chunk - 1 or g == minutes - 1:
                    raw.commit()
                    if name == "invocations":
                        print(f"  prefill {g + 1}/{minutes} minutes (invocations)", flush=True)
        finally:
            raw.close()

    event_rows, call_rows = kept_rows(template)
    with ThreadPoolExecutor(2) as pool:
        done = [pool.submit(fill, "events", list(EVENT_COLUMNS), event_rows),
                pool.submit(fill, "invocations", INVOCATION_COLUMNS, call_rows)]
        for future in done:
            future.result()
    began = time.perf_counter()
    with store.engine.begin() as conn:  # as autovacuum does on a store that has run for hours
        for name in BIG_TABLES:
            conn.exec_driver_sql(f"ANALYZE {name}")
    print(f"  prefill analyzed in {time.perf_counter() - began:.0f} s", flush=True)
    base = first - first % MINUTE_MS
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            f"INSERT INTO rollup_dirty (minute_ms) SELECT %(base)s + g * {MINUTE_MS} "
            "FROM generate_series(-%(n)s::int, 0) g ON CONFLICT DO NOTHING",
            {"base": base, "n": minutes})
    began = time.perf_counter()
    store.refresh_rollups()
    print(f"  prefill rollups refreshed in {time.perf_counter() - began:.0f} s", flush=True)
    return minutes * len(event_rows)


def kept_rows(minute: Minute) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The minute's event and invocation rows as the store keeps them: one per key (a
    redelivered event, an invocation seen twice folded as the upsert folds it)."""
    from eventscope.pg_write import _invocation_row, merge_invocations
    time_at = EVENT_COLUMNS.index("time_ms")
    event_rows: dict[tuple[Any, Any], tuple[Any, ...]] = {}
    for row in minute.event_rows:
        event_rows.setdefault((row[0], row[time_at]), row)
    return (list(event_rows.values()),
            [_invocation_row(c) for c in merge_invocations(minute.invocations)])


def copy_floor(engine: sa.Engine, minute: Minute, tables: tuple[str, str]) -> float:
    """Seconds for a plain COPY of the minute's event and invocation rows (`kept_rows`) into
    `tables` (events, invocations), one transaction; the tables are emptied afterwards."""
    event_rows, calls = kept_rows(minute)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        with cursor.copy(f"COPY {tables[0]} ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
            for row in event_rows:
                copy.write_row(row)
        with cursor.copy(f"COPY {tables[1]} ({', '.join(INVOCATION_COLUMNS)}) "
                         "FROM STDIN") as copy:
            for call in calls:
                copy.write_row(call)
        raw.commit()
        seconds = time.perf_counter() - started
        cursor.execute(f"TRUNCATE {tables[0]}, {tables[1]}")
        raw.commit()
    finally:
        raw.close()
    return seconds


def make_bare_tables(engine: sa.Engine) -> tuple[str, str]:
    """Unindexed, unpartitioned tables with the store's columns: the plain-COPY floor."""
    with engine.begin() as conn:
        for name in ("events", "invocations"):
            conn.exec_driver_sql(f"CREATE TABLE floor_{name} (LIKE {name} INCLUDING DEFAULTS)")
    return "floor_events", "floor_invocations"


def store_bytes(engine: sa.Engine) -> int:
    """Bytes on disk of every store table of the schema (heap, indexes, TOAST)."""
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' "
            "AND c.relname NOT IN ('floor_events', 'floor_invocations')").scalar() or 0)


BIG_TABLES = ("events", "invocations")


def table_bytes(engine: sa.Engine, exact: int) -> str:
    """Bytes per event of each big table (all its partitions): heap with TOAST, and indexes;
    then every other store table together (rollups, checkpoints, ...)."""
    parts = []
    with engine.connect() as conn:
        for name in BIG_TABLES:
            heap, index = conn.exec_driver_sql(
                "SELECT coalesce(sum(pg_table_size(c.oid)), 0), "
                "coalesce(sum(pg_indexes_size(c.oid)), 0) FROM pg_class c WHERE c.oid IN "
                "(SELECT to_regclass(%(t)s) UNION SELECT inhrelid FROM pg_inherits "
                "WHERE inhparent = to_regclass(%(t)s))", {"t": name}).one()
            parts.append(f"{name} {heap / exact:.0f} + indexes {index / exact:.0f}")
        rest = conn.exec_driver_sql(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' "
            "AND c.relname NOT LIKE 'floor%%' AND NOT c.relispartition").scalar() or 0
        big = conn.exec_driver_sql(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "WHERE c.relname IN ('events', 'invocations') "
            "AND c.relnamespace = current_schema()::regnamespace").scalar() or 0
    parts.append(f"other tables {(int(rest) - int(big)) / exact:.0f}")
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
    generate_s = rate * 60 * 4.3 / GENERATED_PER_S * (1 + minutes / 5)  # first + re-keyed
    estimate = generate_s + minutes * 40 + prefill_minutes * 3.5
    print(f"scale bench: {rate} events/s for {minutes} min on a store prefilled with "
          f"{prefill_minutes} min; estimated {estimate / 60:.0f} min "
          f"(generation ~{generate_s:.0f} s, untimed)", flush=True)

    run_began = time.perf_counter()
    schema = f"scale_{os.getpid()}"
    admin = sa.create_engine(args.url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}_floor")
    separator = "&" if "?" in args.url else "?"
    url = f"{args.url}{separator}options=-csearch_path%3D{schema}"
    store = TimedStore(sa.create_engine(url))
    store.rollup_lag_ms = 2 * MINUTE_MS  # the deployed writers' setting: settle behind
    twin: Store | None = None
    try:
        open_store(url).engine.dispose()  # the schema
        # The second floor: the same store layout (partitions, keys, indexes) in a twin schema
        twin = open_store(f"{args.url}{separator}options=-csearch_path%3D{schema}_floor")
        bare = make_bare_tables(store.engine)
        start = int(time.time() * 1000)
        start -= start % MINUTE_MS
        stream = traffic(rate, start, copies, args.seed)
        began = time.perf_counter()
        template = next(stream)
        generated = time.perf_counter() - began
        calls_per_event = len(template.invocations) / max(len(template.event_rows), 1)
        records = sum(len(r) for r in template.logs.values())
        print(f"traffic: {len(template.event_rows)} events/min, {calls_per_event:.2f} "
              f"invocations/event, {records / max(len(template.invocations), 1):.2f} log "
              "records/invocation", flush=True)
        began = time.perf_counter()
        # The store before a peak holds average traffic: at --peak, a third as many copies
        # of the (3x denser) minute, the same rows as `--prefill-hours` at the average rate.
        copies_of_template = prefill_minutes // (3 if args.peak else 1)
        stored = prefill(store, template, copies_of_template)
        print(f"prefill: {stored:,} events ({args.prefill_hours:g} h at {args.rate} events/s) in "
              f"{time.perf_counter() - began:.0f} s", flush=True)

        sinks: dict[str, InvocationSink] = {}
        ratios: list[float] = []
        store_ratios: list[float] = []
        bare_x: list[float] = []
        same_x: list[float] = []
        print("minute  collect_s  ratio  store_s  ratio  bare_s  x_bare  same_s  x_same  "
              "bytes/event  dirty_min", flush=True)
        for n in range(minutes):
            began = time.perf_counter()
            minute = next(stream)
            generated += time.perf_counter() - began
            store.seconds, store.handed = 0.0, ([], [])
            seconds = write_minute(store, minute, sinks, args.sqs_batch)
            writing = store.seconds
            minute.event_rows = [e if isinstance(e, tuple) else event_row(e)
                                 for e in store.handed[0]]
            minute.invocations = store.handed[1]
            # a floor is the faster of two runs (a shared machine slows single runs)
            floor = min(copy_floor(store.engine, minute, bare) for _ in range(2))
            same = min(copy_floor(twin.engine, minute, ("events", "invocations"))
                       for _ in range(2))
            stored += len(minute.event_rows)
            ratios.append(seconds / 60)
            store_ratios.append(writing / 60)
            bare_x.append(writing / floor)
            same_x.append(writing / same)
            per_event = store_bytes(store.engine) / max(stored, 1)
            print(f"{n + 1:>6}  {seconds:>9.1f}  {seconds / 60:>5.3f}  {writing:>7.1f}  "
                  f"{writing / 60:>5.3f}  {floor:>6.2f}  {writing / floor:>6.1f}  "
                  f"{same:>6.2f}  {writing / same:>6.1f}  {per_event:>11.0f}  "
                  f"{store.dirty_minutes():>9}", flush=True)
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
        x_bare, x_same = sum(bare_x) / len(bare_x), sum(same_x) / len(same_x)
        print(f"average ratio {average:.3f} (collector paths; {writes:.3f} in write_batch), "
              f"trend {slope(ratios):+.4f} per minute (first {ratios[0]:.3f}, last "
              f"{ratios[-1]:.3f}; write_batch {slope(store_ratios):+.4f} per minute, first "
              f"{store_ratios[0]:.3f}, last {store_ratios[-1]:.3f})")
        print(f"write_batch {x_bare:.1f}x a plain COPY into bare tables, {x_same:.1f}x a COPY "
              f"into the same partitioned, indexed tables; {per_event:.0f} bytes/event "
              f"({exact:,} events), last rollups settled in {settle_s:.1f} s")
        print(f"bytes per event by table: {table_bytes(store.engine, max(exact, 1))}")
        print(f"traffic generation (untimed): {generated:.0f} s; whole run "
              f"{time.perf_counter() - run_began:.0f} s")
        result("peak ratio" if args.peak else "average ratio", average,
               TARGET_PEAK if args.peak else TARGET_AVERAGE)
        if len(ratios) < 3:
            print("RESULT trend of the ratio per minute: not checked (fewer than 3 minutes)")
        else:
            result("trend of the ratio per minute", slope(ratios), 0.01)
        result("write_batch as a multiple of a plain COPY (bare tables)", x_bare,
               TARGET_FLOOR, "x")
        print(f"RESULT write_batch as a multiple of a COPY into the same tables: {x_same:.3f}x "
              "(for information: the engine's floor for this schema)")
        result("bytes per event", per_event, TARGET_BYTES, " B")
    finally:
        store.engine.dispose()
        if twin is not None:
            twin.engine.dispose()
        if not args.keep:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
                conn.exec_driver_sql(f"DROP SCHEMA {schema}_floor CASCADE")
        admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
