"""The store: one SQLAlchemy Core schema on SQLite (embedded default) or PostgreSQL (teams).

Owns the engine set-up for both engines and every write and count eventscope makes; the
tables are in `eventscope.tables`, rollup maintenance in `eventscope.rollups`. Writes are
idempotent on natural keys (the event id; an invocation's request id and start), and one
`write_batch` call is one transaction, so a collector's checkpoint advances only with the data
it covers. Opening a store brings one made by an older eventscope up to date; one already up
to date (every command opens the store) is only read: three reads, no DDL.
"""

from __future__ import annotations

import hashlib
import operator
import os
import sqlite3
import time
import weakref
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from itertools import chain
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

# partitions, pg_write (PostgreSQL only) and retention (pruning) are imported by the functions
# using them: every command opens a store, and a reading one on SQLite needs none of them.
from eventscope import day_rollups, poison, rollups
from eventscope.errors import StoreError
from eventscope.extras import require
from eventscope.limits import QUARANTINE_RAW_CAP
from eventscope.pg_locks import PARTITIONS_LOCK, SCHEMA_LOCK, lock_store
from eventscope.records import EVENT_COLUMNS, BusEvent, Invocation, Quarantined, event_row
# The schema is re-exported: callers see the store and its tables in one place.
from eventscope.tables import (DURATION_BUCKETS, DURATION_EDGES_MS, MINUTE_MS,  # noqa: F401
                               PRUNED_DETAIL,
                               checkpoints, collector_status, contract_results, deliveries,
                               event_rollup, event_rollup_day, events, handling_rollup,
                               invocation_rollup,
                               invocations, meta, metadata, notifications, quarantine,
                               queue_depths, redactions, replay_audit, rollup_dirty,
                               rule_snapshots, rule_targets, upsert_dialect)
from eventscope.tables import EVENTS_SIDE, INVOCATIONS_SIDE

SCHEMA_VERSION = 1
SAMPLE_RATE_KEY = "sample_rate"  # in `meta`: see `Store.sample_rate`
DEFAULT_URL = "sqlite:///eventscope.db"
_TIME = EVENT_COLUMNS.index("time_ms")

_INVOCATION_UPDATABLE = [c.name for c in invocations.columns if not c.primary_key]
_OK: Any = sa.literal_column("'ok'")  # in the SQL text: rows are given positionally
# What an engine raises for one row it cannot take (as opposed to a store that is down):
# a constraint or a value refused by the server, or by the driver before sending it.
_ROW_ERRORS = (sa.exc.DataError, sa.exc.IntegrityError, ValueError, OverflowError)


@dataclass
class WriteResult:
    """How many rows one batch added; the rest of what was offered was already stored."""

    events: int = 0
    invocations: int = 0
    quarantined: int = 0


def resolve_url(url: str | None) -> str:
    """The store URL to use: the argument, else $EVENTSCOPE_DB, else the SQLite default."""
    chosen = url or os.environ.get("EVENTSCOPE_DB") or DEFAULT_URL
    if chosen.startswith("postgresql://") or chosen.startswith("postgres://"):
        chosen = "postgresql+psycopg://" + chosen.split("://", 1)[1]
    return chosen


# The engines `create_engine` made in this process and still alive: a command-line process
# closes their connections before it exits (`close_engines`, called by `cli.run`).
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def create_engine(url: str | None = None) -> Engine:
    """An engine for the URL, with SQLite set to WAL and a busy timeout."""
    engine = _engine_for(resolve_url(url))
    _ENGINES.add(engine)
    return engine


def close_engines() -> None:
    """Close the pooled connections of every engine `create_engine` made in this process
    that is still alive. The last connection to a SQLite store to close checkpoints its
    write-ahead log and removes its -wal and -shm files."""
    for engine in list(_ENGINES):
        engine.dispose()


def _engine_for(resolved: str) -> Engine:
    try:
        parsed = sa.engine.make_url(resolved)
    except sa.exc.ArgumentError:
        raise StoreError(f"not a database URL: {resolved!r} (try sqlite:///file.db or "
                         "postgresql://user@host/db)") from None
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            return _sqlite_engine(parsed)
        if backend == "postgresql":
            if parsed.get_driver_name() == "psycopg":  # the driver the postgres extra brings
                require("postgres", "psycopg", feature="a PostgreSQL store")
            return sa.create_engine(parsed, pool_pre_ping=True)
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"cannot use {resolved!r}: {_first_line(exc)}") from None
    raise StoreError(f"unsupported database {backend!r} in {resolved!r}: use sqlite or postgresql")


# Pages of 16 KiB for a new SQLite file (an existing one keeps its own): an event row is about
# 1 KB, so the default 4 KiB page holds three; with 16 KiB ones, batch inserts run a quarter
# faster (bench/ingest_bench.py). SQLite applies it only before the file's first table.
SQLITE_PAGE_SIZE = 16384


def _sqlite_engine(url: sa.engine.URL) -> Engine:
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")  # before WAL: WAL fixes it
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        # FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on a power loss, and
        # the tap deletes SQS messages right after a commit (an acknowledged event lost).
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    return engine


class Store:
    """The store behind one URL: schema set-up, idempotent batch writes, counts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._recorded_rate: float | None = None  # last `record_sample_rate`, not written twice
        # Rollups are the writers' work (readers never refresh): after each batch that changed
        # rows, the minutes more than `rollup_lag_ms` before the batch's oldest row are
        # recomputed (0: every dirty minute, so a reader right after a write sees it; a
        # busy writer sets a lag so each minute is recomputed about once). None: the
        # caller refreshes itself (`eventscope ingest` settles behind what it reads).
        # $EVENTSCOPE_ROLLUP_LAG_MS sets it for deployed writers (the collector Lambdas).
        self.rollup_lag_ms: int | None = _rollup_lag_from_env()
        # PostgreSQL through psycopg 3: COPY into staging (`eventscope.pg_write`), and, on a
        # store with the day-partitioned layout, partitions made ahead (`partitions`).
        self._copy = engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
        self._partitioned: bool | None = None if engine.dialect.name == "postgresql" else False
        self._partition_days: dict[str, set[int]] = {}

    # The write statements, each compiled at its first use: a reading command (the lifecycle,
    # a finding) opens a store and never writes.

    @cached_property
    def _insert_event(self) -> _Compiled:
        compiled = _Compiled(self.engine, upsert_dialect(self.engine.dialect).insert(events)
                             .on_conflict_do_nothing())
        if tuple(compiled.names) != EVENT_COLUMNS:  # event rows are plain tuples
            raise RuntimeError("records.EVENT_COLUMNS no longer matches the events table")
        return compiled

    @cached_property
    def _insert_quarantine(self) -> _Compiled:
        return _Compiled(self.engine, upsert_dialect(self.engine.dialect).insert(quarantine)
                         .on_conflict_do_nothing())

    @cached_property
    def _upsert_invocation(self) -> _Compiled:
        upsert = upsert_dialect(self.engine.dialect).insert(invocations)
        stored, offered = invocations.c, upsert.excluded
        return _Compiled(self.engine, upsert.on_conflict_do_update(
            index_elements=[stored.request_id, stored.start_ms],
            set_={name: offered[name] for name in _INVOCATION_UPDATABLE},
            where=sa.and_(offered.complete, sa.or_(  # a partial row completed, or a failure
                sa.not_(stored.complete),            # learnt late: ok -> error/timeout only
                sa.and_(stored.outcome == _OK, offered.outcome != _OK))),
        ))

    @cached_property
    def _mark_dirty(self) -> _Compiled:
        mark = upsert_dialect(self.engine.dialect).insert(rollup_dirty)
        # DO UPDATE, not DO NOTHING: it locks an existing mark, so on PostgreSQL a refresh
        # deleting that mark waits for this batch to commit and then reads its rows; and an
        # existing mark keeps its sides and gains the offered ones.
        return _Compiled(self.engine, mark.on_conflict_do_update(
            index_elements=[rollup_dirty.c.minute_ms],
            set_={"sides": rollup_dirty.c.sides.op("|")(mark.excluded.sides)}))

    @cached_property
    def _upsert_meta(self) -> _Compiled:
        meta_row = upsert_dialect(self.engine.dialect).insert(meta)
        return _Compiled(self.engine, meta_row.on_conflict_do_update(
            index_elements=[meta.c.key], set_={"value": meta_row.excluded.value}))

    @cached_property
    def _upsert_checkpoint(self) -> _Compiled:
        checkpoint = upsert_dialect(self.engine.dialect).insert(checkpoints)
        return _Compiled(self.engine, checkpoint.on_conflict_do_update(
            index_elements=[checkpoints.c.collector, checkpoints.c.key],
            set_={"value": checkpoint.excluded.value,
                  "updated_ms": checkpoint.excluded.updated_ms},
        ))

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def create_schema(self) -> None:
        """Create missing tables and indexes and bring a store made by an older eventscope up
        to date (`rollups.prepare_rollups`, `day_rollups.prepare_day_rollups`); refuse a
        store made by a newer eventscope. A store already up to date (the common case: every
        command opens the store) costs three reads, no write and no lock (`_current_version`)."""
        try:
            with self.engine.connect() as conn:
                found = _current_version(conn)
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot open store {self.url}: {_first_line(exc)}") from None
        if found is None:
            self._update_schema()
        elif int(found) > SCHEMA_VERSION:
            raise StoreError(f"store {self.url} has schema version {found}, newer than "
                             f"this eventscope's {SCHEMA_VERSION}: upgrade eventscope")

    def _update_schema(self) -> None:
        """`create_schema` on a store that needs it: every check and step, under the schema
        lock on PostgreSQL."""
        from eventscope import partitions
        try:
            with self.engine.begin() as conn:
                if self.engine.dialect.name == "postgresql":  # several processes may start at once
                    lock_store(conn, SCHEMA_LOCK)
                had_rollups = sa.inspect(conn).has_table(rollup_dirty.name)
                had_days = sa.inspect(conn).has_table(event_rollup_day.name)
                new_layout = (self.engine.dialect.name == "postgresql"
                              and not sa.inspect(conn).has_table(events.name))
                if new_layout:
                    partitions.create_layout(conn)  # a new PostgreSQL store: by day
                    had_rollups = True  # its time indexes are BRIN ones, nothing to mark
                metadata.create_all(conn)
                if new_layout:
                    conn.execute(meta.insert().values(key=partitions.LAYOUT_KEY,
                                                      value=partitions.PARTITIONED))
                if self.engine.dialect.name == "postgresql":
                    partitions.reorder_keys(conn)  # a store made before its keys' order
                rollups.prepare_rollups(conn, had_rollups)
                day_rollups.prepare_day_rollups(conn, had_days)
                found = conn.execute(
                    sa.select(meta.c.value).where(meta.c.key == "schema_version")
                ).scalar()
                if found is None:
                    conn.execute(meta.insert().values(key="schema_version",
                                                      value=str(SCHEMA_VERSION)))
                elif int(found) > SCHEMA_VERSION:
                    raise StoreError(f"store {self.url} has schema version {found}, newer than "
                                     f"this eventscope's {SCHEMA_VERSION}: upgrade eventscope")
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot open store {self.url}: {_first_line(exc)}") from None

    def write_batch(
        self,
        events_: Sequence[BusEvent] | Sequence[tuple[Any, ...]] = (),
        invocations_: Sequence[Invocation] = (),
        quarantined: Sequence[Quarantined] = (),
        checkpoints_: Mapping[tuple[str, str], str] | None = None,
        extra_rows: Mapping[sa.Table, Sequence[dict[str, Any]]] | None = None,
        sample_rate: float | None = None,
        *,
        settle: bool = True,
        expect_checkpoints: Mapping[tuple[str, str], str | None] | None = None,
    ) -> WriteResult:
        """Write everything given in one transaction and return how many rows were new.

        Events are `BusEvent`s or already their rows (`records.event_row`), as parallel
        ingest hands them over. `sample_rate`, when given, is recorded as the store's (see
        `sample_rate`) with the rows sampled at it.

        No value takes the batch down (`eventscope.poison`): text a store cannot hold is
        escaped, a row that cannot be stored at all is quarantined with its reason (origin
        `store`). Should the engine still refuse a row, the batch is written apart (halves,
        down to single rows, each refused row quarantined) and the checkpoints and sample
        rate go with the last part, after every row they cover.

        Then, with `settle` (the default), the writer refreshes the rollups the batch made
        stale (see `rollup_lag_ms`); `eventscope ingest` passes False and settles itself.

        `expect_checkpoints` makes the batch conditional: each named checkpoint (which
        `checkpoints_` must give a new value) is replaced only if it still holds the value
        given (None: absent), checked and replaced first, in the batch's transaction. If
        another writer changed one since it was read, nothing of the batch is written and
        `CheckpointMoved` is raised: the caller reads the checkpoint again and redoes its
        work (two Lambda runs on one log stream at once). A batch written apart claims with
        its last part, so its earlier parts may be stored when that is raised: the redone
        batch finds them stored (every write is idempotent), nothing is counted twice.
        """
        event_rows = _event_rows(events_)
        rows, refused = _storable(event_rows, invocations_, quarantined, extra_rows)
        event_rows, invocations_, quarantined, extra_rows = rows
        quarantined = [*quarantined, *refused]
        if self._partitioned is not False:
            self._ensure_partitions(event_rows, invocations_, quarantined, extra_rows)
        clean_checkpoints = {(poison.escape_text(c), poison.escape_text(k)): poison.escape_text(v)
                             for (c, k), v in (checkpoints_ or {}).items()}
        claims = _claims(clean_checkpoints, expect_checkpoints or {})
        try:
            result = self._write_once(event_rows, invocations_, quarantined, clean_checkpoints,
                                      extra_rows, sample_rate, claims)
        except _ROW_ERRORS:
            result = self._write_apart(event_rows, invocations_, quarantined, clean_checkpoints,
                                       extra_rows, sample_rate, claims)
        if sample_rate is not None:
            self._recorded_rate = sample_rate
        if settle and self.rollup_lag_ms is not None and (result.events or result.invocations):
            self.settle_rollups(event_rows, invocations_)
        return result

    def settle_rollups(self, event_rows: Sequence[tuple[Any, ...]] = (),
                       invocations_: Sequence[Invocation] = ()) -> int:
        """The writer's rollup work after a batch: recompute the dirty minutes more than
        `rollup_lag_ms` before the batch's oldest row (every dirty minute with no lag)."""
        lag = self.rollup_lag_ms
        if lag is None:
            return 0
        if lag == 0:
            return self.refresh_rollups()
        times = [int(row[_TIME]) for row in event_rows] + [i.start_ms for i in invocations_]
        if not times:
            return 0
        oldest = min(times)
        return self.refresh_rollups(before=oldest - oldest % MINUTE_MS - lag)

    def _ensure_partitions(self, event_rows: Sequence[tuple[Any, ...]],
                           invocations_: Sequence[Invocation],
                           quarantined: Sequence[Quarantined],
                           extra_rows: Mapping[sa.Table, Sequence[dict[str, Any]]]) -> None:
        """Create the day partitions the batch needs before its transaction (PostgreSQL,
        day-partitioned layout); a set lookup when they exist. A partition that cannot be
        made now (a lock held too long) is not an error: its rows go to the default one."""
        from eventscope import partitions
        now = int(time.time() * 1000)
        times = {"events": [int(row[_TIME]) for row in event_rows],
                 "invocations": [i.start_ms for i in invocations_],
                 "deliveries": [int(r["time_ms"]) for r in extra_rows.get(deliveries, ())],
                 "quarantine": [now] if quarantined else []}
        wanted = {table: partitions.wanted_days(ms, now) for table, ms in times.items() if ms}
        missing = {table: days - self._partition_days.get(table, set())
                   for table, days in wanted.items()}
        if not any(missing.values()):
            return
        try:
            with self.engine.begin() as conn:
                if self._partitioned is None:
                    self._partitioned = partitions.is_partitioned(conn)
                if not self._partitioned:
                    return
                lock_store(conn, PARTITIONS_LOCK)
                for table, days in missing.items():
                    if days:
                        partitions.ensure_days(conn, table, days)
                        self._partition_days[table] = partitions.existing_days(conn, table)
        except sa.exc.OperationalError:
            self._partition_days.clear()  # ask the server again next time

    def _write_once(self, event_rows: Sequence[tuple[Any, ...]],
                    invocations_: Sequence[Invocation], quarantined: Sequence[Quarantined],
                    checkpoints_: Mapping[tuple[str, str], str],
                    extra_rows: Mapping[sa.Table, Sequence[dict[str, Any]]],
                    sample_rate: float | None,
                    claims: Sequence[_Claim] = ()) -> WriteResult:
        from eventscope import pg_write
        result = WriteResult()
        try:
            with self.engine.begin() as conn:
                for claim in claims:  # first: on PostgreSQL the row lock orders the writers
                    claim.take(conn)
                checkpoints_ = {key: value for key, value in checkpoints_.items()
                                if key not in {claim.key for claim in claims}}
                if self._copy:
                    result.events = pg_write.write_events(conn, event_rows)
                else:
                    result.events = self._execute(conn, self._insert_event, event_rows)
                invocations_, late_minutes = _apply_late_timeouts(conn, invocations_)
                if self._copy:
                    result.invocations = pg_write.write_invocations(conn, invocations_)
                else:
                    result.invocations = self._execute(conn, self._upsert_invocation,
                                                       invocations_)
                result.invocations += len(late_minutes)
                result.quarantined = self._write_quarantine(conn, quarantined)
                self._execute(conn, self._upsert_checkpoint, _checkpoint_rows(checkpoints_))
                for table, rows in extra_rows.items():  # collectors' own tables
                    self._execute(conn, self._insert_ignore(table), rows)
                if sample_rate is not None and sample_rate != self._recorded_rate:
                    self._execute(conn, self._upsert_meta,
                                  [{"key": SAMPLE_RATE_KEY, "value": repr(float(sample_rate))}])
                if result.events or result.invocations:
                    if self._copy:  # the events are still staged: one lookup
                        event_minutes, minutes = rollups.changed_minutes(
                            conn, (), invocations_ if result.invocations else ())
                        if result.events:
                            event_minutes.update(rollups.minute_of(int(row[_TIME]))
                                                 for row in event_rows)
                            minutes.update(pg_write.related_minutes(conn))
                    else:
                        event_minutes, minutes = rollups.changed_minutes(
                            conn, event_rows if result.events else (),
                            invocations_ if result.invocations else ())
                    minutes.update(late_minutes)
                    self._execute(conn, self._mark_dirty, _marks(event_minutes, minutes))
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot write to store {self.url}: {_first_line(exc)}") from None
        return result

    def _write_apart(self, event_rows: Sequence[tuple[Any, ...]],
                     invocations_: Sequence[Invocation], quarantined: Sequence[Quarantined],
                     checkpoints_: Mapping[tuple[str, str], str],
                     extra_rows: Mapping[sa.Table, Sequence[dict[str, Any]]],
                     sample_rate: float | None,
                     claims: Sequence[_Claim] = ()) -> WriteResult:
        """A batch the engine refused, written in parts so only the refused rows are left out
        (quarantined as `store_rejected`); checkpoints (and their claims) and sample rate go
        last."""
        total, refused = WriteResult(), []

        def part(kind: str, rows: Sequence[Any], write: Any, label: Any) -> None:
            try:
                written = write(rows)
            except _ROW_ERRORS as exc:
                if len(rows) > 1:
                    middle = len(rows) // 2
                    part(kind, rows[:middle], write, label)
                    part(kind, rows[middle:], write, label)
                    return
                refused.append(Quarantined(
                    origin="store", position=f"{kind} {poison.escape_text(str(label(rows[0])))}",
                    reason="store_rejected", detail=_first_line(exc)[:500],
                    raw=_raw_of(rows[0])))
                return
            total.events += written.events
            total.invocations += written.invocations
            total.quarantined += written.quarantined

        def once(name: str) -> Any:
            """Writes rows as the batch's `name` argument alone."""
            return lambda rows: self._write_once(**{**nothing, name: rows})

        nothing: dict[str, Any] = {"event_rows": (), "invocations_": (), "quarantined": (),
                                   "checkpoints_": {}, "extra_rows": {}, "sample_rate": None}
        part("event", event_rows, once("event_rows"), operator.itemgetter(0))
        part("invocation", invocations_, once("invocations_"), operator.attrgetter("request_id"))
        part("quarantine", quarantined, once("quarantined"), operator.attrgetter("position"))
        for table, rows in extra_rows.items():
            part(table.name, rows,
                 lambda r, t=table: self._write_once(**{**nothing, "extra_rows": {t: r}}),
                 lambda row: next(iter(row.values()), "?"))
        last = self._write_once((), (), refused, checkpoints_, {}, sample_rate, claims)
        total.quarantined += last.quarantined
        return total

    def _write_quarantine(self, conn: Connection, quarantined: Sequence[Quarantined]) -> int:
        rows = [_quarantine_row(q) for q in quarantined]
        if not rows or not self._partitioned:
            return self._execute(conn, self._insert_quarantine, rows)
        # partitioned: the key (key, day) no longer says "same input"; the key alone does
        from eventscope import partitions
        return sum(max(conn.exec_driver_sql(partitions.QUARANTINE_INSERT, row).rowcount, 0)
                   for row in rows)

    @staticmethod
    def _execute(conn: Connection, statement: _Compiled, rows: Sequence[Any]) -> int:
        return sum(max(conn.exec_driver_sql(sql, params).rowcount, 0)
                   for sql, params in statement.runs(conn, rows))

    def checkpoint(self, collector: str, key: str) -> str | None:
        """The last committed checkpoint value of a collector for one key, if any."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(checkpoints.c.value).where(
                    checkpoints.c.collector == collector, checkpoints.c.key == key)
            ).scalar()

    def counts(self) -> dict[str, Any]:
        """Headline counts of what the store holds."""
        with self.engine.connect() as conn:
            by_outcome: dict[str, int] = dict(conn.execute(
                sa.select(invocations.c.outcome, sa.func.count()).group_by(invocations.c.outcome)
            ).all())
            by_reason: dict[str, int] = dict(conn.execute(
                sa.select(quarantine.c.reason, sa.func.count()).group_by(quarantine.c.reason)
            ).all())
            return {
                "events": _scalar(conn, sa.select(sa.func.count()).select_from(events)),
                "detail_types": _scalar(conn, sa.select(
                    sa.func.count(sa.distinct(events.c.detail_type)))),
                "invocations": sum(by_outcome.values()),
                "invocations_by_outcome": {o: by_outcome.get(o, 0)
                                           for o in ("ok", "error", "timeout")},
                "failed_invocations": by_outcome.get("error", 0) + by_outcome.get("timeout", 0),
                "unattributed_invocations": _scalar(conn, sa.select(sa.func.count()).where(
                    invocations.c.event_id.is_(None))),
                "quarantined": sum(by_reason.values()),
                "quarantined_by_reason": by_reason,
            }

    # --- collectors tables ---
    def _insert_ignore(self, table: sa.Table) -> _Compiled:
        """An insert-or-ignore statement for one of the collectors' tables, compiled once."""
        cache: dict[str, _Compiled] = self.__dict__.setdefault("_insert_ignore_cache", {})
        if table.name not in cache:
            dialect = upsert_dialect(self.engine.dialect)
            cache[table.name] = _Compiled(
                self.engine, dialect.insert(table).on_conflict_do_nothing())
        return cache[table.name]

    def write_rows(self, rows: Mapping[sa.Table, Sequence[dict[str, Any]]]) -> None:
        """Insert-or-ignore rows into collectors' tables in one transaction."""
        self.write_batch(extra_rows=rows)

    def select_rows(self, statement: Any) -> list[dict[str, Any]]:
        """The rows of a read-only select, as dicts."""
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(statement)]

    def pii_key(self) -> bytes:
        """The store's own redaction key (made once, kept in `meta`), when none is configured."""
        try:
            return self._pii_key()
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot read store {self.url}: {_first_line(exc)}") from None

    def _pii_key(self) -> bytes:
        with self.engine.begin() as conn:
            found = conn.execute(sa.select(meta.c.value).where(meta.c.key == "pii_key")).scalar()
            if found is None:
                dialect = upsert_dialect(self.engine.dialect)
                conn.execute(dialect.insert(meta).values(key="pii_key", value=os.urandom(32).hex())
                             .on_conflict_do_nothing())
                found = conn.execute(
                    sa.select(meta.c.value).where(meta.c.key == "pii_key")).scalar_one()
        return bytes.fromhex(found)

    # --- sampling ---
    def sample_rate(self) -> float:
        """The rate this store's bus events (and their invocations) are sampled at; 1 when no
        sampling collector has recorded one (`record_sample_rate`)."""
        with self.engine.connect() as conn:
            found = conn.execute(
                sa.select(meta.c.value).where(meta.c.key == SAMPLE_RATE_KEY)).scalar()
        return float(found) if found is not None else 1.0

    def record_sample_rate(self, rate: float) -> None:
        """Record the rate a collector samples at (the tap's): every later writer of
        invocations samples them by the same rate, and findings can scale counts by it.
        The last rate recorded is the store's: rows written earlier at another rate are
        not re-weighed."""
        self.write_batch(sample_rate=rate)

    def claim_replay(self, row: dict[str, Any]) -> bool:
        """Record a replay request; False when its idempotency key was already recorded."""
        try:
            with self.engine.begin() as conn:
                return self._execute(conn, self._insert_ignore(replay_audit), [row]) == 1
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot write to store {self.url}: {_first_line(exc)}") from None

    def finish_replay(self, request_key: str, status: str, result: str) -> None:
        """Record how a claimed replay ended."""
        with self.engine.begin() as conn:
            conn.execute(replay_audit.update().where(replay_audit.c.request_key == request_key)
                         .values(status=status, result=result,
                                 finished_ms=int(time.time() * 1000)))

    def put_status(self, row: dict[str, Any]) -> None:
        """Insert or replace one collector loop's status row (its heartbeat)."""
        dialect = upsert_dialect(self.engine.dialect)
        insert = dialect.insert(collector_status).values(**row)
        statement = insert.on_conflict_do_update(
            index_elements=[collector_status.c.collector, collector_status.c.instance],
            set_={name: insert.excluded[name] for name in
                  ("heartbeat_ms", "state", "counters", "last_error")})
        try:
            with self.engine.begin() as conn:
                conn.execute(statement)
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot write to store {self.url}: {_first_line(exc)}") from None

    def put_queue_depth(self, row: dict[str, Any]) -> None:
        """Record the latest sample of a dead-letter queue (`queue_depths`), keeping when it
        first became non-empty: the sample's `nonempty_since_ms` counts only when the stored
        row was empty (or absent)."""
        dialect = upsert_dialect(self.engine.dialect)
        insert = dialect.insert(queue_depths).values(**row)
        stored = queue_depths.c
        statement = insert.on_conflict_do_update(
            index_elements=[stored.queue],
            set_={"source_queue": insert.excluded.source_queue,
                  "observed_ms": insert.excluded.observed_ms,
                  "messages": insert.excluded.messages,
                  "oldest_sent_ms": insert.excluded.oldest_sent_ms,
                  "nonempty_since_ms": sa.case(
                      (insert.excluded.messages == 0, None),
                      (stored.messages > 0, stored.nonempty_since_ms),
                      else_=insert.excluded.nonempty_since_ms)})
        try:
            with self.engine.begin() as conn:
                conn.execute(statement)
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot write to store {self.url}: {_first_line(exc)}") from None

    # --- catalog tables ---
    def write_contract_results(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Append contract results (one run) in one transaction; results keep their history."""
        if not rows:
            return 0
        try:
            with self.engine.begin() as conn:
                conn.execute(contract_results.insert(), [_contract_row(r) for r in rows])
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot write to store {self.url}: {_first_line(exc)}") from None
        return len(rows)

    def contract_results(self, latest_only: bool = False,
                         consumer: str | None = None) -> list[dict[str, Any]]:
        """Stored contract results, oldest first; `latest_only` keeps the newest per check."""
        query = sa.select(contract_results).order_by(contract_results.c.checked_ms,
                                                     contract_results.c.id)
        if consumer:
            query = query.where(contract_results.c.consumer == consumer)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        if not latest_only:
            return rows
        newest: dict[tuple[str, ...], dict[str, Any]] = {}
        for row in rows:
            newest[(row["consumer"], row["detail_type"], row["version"], row["check_kind"])] = row
        return list(newest.values())

    def iter_event_details(self, detail_type: str, source: str | None, version: str | None,
                           limit: int | None = None,
                           batch: int = 5000) -> Iterator[tuple[str, int, str]]:
        """(id, time_ms, detail JSON) of stored events of one type (and version), newest first;
        events whose payload retention cleared are left out."""
        query = sa.select(events.c.id, events.c.time_ms, events.c.detail).where(
            events.c.detail_type == detail_type, events.c.detail != PRUNED_DETAIL)
        if source is not None:
            query = query.where(events.c.source == source)
        if version is not None:
            query = query.where(events.c.version == version)
        query = query.order_by(events.c.time_ms.desc(), events.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=batch).execute(query)
            for row in result:
                yield row[0], row[1], row[2]

    def iter_events(self, batch: int = 5000) -> Iterator[tuple[str, str, str, int, str]]:
        """(id, source, detail_type, time_ms, detail JSON) of every stored event whose payload
        is kept (retention clears old ones)."""
        query = sa.select(events.c.id, events.c.source, events.c.detail_type, events.c.time_ms,
                          events.c.detail).where(events.c.detail != PRUNED_DETAIL)
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=batch).execute(query):
                yield row[0], row[1], row[2], row[3], row[4]

    def event_type_versions(self) -> list[tuple[str, str, str | None, int]]:
        """(source, detail_type, version, count) of every stored event type and version."""
        query = sa.select(events.c.source, events.c.detail_type, events.c.version,
                          sa.func.count()).group_by(events.c.source, events.c.detail_type,
                                                    events.c.version)
        with self.engine.connect() as conn:
            return [(r[0], r[1], r[2], int(r[3])) for r in conn.execute(query)]


    # --- findings tables ---
    def notified_fingerprints(self) -> set[str]:
        """Fingerprints of findings already notified and still open."""
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(notifications.c.fingerprint)).scalars())

    def record_notifications(self, sent: Sequence[Mapping[str, Any]],
                             current: Sequence[str]) -> None:
        """Remember newly sent findings; forget those no longer found, so a return re-alerts.

        `sent` rows have fingerprint, kind, subject (JSON text) and severity; `current` is
        every fingerprint found in this run.
        """
        now = int(time.time() * 1000)
        with self.engine.begin() as conn:
            if sent:
                conn.execute(notifications.insert(), [
                    {**row, "first_sent_ms": now, "last_seen_ms": now} for row in sent])
            conn.execute(notifications.update().where(
                notifications.c.fingerprint.in_(list(current))).values(last_seen_ms=now))
            conn.execute(notifications.delete().where(
                notifications.c.fingerprint.not_in(list(current))))

    # --- rollup tables ---
    def refresh_rollups(self, chunk_minutes: int = 720, before: int | None = None, *,
                        defer_days: bool = False) -> int:
        """Recompute the rollup rows of every dirty minute from raw rows; return how many.

        A (function, event) pair is counted in the minute of its first attempt, so a new
        attempt can move or change a pair counted in another minute: every minute holding an
        invocation of an event touched by a dirty minute is recomputed too. Each chunk of
        minutes (whole days while they fit in `chunk_minutes`: a chunk recomputes the day
        rows of its days, `rollups.day_chunks`) is one transaction that deletes its dirty
        marks *before* reading raw rows: a batch committed meanwhile either is read, or
        keeps its mark (see `write_batch`).

        With `before` (epoch ms), only minutes before it are recomputed: a minute at or
        after it that such a refresh would touch is marked dirty and waits for a later
        refresh (a bulk ingest settles the minutes behind what it reads). With `defer_days`
        too, so does the recomputation of the day rows of a day holding such a mark
        (`day_rollups.recompute_days`): a bulk ingest, which refreshes every mark at its end,
        so recomputes each day about once rather than at every settle point (a writer that
        keeps running does not: readers of whole days would miss the current one's).
        """
        from eventscope import retention
        with self.engine.connect() as conn:
            query = sa.select(rollup_dirty.c.minute_ms, rollup_dirty.c.sides)
            if before is not None:
                query = query.where(rollup_dirty.c.minute_ms < before)
            # minutes before the retention horizon lost their raw rows: their rollups are final
            pruned_before = retention.raw_pruned_before(conn) or 0
            query = query.where(rollup_dirty.c.minute_ms >= pruned_before)
            marks = conn.execute(query).all()
            if not marks:
                return 0
            dirty = {int(minute) for minute, _ in marks}
            event_side = {int(minute) for minute, sides in marks if sides & EVENTS_SIDE}
            invocation_side = {int(minute) for minute, sides in marks
                               if sides & INVOCATIONS_SIDE}
            # the related minutes hold pairs the dirty invocations may move: invocation side
            invocation_side |= {m for m in rollups.related_minutes(
                conn, sorted(invocation_side), chunk_minutes) if m >= pruned_before}
        minutes = dirty | invocation_side
        waiting = {m for m in minutes if before is not None and m >= before}  # related only
        ordered = sorted(minutes - waiting)
        try:
            if waiting:
                with self.engine.begin() as conn:
                    self._execute(conn, self._mark_dirty, _marks((), waiting))
            chunks = rollups.day_chunks(ordered, chunk_minutes)
            later = _later_days(chunks, (event_side, invocation_side))
            for ranges, (later_events, later_invocations) in zip(chunks, later):
                with self.engine.begin() as conn:
                    event_ranges, invocation_ranges = rollups.recompute(
                        conn, ranges, event_side, invocation_side)
                    deferred = before if defer_days else None
                    day_rollups.recompute_days(conn, event_ranges, deferred, EVENTS_SIDE,
                                               later_events)
                    day_rollups.recompute_days(conn, invocation_ranges, deferred,
                                               INVOCATIONS_SIDE, later_invocations)
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot refresh rollups in {self.url}: {_first_line(exc)}") from None
        return len(ordered)

    def dirty_minutes(self) -> int:
        """How many minutes wait for `refresh_rollups`."""
        with self.engine.connect() as conn:
            return _scalar(conn, sa.select(sa.func.count()).select_from(rollup_dirty))

    def rollup_lag(self) -> tuple[int, int | None]:
        """(minutes waiting for a writer's refresh, the oldest of them): how stale a reader
        of the rollups may be."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(sa.func.count(),
                                         sa.func.min(rollup_dirty.c.minute_ms))).one()
        return int(row[0]), None if row[1] is None else int(row[1])


def _later_days(chunks: Sequence[Sequence[tuple[int, int]]],
                sides: Sequence[Collection[int]]) -> list[list[set[int]]]:
    """For each chunk of a refresh, for each side (its minutes in `sides`): the days whose
    minutes of that side a later chunk recomputes, so recomputes the day rows of again
    (`day_rollups.recompute_days` leaves them to it while they hold marks). A dense day
    split between two chunks had its day rows (a whole day of minute rows grouped)
    recomputed twice."""
    found: list[list[set[int]]] = []
    after = [set[int]() for _ in sides]
    for ranges in reversed(chunks):
        found.append([set(days) for days in after])
        for days, minutes in zip(after, sides):
            days.update(day_rollups.day_of(minute) for low, high in ranges
                        for minute in range(low, high, MINUTE_MS) if minute in minutes)
    return found[::-1]


def _marks(event_minutes: Collection[int], invocation_minutes: Collection[int]
           ) -> list[dict[str, int]]:
    """Dirty marks of these minutes, each with the sides that changed, in minute order (the
    order PostgreSQL writers lock marks in)."""
    sides = dict.fromkeys(event_minutes, EVENTS_SIDE)
    for minute in invocation_minutes:
        sides[minute] = sides.get(minute, 0) | INVOCATIONS_SIDE
    return [{"minute_ms": minute, "sides": sides[minute]} for minute in sorted(sides)]


def _variable_limit(conn: Connection) -> int:
    """How many variables one SQLite statement may bind on this connection (the driver's
    `getlimit`; 999, the oldest default, where it cannot say)."""
    getlimit = getattr(conn.connection.dbapi_connection, "getlimit", None)
    if getlimit is None:
        return 999
    return min(int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)), _SQLITE_VARIABLES)


def _rollup_lag_from_env() -> int:
    value = os.environ.get("EVENTSCOPE_ROLLUP_LAG_MS", "0").strip() or "0"
    if not value.isdigit():
        raise StoreError(f"EVENTSCOPE_ROLLUP_LAG_MS must be a whole number of milliseconds, "
                         f"not {value[:40]!r}")
    return int(value)


# SQLite: the rows of a write are bound many to a statement (one multi-row VALUES) instead of
# one `sqlite3_step` per row through executemany. The driver hands the GIL back at every step
# and must win it back before the next row, which beside a busy Python thread (the ingest's
# assembly of the next batch) waits out the interpreter's switch interval row after row:
# 150,000 invocation upserts took 2 s alone and 516 s beside a pure-Python loop; bound 2,340
# to a statement, 3 s. Alone both cost the same. They run as INSERT OR FAIL: a statement of
# many rows that may abort (a NOT NULL column) makes SQLite keep a statement journal, a copy
# of every page it touches that the transaction had already changed (most of them, batch
# after batch): 150,000 more page writes to temporary files for 200,000 events. FAIL stops
# at the refused row without undoing the statement's earlier rows, which the transaction's
# rollback undoes anyway (`Store._write_apart` then writes the batch in parts).
_SQLITE_VARIABLES = 32_766  # SQLite's default limit on bound variables since 3.32
_TAIL_ROWS = (512, 64, 8, 1)  # statement sizes for a write's remainder: few ever prepared


class _Compiled:
    """A statement compiled once for an engine, run through the driver's executemany, or on
    SQLite as statements of many rows each (`runs`).

    SQLAlchemy's own executemany reports no row count on psycopg, and the count of new rows
    is what tells a stored row from a duplicate.
    """

    def __init__(self, engine: Engine, statement: Any) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self.positions = compiled.positiontup  # None for named parameter styles
        self.names = list(compiled.params)
        if self.positions is not None and list(self.positions) != self.names:
            raise RuntimeError(f"parameters out of column order in {self.sql}")
        self._values: tuple[str, str, str] | None = None  # the SQL around its VALUES row
        if engine.dialect.name == "sqlite" and self.positions is not None:
            one = "(" + ", ".join(["?"] * len(self.names)) + ")"
            head, found, tail = self.sql.partition(f" VALUES {one}")
            if found and one not in tail and head.startswith("INSERT INTO "):
                head = head.replace("INSERT INTO ", "INSERT OR FAIL INTO ", 1)
                self._values = (f"{head} VALUES ", "(" + ",".join("?" * len(self.names)) + ")",
                                tail)
        self._per_statement = 0
        self._multirow: dict[int, str] = {}

    def runs(self, conn: Connection, rows: Sequence[Any]) -> Iterator[tuple[str, Any]]:
        """(SQL, driver parameters) pairs that write `rows`, in order: one executemany, or on
        SQLite statements of as many rows as its variable limit allows, then of fewer
        (`_TAIL_ROWS`) for the remainder. A row meets the rows before it as it would in an
        executemany (SQLite inserts a VALUES list row by row)."""
        if not rows:
            return
        params = self.params(rows)
        if self._values is None:
            yield self.sql, params
            return
        if not self._per_statement:
            self._per_statement = max(1, _variable_limit(conn) // len(self.names))
        per, start = self._per_statement, 0
        for size in (per, *(tail for tail in _TAIL_ROWS if tail < per)):
            while len(params) - start >= size:
                yield self._statement_of(size), tuple(chain.from_iterable(
                    params[start:start + size]))
                start += size

    def _statement_of(self, count: int) -> str:
        """The statement writing `count` rows (built once per count)."""
        if count not in self._multirow:
            assert self._values is not None
            head, one, tail = self._values
            self._multirow[count] = head + ",".join([one] * count) + tail
        return self._multirow[count]

    def params(self, rows: Sequence[Any]) -> Sequence[Any]:
        """Driver parameters from dict rows, from plain tuples already in parameter order
        (`names`), or from records whose fields are the columns."""
        if type(rows[0]) is tuple:
            if self.positions is None:
                return [dict(zip(self.names, row)) for row in rows]
            return rows
        if isinstance(rows[0], dict):
            if self.positions is None:
                return list(rows)
            return [tuple(row[name] for name in self.positions) for row in rows]
        if self.positions is None:
            return [{name: getattr(row, name) for name in self.names} for row in rows]
        values = operator.attrgetter(*self.positions)
        return [values(row) for row in rows]


# The meta keys `_current_version` reads: our own constants, written into the SQL (a
# statement compiled by SQLAlchemy is compiled again by each new engine: every command's).
_META_KEYS = (f"SELECT key, value FROM {meta.name} WHERE key IN "
              f"('schema_version', '{rollups.LATENCY_KEY}', '{rollups.SIDES_KEY}')")
# The store's tables and indexes by name, from the catalog: one read. On PostgreSQL those the
# search path shows, as SQLAlchemy's `has_table` and `has_index` see them.
_RELATIONS = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')",
    "postgresql": "SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relkind IN "
                  "('r', 'p', 'i', 'I') AND pg_catalog.pg_table_is_visible(c.oid)",
}


def _current_version(conn: Connection) -> str | None:
    """The store's schema version when `create_schema` would change nothing in it (every
    table of `tables.metadata`, the rollups prepared, the day rollups filled, a version
    recorded), else None: three reads."""
    relations = set(conn.exec_driver_sql(_RELATIONS[conn.dialect.name]).scalars())
    if not set(metadata.tables) <= relations:
        return None
    if conn.dialect.name == "postgresql":
        from eventscope import partitions
        if not partitions.keys_in_order(relations):
            return None
    stored = {str(key): str(value) for key, value in conn.exec_driver_sql(_META_KEYS)}
    if ("schema_version" not in stored or not rollups.rollups_prepared(relations, set(stored))
            or day_rollups.days_to_fill(conn)):
        return None
    return str(stored["schema_version"])


def open_store(url: str | None = None, *, must_exist: bool = False) -> Store:
    """Open the store at the URL (see `resolve_url`) and create any missing tables.

    With `must_exist`, a SQLite file that is not there is an error rather than a new store
    (a reading command given a mistyped path should say so, not show an empty store).
    """
    engine = create_engine(url)
    database = engine.url.database
    if (must_exist and engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
            and not os.path.exists(database)):
        raise StoreError(f"no store at {database}: run `eventscope ingest` or a collector first")
    store = Store(engine)
    store.create_schema()
    return store


LATE_TIMEOUT_MS = 5_000  # how long after its REPORT a late "Task timed out" line may come


def _apply_late_timeouts(conn: Connection, offered: Sequence[Invocation]
                         ) -> tuple[Sequence[Invocation], list[int]]:
    """Late timeout lines read without their invocation (a later run, a later file) update it.

    The assembler gives such a line as a partial timeout with no end. When the same stream
    holds a complete ``ok`` invocation of that request id that ended at most
    `LATE_TIMEOUT_MS` before it, that row becomes a timeout (its first error message kept)
    instead of a second row being stored. Returns the invocations left to insert and the
    minutes of the rows updated (their rollups are stale).
    """
    late = [inv for inv in offered
            if not inv.complete and inv.end_ms is None and inv.outcome == "timeout"]
    if not late:
        return offered, []
    i = invocations.c
    updated: list[int] = []
    kept_apart: set[int] = set()
    for inv in late:
        target = conn.execute(sa.select(i.start_ms).where(
            i.request_id == inv.request_id, i.log_group == inv.log_group,
            i.log_stream == inv.log_stream, i.complete, i.outcome == "ok",
            i.end_ms <= inv.start_ms, i.end_ms >= inv.start_ms - LATE_TIMEOUT_MS,
        ).order_by(i.start_ms.desc()).limit(1)).scalar()
        if target is None:
            continue
        conn.execute(invocations.update().where(
            i.request_id == inv.request_id, i.start_ms == target, i.outcome == "ok").values(
            outcome=inv.outcome, error_type=inv.error_type,
            error_message=sa.func.coalesce(i.error_message, inv.error_message)))
        updated.append(rollups.minute_of(target))
        kept_apart.add(id(inv))
    if not kept_apart:
        return offered, []
    return [inv for inv in offered if id(inv) not in kept_apart], updated


def _event_rows(items: Sequence[BusEvent] | Sequence[tuple[Any, ...]]
                ) -> Sequence[tuple[Any, ...]]:
    if items and type(items[0]) is not tuple:
        return [event_row(event) for event in items]  # type: ignore[arg-type]
    return items  # type: ignore[return-value]


def _storable(event_rows: Sequence[tuple[Any, ...]], invocations_: Sequence[Invocation],
              quarantined: Sequence[Quarantined],
              extra_rows: Mapping[sa.Table, Sequence[dict[str, Any]]] | None
              ) -> tuple[tuple[Any, ...], list[Quarantined]]:
    """Every row made storable (`eventscope.poison`); those that cannot be, as quarantine."""
    refused: list[Quarantined] = []

    def keep(kind: str, rows: Sequence[Any], clean: Any, label: Any) -> list[Any]:
        kept = []
        for row in rows:
            try:
                kept.append(clean(row))
            except poison.Unstorable as exc:
                refused.append(Quarantined(
                    origin="store", position=f"{kind} {poison.escape_text(str(label(row)))}",
                    reason=exc.reason, detail=str(exc), raw=_raw_of(row)))
        return kept

    events_kept = list(event_rows) if poison.rows_are_clean(event_rows) else keep(
        "event", event_rows, lambda r: poison.clean_tuple(r, EVENT_COLUMNS),
        operator.itemgetter(0))
    invocations_kept = (list(invocations_)
                        if poison.rows_are_clean(map(_invocation_values, invocations_))
                        else keep("invocation", invocations_, clean_invocation,
                                  operator.attrgetter("request_id")))
    quarantine_kept = keep("quarantine", quarantined, poison.clean_record,
                           operator.attrgetter("position"))
    extra_kept = {table: keep(table.name, rows, poison.clean_mapping,
                              lambda row: next(iter(row.values()), "?"))
                  for table, rows in (extra_rows or {}).items()}
    return (events_kept, invocations_kept, quarantine_kept, extra_kept), refused


_INVOCATION_FIELDS = tuple(f.name for f in fields(Invocation))
_invocation_values = operator.attrgetter(*_INVOCATION_FIELDS)


def clean_invocation(invocation: Invocation) -> Invocation:
    """`poison.clean_record` of an invocation, its values read by one getter: a clean one
    (nearly every one) comes back as it is, at about a third of the cost of the generic
    walk of the dataclass's fields (`dataclasses.fields` on every record)."""
    values = _invocation_values(invocation)
    if poison.clean_tuple(values, _INVOCATION_FIELDS) is values:
        return invocation
    return poison.clean_record(invocation)


def _raw_of(row: Any) -> bytes:
    """A refused row as JSON text for the quarantine (capped like every raw input)."""
    import dataclasses
    import json

    if dataclasses.is_dataclass(row):
        row = {f.name: getattr(row, f.name) for f in dataclasses.fields(row)}
    elif isinstance(row, tuple):
        row = dict(zip(EVENT_COLUMNS, row))
    text = json.dumps(row, default=repr, ensure_ascii=False)
    return text.encode("utf-8", "backslashreplace")[:QUARANTINE_RAW_CAP]


def _scalar(conn: Connection, statement: Any) -> int:
    return int(conn.execute(statement).scalar() or 0)


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__


def _quarantine_row(item: Quarantined) -> dict[str, Any]:
    digest = hashlib.sha1()
    for part in (item.origin.encode(), item.position.encode(), item.raw):
        digest.update(part)
        digest.update(b"\0")
    return {
        "key": digest.hexdigest(), "origin": item.origin, "position": item.position,
        "reason": item.reason, "detail": item.detail, "raw": item.raw[:QUARANTINE_RAW_CAP],
        "quarantined_ms": int(time.time() * 1000),
    }


class CheckpointMoved(Exception):
    """A conditional batch found a checkpoint changed by another writer since it was read:
    nothing of the batch was written."""


@dataclass(frozen=True)
class _Claim:
    """One checkpoint a conditional batch replaces only if it still holds `expected`."""

    key: tuple[str, str]
    expected: str | None
    value: str

    def take(self, conn: Connection) -> None:
        """Replace the checkpoint if unchanged (insert it if still absent), or raise
        `CheckpointMoved`. One statement, so PostgreSQL re-checks the row after waiting for
        a concurrent writer's lock and SQLite's write lock is taken at once."""
        (collector, key), now = self.key, int(time.time() * 1000)
        row = {"collector": collector, "key": key, "value": self.value, "updated_ms": now}
        if self.expected is None:
            statement: Any = (upsert_dialect(conn.dialect).insert(checkpoints).values(row)
                              .on_conflict_do_nothing())
        else:
            statement = checkpoints.update().where(
                checkpoints.c.collector == collector, checkpoints.c.key == key,
                checkpoints.c.value == self.expected).values(value=self.value, updated_ms=now)
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT ... ON CONFLICT DO NOTHING
        if conn.execute(statement.returning(checkpoints.c.key)).first() is None:
            raise CheckpointMoved(f"checkpoint {collector}:{key} changed since it was read")


def _claims(values: Mapping[tuple[str, str], str],
            expected: Mapping[tuple[str, str], str | None]) -> list[_Claim]:
    """The claims of a conditional batch; each expected checkpoint needs a new value."""
    claims = []
    for (collector, key), old in expected.items():
        clean = (poison.escape_text(collector), poison.escape_text(key))
        if clean not in values:
            raise ValueError(f"checkpoint {collector}:{key} is expected but given no new value")
        claims.append(_Claim(clean, old, values[clean]))
    return claims


def _checkpoint_rows(values: Mapping[tuple[str, str], str]) -> list[dict[str, Any]]:
    now = int(time.time() * 1000)
    return [{"collector": c, "key": k, "value": v, "updated_ms": now}
            for (c, k), v in values.items()]


def _contract_row(result: Mapping[str, Any]) -> dict[str, Any]:
    return {name: result[name] for name in (
        "consumer", "detail_type", "version", "check_kind", "passed", "violations", "summary",
        "checked_ms", "catalog_revision", "origin")}
