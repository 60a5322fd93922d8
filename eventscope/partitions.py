"""PostgreSQL day partitions: the partitioned layout of the big tables, and its upkeep.

Owns what only a PostgreSQL store has (SQLite keeps the plain tables of `eventscope.tables`):

- `create_layout`: a NEW PostgreSQL store gets `events`, `invocations`, `deliveries` and
  `quarantine` range-partitioned by day on their time column, each with a DEFAULT partition
  (no row is ever refused for want of a partition), lz4 compression of its big text
  columns kept in the row (storage MAIN, `toast_tuple_target` on every partition: PostgreSQL
  still compresses only rows past ~2 KB), and its fixed-width columns first (no padding).
  PostgreSQL wants the partition key in every unique constraint, so the keys become:
  events (id, time_ms) -- EventBridge ids are unique per event and a redelivery carries the
  same `time`, so an event is still stored once; deliveries (key, time_ms) -- the key hashes
  the log record, which holds its time; invocations keep (request_id, start_ms); quarantine
  (key, quarantined_ms), its idempotency on `key` kept by the write (`QUARANTINE_INSERT`).
  A store created before this layout keeps its unpartitioned tables (`layout` says which).
- `ensure_days`: the day partitions a batch needs (and today..+`AHEAD_DAYS`), created before
  the batch's transaction, remembered per process so the check is a set lookup.
- `drop_before`: retention on PostgreSQL drops whole day partitions older than a cutoff.

Indexes (each one a finding or the write uses; checked with EXPLAIN on a filled store):
events: (id, time_ms) key (idempotent insert; joins from invocations by id); (correlation_key,
time_ms, detail_type, id) (lifecycle of an order; the missing-subscription finding, covering);
(detail_type, time_ms) (a type's events, newest first); BRIN on time_ms (rollup recomputation
of a few minutes; time-ordered data: a few pages per range).
invocations: (request_id, start_ms) key (upsert); (event_id, consumer) (join to events,
handling pairs; covering for the missing-subscription finding); (consumer, start_ms) (latest
attempts per function); BRIN on start_ms (rollup recomputation).
deliveries: key, event_id, (target_arn, time_ms). quarantine: its key, BRIN on time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventscope.tables import DAY_MS, deliveries, events, invocations, quarantine

AHEAD_DAYS = 3  # partitions exist from today to today + 3 before any row needs them
BACKFILL_DAYS = 400  # a batch's older days get partitions back to this; older rows: default
LOCK_TIMEOUT = "2s"  # a partition that cannot be created now is tried again by a later batch
# table -> its time column (the partition key)
TIME_COLUMNS = {"events": "time_ms", "invocations": "start_ms", "deliveries": "time_ms",
                "quarantine": "quarantined_ms"}
# Columns compressed with lz4 where the server has it (PostgreSQL 14+ built --with-lz4), kept
# in the row (storage MAIN: out of line only past a page), on partitions whose rows are
# compressed from TOAST_TARGET bytes: PostgreSQL's default (~2 KB) left ~1 KB details whole.
TOAST_TARGET = 128
STORAGE_OPTIONS = f"toast_tuple_target = {TOAST_TARGET}"
COMPRESSED = {"events": ("detail", "resources"), "invocations": ("error_message",),
              "deliveries": ("error_message",), "quarantine": ("detail", "raw")}
LAYOUT_KEY = "layout"  # in `meta`: "day-partitioned" for stores made with this layout
PARTITIONED = "day-partitioned"

_layout_metadata = sa.MetaData()


# Fixed-width columns first, widest first, then the variable-width ones: no alignment padding
# between a text and the bigint after it (columns are read and written by name).
_ALIGNMENT = {sa.BigInteger: 0, sa.Float: 0, sa.Integer: 1, sa.Boolean: 2}


def _aligned(table: sa.Table) -> list[sa.Column[Any]]:
    return sorted(table.columns, key=lambda c: _ALIGNMENT.get(type(c.type), 3))


def _partitioned(table: sa.Table, time_btree: str | None) -> sa.Table:
    """A copy of `table` partitioned by day on its time column, the time added to its key,
    its plain-btree index on time replaced by BRIN, its fixed-width columns first."""
    time_column = TIME_COLUMNS[table.name]
    key = key_columns(table.name)
    columns = [sa.Column(c.name, c.type, nullable=c.nullable and c.name not in key,
                         autoincrement=False)
               for c in _aligned(table)]
    indexes = [sa.Index(ix.name, *(c.name for c in ix.columns)) for ix in table.indexes
               if ix.name != time_btree]
    # the key in its own order, not the columns': its index answers lookups by id alone
    return sa.Table(table.name, _layout_metadata, *columns, *indexes,
                    sa.PrimaryKeyConstraint(*key, name=key_name(table.name)),
                    sa.Index(f"brin_{table.name}_{time_column}", time_column,
                             postgresql_using="brin"),
                    postgresql_partition_by=f"RANGE ({time_column})")


_TABLES = {t.name: t for t in (events, invocations, deliveries, quarantine)}


def key_columns(table: str) -> list[str]:
    """A partitioned table's primary key: the plain table's key first (its index serves
    lookups by it: an event by id, an invocation by request id, a quarantined line by its
    key), then the partition's time column when the plain key lacks it."""
    key = [c.name for c in _TABLES[table].primary_key.columns]
    return key + [column for column in [TIME_COLUMNS[table]] if column not in key]


def key_name(table: str) -> str:
    """The name of a partitioned table's primary key. Stores made before the key was put
    in order have `<table>_pkey` (PostgreSQL's default name), led by the time column."""
    return f"pk_{table}"


def keys_in_order(relations: set[str]) -> bool:
    """Whether a store (its tables' and indexes' names) has no partitioned table whose key
    leads with its time column (`reorder_keys` has nothing to do)."""
    return not any(f"{name}_pkey" in relations and f"{name}_default" in relations
                   for name in _TABLES)


def reorder_keys(conn: Connection) -> list[str]:
    """On a partitioned store made before its keys were put in order: rebuild each key led
    by the time column as `key_columns` orders it (once; every partition's index is
    rebuilt, under the caller's schema lock). Returns the tables changed."""
    found = set(conn.exec_driver_sql(
        "SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'p' AND "
        "conname = conrelid::regclass::text || '_pkey' AND "
        "connamespace = current_schema()::regnamespace AND "
        "conrelid IN (SELECT partrelid FROM pg_partitioned_table)").scalars())
    changed = []
    for name in _TABLES:
        if name in found:
            conn.exec_driver_sql(
                f"ALTER TABLE {name} DROP CONSTRAINT {name}_pkey, ADD CONSTRAINT "
                f"{key_name(name)} PRIMARY KEY ({', '.join(key_columns(name))})")
            changed.append(name)
    return changed


@cache
def layout() -> tuple[sa.Table, ...]:
    """The partitioned tables, built at first use: their PostgreSQL-only index options load
    SQLAlchemy's PostgreSQL dialect, which a SQLite store's start-up should not pay for."""
    return (
        _partitioned(events, "ix_events_time"),
        _partitioned(invocations, "ix_invocations_start"),
        _partitioned(deliveries, None),
        _partitioned(quarantine, None),
    )

# The quarantine's idempotency on its key alone, as the unpartitioned table's primary key gave.
QUARANTINE_INSERT = (
    "INSERT INTO quarantine (key, origin, position, reason, detail, raw, quarantined_ms) "
    "SELECT %(key)s, %(origin)s, %(position)s, %(reason)s, %(detail)s, %(raw)s, "
    "%(quarantined_ms)s WHERE NOT EXISTS (SELECT 1 FROM quarantine WHERE key = %(key)s)")


def create_layout(conn: Connection) -> None:
    """Create the partitioned tables of a new store (their default partitions, lz4, today's
    partitions and those ahead). The caller holds the schema lock and creates the rest."""
    lz4 = has_lz4(conn)
    for table in layout():
        table.create(conn)
        for column in COMPRESSED[table.name]:  # partitions made later inherit both
            lz4_too = f", ALTER COLUMN {column} SET COMPRESSION lz4" if lz4 else ""
            conn.exec_driver_sql(f"ALTER TABLE {table.name} ALTER COLUMN {column} "
                                 f"SET STORAGE MAIN{lz4_too}")
        conn.exec_driver_sql(f"CREATE TABLE {table.name}_default PARTITION OF {table.name} "
                             f"DEFAULT WITH ({STORAGE_OPTIONS})")
    today = day_of(int(time.time() * 1000))
    for table in layout():
        for day in range(today, today + (AHEAD_DAYS + 1) * DAY_MS, DAY_MS):
            _create_partition(conn, table.name, day)


def has_lz4(conn: Connection) -> bool:
    """True when the server can compress columns with lz4."""
    return bool(conn.exec_driver_sql(
        "SELECT EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
        "AND 'lz4' = ANY(enumvals))").scalar())


def is_partitioned(conn: Connection, table: str = "events") -> bool:
    """True when the table (in the connection's search path) is a partitioned one."""
    return bool(conn.exec_driver_sql(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = "
        "to_regclass(%(t)s))", {"t": table}).scalar())


def day_of(ms: int) -> int:
    return ms - ms % DAY_MS


def partition_name(table: str, day_ms: int) -> str:
    """`events_p20261201` for the day starting at `day_ms` (UTC)."""
    day = datetime.fromtimestamp(day_ms / 1000, tz=timezone.utc)
    return f"{table}_p{day:%Y%m%d}"


def wanted_days(times_ms: Iterable[int], now_ms: int) -> set[int]:
    """The days partitions should exist for: every day of `times_ms` within
    [today - BACKFILL_DAYS, today + AHEAD_DAYS], and today..today + AHEAD_DAYS. Rows outside
    (a clock far off, a year-9999 timestamp) go to the default partition."""
    today = day_of(now_ms)
    low, high = today - BACKFILL_DAYS * DAY_MS, today + AHEAD_DAYS * DAY_MS
    days = {day_of(t) for t in times_ms}
    return {d for d in days if low <= d <= high} | set(range(today, high + 1, DAY_MS))


def existing_days(conn: Connection, table: str) -> set[int]:
    """Start (epoch ms) of every day partition of the table."""
    return {low for _name, low, _high in partitions(conn, table)}


_BOUND = re.compile(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")


def partitions(conn: Connection, table: str) -> list[tuple[str, int, int]]:
    """(name, low, high) of every range partition of the table, oldest first (the default
    partition left out)."""
    rows = conn.exec_driver_sql(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%(t)s)",
        {"t": table}).all()
    found = []
    for name, bound in rows:
        match = _BOUND.search(bound or "")
        if match:
            found.append((str(name), int(match.group(1)), int(match.group(2))))
    return sorted(found, key=lambda p: p[1])


def ensure_days(conn: Connection, table: str, days: Iterable[int]) -> list[int]:
    """Create the missing day partitions of `table` (in the caller's transaction, which
    should hold nothing else: creating a partition locks the parent briefly). Rows of such a
    day already in the default partition move into the new partition. Returns the days
    created."""
    have = existing_days(conn, table)
    created = []
    for day in sorted(set(days) - have):
        _create_partition(conn, table, day)
        created.append(day)
    return created


def _create_partition(conn: Connection, table: str, day: int) -> None:
    name, column, end = partition_name(table, day), TIME_COLUMNS[table], day + DAY_MS
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    strays = conn.exec_driver_sql(
        f"SELECT EXISTS (SELECT 1 FROM {table}_default WHERE {column} >= {day} "
        f"AND {column} < {end})").scalar()
    if not strays:
        conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} "
                             f"FOR VALUES FROM ({day}) TO ({end}) WITH ({STORAGE_OPTIONS})")
        return
    # Rows of this day already wait in the default partition: move them into the new one
    # (PostgreSQL refuses a partition whose range the default partition holds rows of).
    conn.exec_driver_sql(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS "
                         "INCLUDING CONSTRAINTS INCLUDING COMPRESSION INCLUDING STORAGE) "
                         f"WITH ({STORAGE_OPTIONS})")
    conn.exec_driver_sql(
        f"WITH moved AS (DELETE FROM {table}_default WHERE {column} >= {day} AND "
        f"{column} < {end} RETURNING *) INSERT INTO {name} SELECT * FROM moved")
    conn.exec_driver_sql(f"ALTER TABLE {table} ATTACH PARTITION {name} "
                         f"FOR VALUES FROM ({day}) TO ({end})")


def drop_before(conn: Connection, table_name: str, cutoff_ms: int) -> list[str]:
    """Drop every day partition of the table whose whole day is before `cutoff_ms`; return
    their names, oldest first. Rows older than the cutoff in the default partition stay
    (delete them in batches, as on SQLite); an unpartitioned table drops nothing. Dropping
    locks the parent briefly: past `LOCK_TIMEOUT` (a long reader) it raises
    `sqlalchemy.exc.OperationalError` and drops nothing; try again later (the timeout
    holds for the rest of the caller's transaction)."""
    if table_name not in TIME_COLUMNS:
        raise ValueError(f"{table_name!r} is not a day-partitioned table")
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    dropped = []
    for name, _low, high in partitions(conn, table_name):
        if high <= cutoff_ms:
            conn.exec_driver_sql(f'DROP TABLE "{name}"')
            dropped.append(name)
    return dropped
