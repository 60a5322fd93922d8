"""The store: one SQLAlchemy Core schema on SQLite (embedded default) or PostgreSQL (teams).

Owns the tables, the engine set-up for both engines, and every write and count eventscope
makes. Writes are idempotent on natural keys (the event id; an invocation's request id and
start), and one `write_batch` call is one transaction, so a collector's checkpoint advances
only with the data it covers.
"""

from __future__ import annotations

import hashlib
import operator
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from eventscope.errors import StoreError
from eventscope.records import BusEvent, Invocation, Quarantined

SCHEMA_VERSION = 1
DEFAULT_URL = "sqlite:///eventscope.db"

metadata = sa.MetaData()

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("detail_type", sa.Text, nullable=False),
    sa.Column("time_ms", sa.BigInteger, nullable=False),
    sa.Column("version", sa.Text),
    sa.Column("correlation_key", sa.Text),
    sa.Column("account", sa.Text),
    sa.Column("region", sa.Text),
    sa.Column("resources", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.Integer, nullable=False),
    sa.Index("ix_events_correlation_key", "correlation_key"),
    sa.Index("ix_events_type_time", "detail_type", "time_ms"),
)

invocations = sa.Table(
    "invocations",
    metadata,
    sa.Column("request_id", sa.Text, primary_key=True),
    sa.Column("start_ms", sa.BigInteger, primary_key=True),
    sa.Column("consumer", sa.Text, nullable=False),
    sa.Column("log_group", sa.Text, nullable=False),
    sa.Column("log_stream", sa.Text, nullable=False),
    sa.Column("event_id", sa.Text),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("end_ms", sa.BigInteger),
    sa.Column("duration_ms", sa.Float),
    sa.Column("error_type", sa.Text),
    sa.Column("error_message", sa.Text),
    sa.Column("max_memory_mb", sa.Integer),
    sa.Column("complete", sa.Boolean, nullable=False),
    sa.Column("log_format", sa.Text, nullable=False),
    sa.Index("ix_invocations_event_id", "event_id"),
    sa.Index("ix_invocations_consumer_start", "consumer", "start_ms"),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),  # sha1 of origin, position and raw bytes
    sa.Column("origin", sa.Text, nullable=False),
    sa.Column("position", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    sa.Column("quarantined_ms", sa.BigInteger, nullable=False),
)

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("collector", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
)

# --- collectors tables ---
# Bus rules and their targets as snapshots with history: one row per rule per snapshot.
rule_snapshots = sa.Table(
    "rule_snapshots",
    metadata,
    sa.Column("bus", sa.Text, primary_key=True),
    sa.Column("rule_name", sa.Text, primary_key=True),
    sa.Column("snapshot_ms", sa.BigInteger, primary_key=True),
    sa.Column("arn", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("event_pattern", sa.Text),  # JSON, None for scheduled rules
    sa.Column("schedule_expression", sa.Text),
    sa.Column("description", sa.Text),
    sa.Column("managed_by", sa.Text),
    sa.Index("ix_rule_snapshots_time", "snapshot_ms"),
)

rule_targets = sa.Table(
    "rule_targets",
    metadata,
    sa.Column("bus", sa.Text, primary_key=True),
    sa.Column("rule_name", sa.Text, primary_key=True),
    sa.Column("snapshot_ms", sa.BigInteger, primary_key=True),
    sa.Column("target_id", sa.Text, primary_key=True),
    sa.Column("arn", sa.Text, nullable=False),
    sa.Column("dlq_arn", sa.Text),
    sa.Column("retry_max_attempts", sa.Integer),
    sa.Column("retry_max_age_seconds", sa.Integer),
    sa.Column("role_arn", sa.Text),
    sa.Column("input_mode", sa.Text, nullable=False),  # event, input, input_path, transformer
)

# Per-target delivery outcomes from the bus's own logs (INVOCATION_ATTEMPT_*, INVOCATION_DLQ).
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),  # sha1 of the log record
    sa.Column("event_id", sa.Text),
    sa.Column("bus", sa.Text),
    sa.Column("rule_arn", sa.Text),
    sa.Column("target_arn", sa.Text),
    sa.Column("message_type", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),  # ok, retrying, failed, dead_lettered
    sa.Column("attempt", sa.Integer),
    sa.Column("time_ms", sa.BigInteger, nullable=False),
    sa.Column("error_code", sa.Text),
    sa.Column("error_message", sa.Text),
    sa.Index("ix_deliveries_event_id", "event_id"),
    sa.Index("ix_deliveries_target_time", "target_arn", "time_ms"),
)

# Heartbeat and counters of each running collector loop, for the dashboard.
collector_status = sa.Table(
    "collector_status",
    metadata,
    sa.Column("collector", sa.Text, primary_key=True),  # tap, logs, rules, deliveries
    sa.Column("instance", sa.Text, primary_key=True),  # host:pid
    sa.Column("started_ms", sa.BigInteger, nullable=False),
    sa.Column("heartbeat_ms", sa.BigInteger, nullable=False),
    sa.Column("state", sa.Text, nullable=False),  # running, stopped, failing
    sa.Column("counters", sa.Text, nullable=False),  # JSON object
    sa.Column("last_error", sa.Text),
)

# What PII redaction replaced before storing: which event, where, found by what.
redactions = sa.Table(
    "redactions",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("json_path", sa.Text, primary_key=True),
    sa.Column("detail_type", sa.Text, nullable=False),
    sa.Column("detector", sa.Text, nullable=False),  # catalog, email, card, phone, aws_key
    sa.Column("replaced", sa.Boolean, nullable=False),  # False when originals are kept
    sa.Column("redacted_ms", sa.BigInteger, nullable=False),
    sa.Index("ix_redactions_type", "detail_type"),
)

# Every replay request, keyed by its idempotency key: who, when, what, result.
replay_audit = sa.Table(
    "replay_audit",
    metadata,
    sa.Column("request_key", sa.Text, primary_key=True),
    sa.Column("requested_by", sa.Text, nullable=False),
    sa.Column("requested_ms", sa.BigInteger, nullable=False),
    sa.Column("mode", sa.Text, nullable=False),  # bus, archive, target
    sa.Column("selection", sa.Text, nullable=False),  # JSON: the filters and event ids
    sa.Column("event_count", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # started, sent, partial, failed
    sa.Column("result", sa.Text),  # JSON
    sa.Column("finished_ms", sa.BigInteger),
)

# --- findings tables ---
notifications = sa.Table(  # findings already notified, so `check --notify` sends each once
    "notifications",
    metadata,
    sa.Column("fingerprint", sa.Text, primary_key=True),  # sha1 of kind + subject
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),  # JSON
    sa.Column("severity", sa.Text, nullable=False),
    sa.Column("first_sent_ms", sa.BigInteger, nullable=False),
    sa.Column("last_seen_ms", sa.BigInteger, nullable=False),
)

# --- catalog tables ---
contract_results = sa.Table(
    "contract_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("consumer", sa.Text, nullable=False),
    sa.Column("detail_type", sa.Text, nullable=False),
    sa.Column("version", sa.Text, nullable=False),  # "" when the check is not per version
    sa.Column("check_kind", sa.Text, nullable=False),  # schema | examples | live | junit
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("violations", sa.Text, nullable=False),  # JSON array of {path, message, ...}
    sa.Column("summary", sa.Text, nullable=False),  # JSON object: counts, first failing event
    sa.Column("checked_ms", sa.BigInteger, nullable=False),
    sa.Column("catalog_revision", sa.Text, nullable=False),
    sa.Column("origin", sa.Text, nullable=False),  # "eventscope" or "junit:<file>"
    sa.Index("ix_contract_results_key", "consumer", "detail_type", "version", "check_kind",
             "checked_ms"),
)

# --- rollup tables ---
# Per-minute aggregates of the raw rows, recomputed from them for every minute marked in
# `rollup_dirty` (see `Store.refresh_rollups`). No primary keys: a minute's rows are only ever
# deleted and re-inserted together, and NULL source/detail_type/version (an invocation whose
# event is unknown) must stay NULL, as the raw join gives it.
MINUTE_MS = 60_000
# Upper edges (exclusive) of the duration buckets in ms; the last bucket is open-ended.
DURATION_EDGES_MS = (1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000,
                     1500, 2000, 3000, 5000, 7000, 10_000, 15_000, 20_000, 30_000, 60_000,
                     120_000, 300_000, 900_000)
DURATION_BUCKETS = [f"d{i:02d}" for i in range(len(DURATION_EDGES_MS) + 1)]

event_rollup = sa.Table(  # per minute of event time x source x type x version
    "event_rollup",
    metadata,
    sa.Column("minute_ms", sa.BigInteger, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("detail_type", sa.Text, nullable=False),
    sa.Column("version", sa.Text),
    sa.Column("events", sa.BigInteger, nullable=False),
    sa.Column("bytes_sum", sa.BigInteger, nullable=False),
    sa.Column("bytes_max", sa.BigInteger, nullable=False),
    sa.Column("first_ms", sa.BigInteger, nullable=False),
    sa.Column("last_ms", sa.BigInteger, nullable=False),
    sa.Index("ix_event_rollup_minute", "minute_ms"),
)

invocation_rollup = sa.Table(  # per minute of start x function x event kind x outcome x error
    "invocation_rollup",
    metadata,
    sa.Column("minute_ms", sa.BigInteger, nullable=False),
    sa.Column("consumer", sa.Text, nullable=False),
    sa.Column("source", sa.Text),  # NULL: the event is not in the store (or no event id)
    sa.Column("detail_type", sa.Text),
    sa.Column("version", sa.Text),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("error_type", sa.Text),
    sa.Column("invocations", sa.BigInteger, nullable=False),
    sa.Column("duration_count", sa.BigInteger, nullable=False),
    sa.Column("duration_sum_ms", sa.Float, nullable=False),
    sa.Column("duration_max_ms", sa.Float),
    sa.Column("first_start_ms", sa.BigInteger, nullable=False),
    sa.Column("last_start_ms", sa.BigInteger, nullable=False),
    *(sa.Column(name, sa.BigInteger, nullable=False) for name in DURATION_BUCKETS),
    sa.Index("ix_invocation_rollup_minute", "minute_ms"),
)

handling_rollup = sa.Table(  # per (function, event) pair, in the minute of its first attempt
    "handling_rollup",
    metadata,
    sa.Column("minute_ms", sa.BigInteger, nullable=False),
    sa.Column("consumer", sa.Text, nullable=False),
    sa.Column("source", sa.Text),  # NULL: the event id is not in the store
    sa.Column("detail_type", sa.Text),
    sa.Column("version", sa.Text),
    sa.Column("events", sa.BigInteger, nullable=False),  # (function, event) pairs
    sa.Column("attempts", sa.BigInteger, nullable=False),
    sa.Column("retried_then_ok", sa.BigInteger, nullable=False),
    sa.Column("final_failures", sa.BigInteger, nullable=False),  # every attempt failed
    sa.Column("redelivered", sa.BigInteger, nullable=False),  # > 1 distinct request id
    sa.Column("processed_twice", sa.BigInteger, nullable=False),  # > 1 successful attempt
    sa.Index("ix_handling_rollup_minute", "minute_ms"),
)

rollup_dirty = sa.Table(  # minutes whose rollup rows may be stale
    "rollup_dirty",
    metadata,
    sa.Column("minute_ms", sa.BigInteger, primary_key=True, autoincrement=False),
)
# Range reads by time for the recomputation of a few minutes.
_INVOCATIONS_START = sa.Index("ix_invocations_start", invocations.c.start_ms)
_EVENTS_TIME = sa.Index("ix_events_time", events.c.time_ms)

_INVOCATION_UPDATABLE = [c.name for c in invocations.columns if not c.primary_key]


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


def create_engine(url: str | None = None) -> Engine:
    """An engine for the URL, with SQLite set to WAL and a busy timeout."""
    resolved = resolve_url(url)
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
            return sa.create_engine(parsed, pool_pre_ping=True)
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"cannot use {resolved!r}: {_first_line(exc)}") from None
    raise StoreError(f"unsupported database {backend!r} in {resolved!r}: use sqlite or postgresql")


def _sqlite_engine(url: sa.engine.URL) -> Engine:
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    return engine


class Store:
    """The store behind one URL: schema set-up, idempotent batch writes, counts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = sqlite if engine.dialect.name == "sqlite" else postgresql
        upsert = dialect.insert(invocations)
        checkpoint = dialect.insert(checkpoints)
        self._insert_event = _Compiled(engine, dialect.insert(events).on_conflict_do_nothing())
        self._insert_quarantine = _Compiled(
            engine, dialect.insert(quarantine).on_conflict_do_nothing())
        self._upsert_invocation = _Compiled(engine, upsert.on_conflict_do_update(
            index_elements=[invocations.c.request_id, invocations.c.start_ms],
            set_={name: upsert.excluded[name] for name in _INVOCATION_UPDATABLE},
            where=sa.and_(sa.not_(invocations.c.complete), upsert.excluded.complete),
        ))
        mark = dialect.insert(rollup_dirty)
        # DO UPDATE, not DO NOTHING: it locks an existing mark, so on PostgreSQL a refresh
        # deleting that mark waits for this batch to commit and then reads its rows.
        self._mark_dirty = _Compiled(engine, mark.on_conflict_do_update(
            index_elements=[rollup_dirty.c.minute_ms],
            set_={"minute_ms": mark.excluded.minute_ms}))
        self._upsert_checkpoint = _Compiled(engine, checkpoint.on_conflict_do_update(
            index_elements=[checkpoints.c.collector, checkpoints.c.key],
            set_={"value": checkpoint.excluded.value,
                  "updated_ms": checkpoint.excluded.updated_ms},
        ))

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def create_schema(self) -> None:
        """Create missing tables and indexes; refuse a store made by a newer eventscope."""
        try:
            with self.engine.begin() as conn:
                if self.engine.dialect.name == "postgresql":  # several processes may start at once
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7461636865)"))
                had_rollups = sa.inspect(conn).has_table(rollup_dirty.name)
                metadata.create_all(conn)
                _prepare_rollups(conn, had_rollups)
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
        events_: Sequence[BusEvent] = (),
        invocations_: Sequence[Invocation] = (),
        quarantined: Sequence[Quarantined] = (),
        checkpoints_: Mapping[tuple[str, str], str] | None = None,
        extra_rows: Mapping[sa.Table, Sequence[dict[str, Any]]] | None = None,
    ) -> WriteResult:
        """Write everything given in one transaction and return how many rows were new."""
        result = WriteResult()
        try:
            with self.engine.begin() as conn:
                result.events = self._execute(conn, self._insert_event, events_)
                result.invocations = self._execute(conn, self._upsert_invocation, invocations_)
                result.quarantined = self._execute(conn, self._insert_quarantine,
                                                   [_quarantine_row(q) for q in quarantined])
                self._execute(conn, self._upsert_checkpoint,
                              _checkpoint_rows(checkpoints_ or {}))
                for table, rows in (extra_rows or {}).items():  # collectors' own tables
                    self._execute(conn, self._insert_ignore(table), rows)
                if result.events or result.invocations:
                    minutes = _changed_minutes(conn, events_ if result.events else (),
                                               invocations_ if result.invocations else ())
                    self._execute(conn, self._mark_dirty,
                                  [{"minute_ms": m} for m in sorted(minutes)])
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot write to store {self.url}: {_first_line(exc)}") from None
        return result

    @staticmethod
    def _execute(conn: Connection, statement: _Compiled, rows: Sequence[Any]) -> int:
        if not rows:
            return 0
        return max(conn.exec_driver_sql(statement.sql, statement.params(rows)).rowcount, 0)

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
            by_outcome = dict(conn.execute(
                sa.select(invocations.c.outcome, sa.func.count()).group_by(invocations.c.outcome)
            ).all())
            by_reason = dict(conn.execute(
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
            dialect = sqlite if self.engine.dialect.name == "sqlite" else postgresql
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
                dialect = sqlite if self.engine.dialect.name == "sqlite" else postgresql
                conn.execute(dialect.insert(meta).values(key="pii_key", value=os.urandom(32).hex())
                             .on_conflict_do_nothing())
                found = conn.execute(
                    sa.select(meta.c.value).where(meta.c.key == "pii_key")).scalar()
        return bytes.fromhex(found)

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
        dialect = sqlite if self.engine.dialect.name == "sqlite" else postgresql
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
        """(id, time_ms, detail JSON) of stored events of one type (and version), newest first."""
        query = sa.select(events.c.id, events.c.time_ms, events.c.detail).where(
            events.c.detail_type == detail_type)
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
        """(id, source, detail_type, time_ms, detail JSON) of every stored event."""
        query = sa.select(events.c.id, events.c.source, events.c.detail_type, events.c.time_ms,
                          events.c.detail)
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
    def refresh_rollups(self, chunk_minutes: int = 720) -> int:
        """Recompute the rollup rows of every dirty minute from raw rows; return how many.

        A (function, event) pair is counted in the minute of its first attempt, so a new
        attempt can move or change a pair counted in another minute: every minute holding an
        invocation of an event touched by a dirty minute is recomputed too. Each chunk of
        minutes is one transaction that deletes its dirty marks *before* reading raw rows:
        a batch committed meanwhile either is read, or keeps its mark (see `write_batch`).
        """
        with self.engine.connect() as conn:
            dirty = sorted(conn.execute(sa.select(rollup_dirty.c.minute_ms)).scalars())
            if not dirty:
                return 0
            minutes = set(dirty) | _related_minutes(conn, dirty, chunk_minutes)
        ordered = sorted(minutes)
        try:
            for start in range(0, len(ordered), chunk_minutes):
                ranges = minute_ranges(ordered[start:start + chunk_minutes])
                with self.engine.begin() as conn:
                    _recompute(conn, ranges)
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot refresh rollups in {self.url}: {_first_line(exc)}") from None
        return len(ordered)

    def dirty_minutes(self) -> int:
        """How many minutes wait for `refresh_rollups`."""
        with self.engine.connect() as conn:
            return _scalar(conn, sa.select(sa.func.count()).select_from(rollup_dirty))


def _prepare_rollups(conn: Connection, had_rollups: bool) -> None:
    """On a store made before rollups: add the time indexes, mark every minute dirty."""
    if had_rollups:
        return
    for index in (_INVOCATIONS_START, _EVENTS_TIME):
        index.create(conn, checkfirst=True)
    minutes = sa.union(sa.select(_minute(events.c.time_ms)),
                       sa.select(_minute(invocations.c.start_ms))).subquery()
    conn.execute(rollup_dirty.insert().from_select(["minute_ms"], sa.select(minutes.c[0])))


def minute_of(ms: int) -> int:
    return ms - ms % MINUTE_MS


def minute_ranges(minutes: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted minutes merged into [start, end) ranges of consecutive minutes."""
    ranges: list[tuple[int, int]] = []
    for minute in sorted(minutes):
        if ranges and ranges[-1][1] == minute:
            ranges[-1] = (ranges[-1][0], minute + MINUTE_MS)
        else:
            ranges.append((minute, minute + MINUTE_MS))
    return ranges


def _in_ranges(column: Any, ranges: Sequence[tuple[int, int]]) -> Any:
    return sa.or_(*(sa.and_(column >= lo, column < hi) for lo, hi in ranges))


def _minute(column: Any) -> Any:
    return column - column % MINUTE_MS


LOOKUP_CHUNK = 500


def _changed_minutes(conn: Connection, events_: Sequence[BusEvent],
                     invocations_: Sequence[Invocation]) -> set[int]:
    """Minutes whose rollups a batch may change: its events', its invocations', and those of
    stored invocations of its events (an event arriving late changes their attribution)."""
    minutes = {e.time_ms - e.time_ms % MINUTE_MS for e in events_}
    minutes.update(i.start_ms - i.start_ms % MINUTE_MS for i in invocations_)
    ids = [e.id for e in events_]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:  # driver SQL: SQLAlchemy's per-statement IN expansion costs more than the lookup
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = ids[start:start + LOOKUP_CHUNK]
            cursor.execute(_lookup_sql(conn.dialect.paramstyle, len(chunk)), chunk)
            minutes.update(row[0] for row in cursor.fetchall())
    finally:
        cursor.close()
    return minutes


def _lookup_sql(paramstyle: str, count: int) -> str:
    mark, modulo = ("?", "%") if paramstyle == "qmark" else ("%s", "%%")
    return (f"SELECT DISTINCT start_ms - start_ms {modulo} {MINUTE_MS} FROM invocations "
            f"WHERE event_id IN ({', '.join([mark] * count)})")


def _related_minutes(conn: Connection, dirty: Sequence[int], chunk: int) -> set[int]:
    """Minutes outside `dirty` holding invocations of events handled in a dirty minute."""
    bounds = conn.execute(sa.select(sa.func.min(invocations.c.start_ms),
                                    sa.func.max(invocations.c.start_ms))).one()
    if bounds[0] is None:
        return set()
    wanted = set(dirty)
    all_ranges = minute_ranges(dirty)
    lo, hi = minute_of(bounds[0]), minute_of(bounds[1]) + MINUTE_MS
    if any(a <= lo and hi <= b for a, b in all_ranges):
        return set()  # every stored invocation is in a dirty minute already
    found: set[int] = set()
    i = invocations.c
    for start in range(0, len(dirty), chunk):
        touched = sa.select(i.event_id).where(
            _in_ranges(i.start_ms, minute_ranges(dirty[start:start + chunk])),
            i.event_id.is_not(None))
        found.update(conn.execute(sa.select(_minute(i.start_ms)).distinct().where(
            i.event_id.in_(touched))).scalars())
    return found - wanted


def _recompute(conn: Connection, ranges: Sequence[tuple[int, int]]) -> None:
    """Replace the rollup rows of the minutes in `ranges` (one transaction, marks first)."""
    marks = _in_ranges(rollup_dirty.c.minute_ms, ranges)
    # Lock marks in ascending order, as writers take them (sorted), so the two cannot deadlock.
    conn.execute(sa.select(rollup_dirty.c.minute_ms).where(marks)
                 .order_by(rollup_dirty.c.minute_ms).with_for_update())
    conn.execute(rollup_dirty.delete().where(marks))
    for table in (event_rollup, invocation_rollup, handling_rollup):
        conn.execute(table.delete().where(_in_ranges(table.c.minute_ms, ranges)))
    for table, select in ((event_rollup, _event_rollup_select(ranges)),
                          (invocation_rollup, _invocation_rollup_select(ranges)),
                          (handling_rollup, _handling_rollup_select(ranges))):
        conn.execute(table.insert().from_select([c.name for c in table.columns], select))


def _event_rollup_select(ranges: Sequence[tuple[int, int]]) -> sa.Select:
    e = events.c
    minute = _minute(e.time_ms)
    return sa.select(
        minute, e.source, e.detail_type, e.version, sa.func.count(), sa.func.sum(e.size_bytes),
        sa.func.max(e.size_bytes), sa.func.min(e.time_ms), sa.func.max(e.time_ms),
    ).where(_in_ranges(e.time_ms, ranges)).group_by(minute, e.source, e.detail_type, e.version)


def _count_if(condition: Any) -> Any:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def _duration_buckets(duration: Any) -> list[Any]:
    edges = DURATION_EDGES_MS
    buckets = [_count_if(duration < edges[0])]
    buckets += [_count_if(sa.and_(duration >= lo, duration < hi))
                for lo, hi in zip(edges, edges[1:])]
    buckets.append(_count_if(duration >= edges[-1]))
    return buckets


def _invocation_rollup_select(ranges: Sequence[tuple[int, int]]) -> sa.Select:
    i, e = invocations.c, events.c
    minute = _minute(i.start_ms)
    return sa.select(
        minute, i.consumer, e.source, e.detail_type, e.version, i.outcome, i.error_type,
        sa.func.count(), sa.func.count(i.duration_ms),
        sa.func.coalesce(sa.func.sum(i.duration_ms), 0.0), sa.func.max(i.duration_ms),
        sa.func.min(i.start_ms), sa.func.max(i.start_ms), *_duration_buckets(i.duration_ms),
    ).select_from(invocations.outerjoin(events, e.id == i.event_id)).where(
        _in_ranges(i.start_ms, ranges)).group_by(
        minute, i.consumer, e.source, e.detail_type, e.version, i.outcome, i.error_type)


def _handling_rollup_select(ranges: Sequence[tuple[int, int]]) -> sa.Select:
    i, e = invocations.c, events.c
    touched = sa.select(i.event_id).where(_in_ranges(i.start_ms, ranges),
                                          i.event_id.is_not(None))
    pairs = sa.select(
        i.consumer, i.event_id, sa.func.min(i.start_ms).label("first_ms"),
        sa.func.count().label("attempts"),
        _count_if(i.outcome.in_(["error", "timeout"])).label("failed"),
        _count_if(i.outcome == "ok").label("oks"),
        sa.func.count(sa.distinct(i.request_id)).label("deliveries"),
    ).where(i.event_id.in_(touched)).group_by(i.consumer, i.event_id).subquery()
    p = pairs.c
    minute = _minute(p.first_ms)
    return sa.select(
        minute, p.consumer, e.source, e.detail_type, e.version, sa.func.count(),
        sa.func.sum(p.attempts), _count_if(sa.and_(p.failed > 0, p.failed < p.attempts)),
        _count_if(p.failed == p.attempts), _count_if(p.deliveries > 1), _count_if(p.oks > 1),
    ).select_from(pairs.outerjoin(events, e.id == p.event_id)).where(
        _in_ranges(p.first_ms, ranges)).group_by(minute, p.consumer, e.source, e.detail_type,
                                                 e.version)


class _Compiled:
    """A statement compiled once for an engine, run through the driver's executemany.

    SQLAlchemy's own executemany reports no row count on psycopg, and the count of new rows
    is what tells a stored row from a duplicate.
    """

    def __init__(self, engine: Engine, statement: Any) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = str(compiled)
        self.positions = compiled.positiontup  # None for named parameter styles
        self.names = list(compiled.params)

    def params(self, rows: Sequence[Any]) -> list[Any]:
        """Driver parameters from dict rows or from records whose fields are the columns."""
        if isinstance(rows[0], dict):
            if self.positions is None:
                return list(rows)
            return [tuple(row[name] for name in self.positions) for row in rows]
        if self.positions is None:
            return [{name: getattr(row, name) for name in self.names} for row in rows]
        values = operator.attrgetter(*self.positions)
        return [values(row) for row in rows]


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
        "reason": item.reason, "detail": item.detail, "raw": item.raw,
        "quarantined_ms": int(time.time() * 1000),
    }


def _checkpoint_rows(values: Mapping[tuple[str, str], str]) -> list[dict[str, Any]]:
    now = int(time.time() * 1000)
    return [{"collector": c, "key": k, "value": v, "updated_ms": now}
            for (c, k), v in values.items()]


def _contract_row(result: Mapping[str, Any]) -> dict[str, Any]:
    return {name: result[name] for name in (
        "consumer", "detail_type", "version", "check_kind", "passed", "violations", "summary",
        "checked_ms", "catalog_revision", "origin")}
