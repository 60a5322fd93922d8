"""The store's schema: every table and index, one SQLAlchemy Core `MetaData` for both engines.

Grouped by the part of eventscope that writes them: the core records, the collectors, the
findings, the catalog, and the per-minute rollups (maintained by `eventscope.rollups`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()


def upsert_dialect(dialect: sa.engine.Dialect) -> Any:
    """The dialect module (`sqlalchemy.dialects.sqlite` or `.postgresql`) whose `insert`
    has the ON CONFLICT clauses, for an engine of that dialect. Imported when asked for:
    the PostgreSQL one (with its asyncpg, pg8000 ... modules) costs a SQLite store's
    start-up ~60 ms, so nothing imports it at module level."""
    if dialect.name == "sqlite":
        from sqlalchemy.dialects import sqlite
        return sqlite
    from sqlalchemy.dialects import postgresql
    return postgresql

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
    sa.Index("ix_events_type_time", "detail_type", "time_ms"),
)
# A payload retention cleared (`eventscope.retention`): the JSON `null`. Every stored detail
# is a JSON object (ingest and the tap quarantine any other), so this text can only mean
# "cleared by retention". Here, beside the column, so readers need not import the pruning.
PRUNED_DETAIL = "null"

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
# The rule eventscope's tap puts on every bus it samples (`collectors.tap`): the findings do
# not count it among the bus's consumers.
TAP_RULE_NAME = "eventscope-tap"
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

# The latest sample of each dead-letter queue a collector watches (one row per queue).
queue_depths = sa.Table(
    "queue_depths",
    metadata,
    sa.Column("queue", sa.Text, primary_key=True),  # the dead-letter queue's URL
    sa.Column("source_queue", sa.Text),  # the queue it takes the dead letters of
    sa.Column("observed_ms", sa.BigInteger, nullable=False),
    sa.Column("messages", sa.BigInteger, nullable=False),  # visible + in flight
    sa.Column("oldest_sent_ms", sa.BigInteger),  # earliest SentTimestamp in a peek, if any
    sa.Column("nonempty_since_ms", sa.BigInteger),  # first sample that found it non-empty
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

# Which side of a minute changed, as bits of a mark's `sides`: its events (only
# `event_rollup` reads them by their own minute) or its invocations (the invocation, handling
# and latency rollups, keyed by invocation minutes). A mark from before the column: both.
EVENTS_SIDE, INVOCATIONS_SIDE = 1, 2
BOTH_SIDES = EVENTS_SIDE | INVOCATIONS_SIDE

rollup_dirty = sa.Table(  # minutes whose rollup rows may be stale
    "rollup_dirty",
    metadata,
    sa.Column("minute_ms", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("sides", sa.Integer, nullable=False, server_default=str(BOTH_SIDES)),
)
# Range reads by time for the recomputation of a few minutes.
INVOCATIONS_START = sa.Index("ix_invocations_start", invocations.c.start_ms)
EVENTS_TIME = sa.Index("ix_events_time", events.c.time_ms)
# Covering indexes of the missing-subscription finding (`load.load_cancellation_summary`):
# the events of the cancelled orders and who handled them, read from the indexes alone
# (a row read per event and invocation cost 7 s on a 1M-event store). Their leading columns
# also serve an order's lifecycle (events by correlation key) and the joins and handling
# pairs (invocations by event id), so a new store has no single-column index on either;
# stores made before keep theirs (ix_events_correlation_key, ix_invocations_event_id).
ORDER_EVENTS = sa.Index("ix_events_order_cover", events.c.correlation_key, events.c.time_ms,
                        events.c.detail_type, events.c.id)
EVENT_HANDLERS = sa.Index("ix_invocations_event_consumer", invocations.c.event_id,
                          invocations.c.consumer)
FINDING_INDEXES = (ORDER_EVENTS, EVENT_HANDLERS)
# Failed invocations only (~7 % of them on the bench store), by function and start, with the
# columns the final-failures drill-down reads of the minutes the handling rollup flags: that
# read is index-only (it read the table for each of ~65k invocations: a quarter of `failures`
# on a 1M-event store). A query uses it when it says `FAILED_ONLY` itself (the literal, not a
# bound parameter, so SQLite can see that the index holds every row it wants). Made by DDL
# of its own (`rollups.prepare_rollups`), the same on both engines, not as an `sa.Index`: to
# SQLAlchemy a partial index is a dialect option, and naming PostgreSQL's loads its dialect
# (~40 ms) in every process, SQLite stores included.
_OK = "'ok'"  # as SQL text: the index's condition and the queries' must read alike
FAILED_ONLY = invocations.c.outcome != sa.literal_column(_OK)
FAILED_STARTS = "ix_invocations_failed"
FAILED_STARTS_DDL = (f"CREATE INDEX IF NOT EXISTS {FAILED_STARTS} ON invocations "
                     f"(consumer, start_ms, event_id, outcome) WHERE outcome != {_OK}")

# Per-day sums of the minute rollups (same columns, `minute_ms` holding the day's first
# minute), recomputed from the minute rows of every day a refresh touches (see
# `eventscope.day_rollups`): a whole-store or many-day read sums days, not minutes.
DAY_MS = 86_400_000


def _summed(minutes: sa.Table, period: str = "day") -> sa.Table:
    """The minute table's columns in a table of its sums per `period` (day, hour)."""
    return sa.Table(f"{minutes.name}_{period}", metadata,
                    *(sa.Column(c.name, c.type, nullable=c.nullable) for c in minutes.columns),
                    sa.Index(f"ix_{minutes.name}_{period}_minute", "minute_ms"))


event_rollup_day = _summed(event_rollup)
invocation_rollup_day = _summed(invocation_rollup)
handling_rollup_day = _summed(handling_rollup)

# Per-hour sums of the same minute rollups, kept the same way (`minute_ms` holding the hour's
# first minute): a chart of a long window in buckets of hours (the dashboard's series) sums
# a few rows per hour rather than every minute's. No hour table for latencies: nothing reads
# them by the hour.
HOUR_MS = 3_600_000
event_rollup_hour = _summed(event_rollup, "hour")
invocation_rollup_hour = _summed(invocation_rollup, "hour")
handling_rollup_hour = _summed(handling_rollup, "hour")


def _latency_edges(exact_below: int = 20, ratio: float = 1.1,
                   up_to: int = 30 * DAY_MS) -> tuple[int, ...]:
    """Upper edges (exclusive, ms) of the latency buckets: one per millisecond below
    `exact_below`, then each about `ratio` times the last, so a bucket's middle is within
    5 % of any latency in it; the last bucket (from `up_to`) is open-ended."""
    edges = list(range(1, exact_below + 1))
    while edges[-1] < up_to:
        edges.append(max(edges[-1] + 1, int(edges[-1] * ratio)))
    return tuple(edges)


LATENCY_EDGES_MS = _latency_edges()
LATENCY_MEASURES = ("first", "success")  # event time -> first invocation, -> first success

latency_rollup = sa.Table(  # per (function, event) pair, in the minute of its first attempt
    "latency_rollup",  # (as handling_rollup): a histogram of its latency per measure
    metadata,
    sa.Column("minute_ms", sa.BigInteger, nullable=False),
    sa.Column("consumer", sa.Text, nullable=False),  # the function
    sa.Column("source", sa.Text, nullable=False),  # pairs of stored events only
    sa.Column("detail_type", sa.Text, nullable=False),
    sa.Column("measure", sa.Text, nullable=False),  # LATENCY_MEASURES
    sa.Column("bucket", sa.Integer, nullable=False),  # index into LATENCY_EDGES_MS' buckets
    sa.Column("events", sa.BigInteger, nullable=False),
    sa.Column("skewed", sa.BigInteger, nullable=False),  # invoked "before" the event: 0 ms
    sa.Column("latency_max_ms", sa.BigInteger, nullable=False),  # exact, in the bucket
    sa.Index("ix_latency_rollup_minute", "minute_ms"),
)
latency_rollup_day = _summed(latency_rollup)
