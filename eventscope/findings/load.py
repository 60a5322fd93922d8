"""Reading what findings need from the store: SQLAlchemy Core selects returning DataFrames.

The one module of `eventscope.findings` that touches the database. Whole-store reads select
only the narrow columns the analyses use; the order lifecycle goes through indexes only
(events by `correlation_key`, invocations by `event_id`) so it answers in milliseconds on a
store of millions of events. Whole-store and time-window summaries read the rollup tables
(kept current by the writers, never refreshed here; minute resolution) and drill down into
raw rows only for the few pairs or errors a summary names. It also holds the faces' small
reads (the window's ends, recent events, payloads by id, emptiness: index reads) and the
latest bus-rules snapshot that `collect rules` wrote.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from eventscope.day_rollups import DAYS_OF, HOURS_OF, aggregate
from eventscope.findings.columns import (ATTEMPT_COLUMNS, EVENT_COLUMNS, FAILED,
                                         SUBSCRIPTION_COLUMNS)
from eventscope.patterns import listed_values
from eventscope.redaction import mask_pii, may_hold_pii, stored_query
from eventscope.rollups import minute_of
from eventscope.store import Store
from eventscope.tables import (DAY_MS, DURATION_BUCKETS, FAILED_ONLY, HOUR_MS, MINUTE_MS,
                               PRUNED_DETAIL, TAP_RULE_NAME, event_rollup, events, handling_rollup,
                               invocation_rollup, invocation_rollup_day, invocations,
                               latency_rollup, meta, rule_snapshots, rule_targets)

if TYPE_CHECKING:
    import pandas as pd

MAX_PREFIX_MATCHES = 50


def frame(rows: Iterable[Any], columns: list[str]) -> pd.DataFrame:
    """`frames.frame`, imported when first needed: the plain-row reads (the lifecycle, the
    CLI's start-up) never import pandas."""
    from eventscope.findings.frames import frame as make
    return make(rows, columns)


def _event_select(with_detail: bool = False) -> sa.Select:
    """EVENT_COLUMNS; with `with_detail`, also the payload, of events whose payload is kept
    (retention clears old ones: such an event is no sample and no re-send)."""
    columns = [events.c[name] for name in EVENT_COLUMNS]
    if not with_detail:
        return sa.select(*columns)
    return sa.select(*columns, events.c.detail).where(events.c.detail != PRUNED_DETAIL)


def _attempt_select(source: sa.FromClause = invocations) -> sa.Select:
    """ATTEMPT_COLUMNS of the invocations in `source` (invocations, or a join of them)."""
    i, e = invocations.c, events.c
    return sa.select(
        i.request_id, i.start_ms, i.consumer, i.consumer.label("function"), i.event_id,
        i.outcome, i.duration_ms, i.error_type, i.error_message, e.source, e.detail_type,
        e.version, e.time_ms.label("event_time_ms"),
    ).select_from(source.outerjoin(events, events.c.id == invocations.c.event_id))


def _read(engine: Engine, statement: sa.Select, columns: list[str]) -> pd.DataFrame:
    """Rows straight from the driver's cursor: SQLAlchemy's Row objects cost 2-3x on big reads."""
    compiled = statement.compile(dialect=engine.dialect,
                                 compile_kwargs={"render_postcompile": True})
    params: Any = compiled.params
    if compiled.positiontup is not None:
        params = tuple(compiled.params[name] for name in compiled.positiontup)
    with engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(str(compiled), params)
            return frame(cursor.fetchall(), columns)
        finally:
            cursor.close()


def load_events(engine: Engine, since_ms: int | None = None, until_ms: int | None = None,
                detail_types: Sequence[str] = (), with_detail: bool = False) -> pd.DataFrame:
    """Events in the time window (event time), optionally of some detail-types only."""
    statement = _within(_event_select(with_detail), events.c.time_ms, since_ms, until_ms)
    if detail_types:
        statement = statement.where(events.c.detail_type.in_(list(detail_types)))
    return _read(engine, statement, EVENT_COLUMNS + (["detail"] if with_detail else []))


def load_attempts(engine: Engine, since_ms: int | None = None, until_ms: int | None = None,
                  functions: Sequence[str] = ()) -> pd.DataFrame:
    """Invocations started in the window, joined to the events they handled."""
    statement = _within(_attempt_select(), invocations.c.start_ms, since_ms, until_ms)
    if functions:
        statement = statement.where(invocations.c.consumer.in_(list(functions)))
    return _read(engine, statement, ATTEMPT_COLUMNS)


def load_latest_attempts(engine: Engine, since_ms: int | None = None,
                         until_ms: int | None = None, per_function: int = 2_000,
                         total: int | None = None) -> pd.DataFrame:
    """Each function's latest `per_function` invocations started in the window (fewer when
    `total` split evenly between the functions is less, but at least one each), joined to
    their events (ATTEMPT_COLUMNS): one index range read per function the invocation rollup
    names in the window, a bounded sample."""
    r = invocation_rollup.c
    with engine.connect() as conn:
        functions = list(conn.execute(sa.select(r.consumer).where(
            *_window(r.minute_ms, since_ms, until_ms)).distinct().order_by(r.consumer))
            .scalars())
    if total is not None and functions:
        per_function = max(1, min(per_function, total // len(functions)))
    i = invocations.c
    frames = [_read(engine, _within(_attempt_select(), i.start_ms, since_ms, until_ms).where(
        i.consumer == function).order_by(i.start_ms.desc(), i.request_id).limit(per_function),
        ATTEMPT_COLUMNS) for function in functions]
    frames = [f for f in frames if not f.empty]
    import pandas as pd
    return pd.concat(frames, ignore_index=True) if frames else frame([], ATTEMPT_COLUMNS)


def _within(statement: sa.Select, column: sa.ColumnElement, since_ms: int | None,
            until_ms: int | None) -> sa.Select:
    """Raw rows in [since, until) exactly (`_window` widens rollup minutes instead)."""
    if since_ms is not None:
        statement = statement.where(column >= since_ms)
    if until_ms is not None:
        statement = statement.where(column < until_ms)
    return statement


def each_value(column: sa.ColumnElement[Any]) -> sa.Select:
    """Every distinct non-null value of a column that leads an index, in order, one index
    seek per value (a recursive "loose index scan"): `SELECT DISTINCT` reads the whole
    index instead, ~40 ms for 30 detail-types among 1M events."""
    first = sa.select(sa.func.min(column).label("value")).cte("seen", recursive=True)
    following = sa.select(sa.select(sa.func.min(column)).where(column > first.c.value)
                          .scalar_subquery()).where(first.c.value.is_not(None))
    seen = first.union_all(following)
    return sa.select(seen.c.value).where(seen.c.value.is_not(None))


def load_samples(engine: Engine, per_type: int = 20) -> pd.DataFrame:
    """The latest `per_type` events of every (source, detail-type, version), with details."""
    with engine.connect() as conn:
        kinds = conn.execute(each_value(events.c.detail_type)).scalars().all()
        rows: list[Any] = []
        for detail_type in kinds:  # one indexed range read per type, not a scan
            rows.extend(conn.execute(
                _event_select(with_detail=True).where(events.c.detail_type == detail_type)
                .order_by(events.c.time_ms.desc()).limit(per_type)).all())
    return frame(rows, EVENT_COLUMNS + ["detail"])


def load_type_summary(engine: Engine) -> pd.DataFrame:
    """Per (source, detail-type, version): count, first and last event time, size stats."""
    e = events.c
    statement = sa.select(
        e.source, e.detail_type, e.version, sa.func.count().label("count"),
        sa.func.min(e.time_ms).label("first_ms"), sa.func.max(e.time_ms).label("last_ms"),
        sa.func.max(e.size_bytes).label("max_size_bytes"),
    ).group_by(e.source, e.detail_type, e.version)
    return _read(engine, statement, ["source", "detail_type", "version", "count", "first_ms",
                                     "last_ms", "max_size_bytes"])


def stored_form(engine: Engine, query: str) -> str:
    """A typed order id or search as the store holds such a value: what redaction would have
    replaced becomes its token (keyed by $EVENTSCOPE_PII_KEY, else the store's own key), or a
    mask when the store has no key. Faces search with it and echo it, never the typed value."""
    if not may_hold_pii(query):
        return query
    configured = os.environ.get("EVENTSCOPE_PII_KEY")
    if configured:
        return stored_query(query, configured.encode())
    with engine.connect() as conn:
        try:
            found = conn.execute(sa.select(meta.c.value).where(meta.c.key == "pii_key")).scalar()
        except sa.exc.DatabaseError:  # no store here yet
            found = None
    return stored_query(query, bytes.fromhex(found)) if found else mask_pii(query, "pii:masked")


def find_correlation_keys(engine: Engine, query: str) -> list[str]:
    """Correlation keys matching an order id, an event id, or a key prefix (in that order).

    The query is taken in its stored form: callers put a typed query through `stored_form`
    once (and echo that form), as tokenising a token again could change it. Every lookup is
    an index read: the key itself, the event's primary key, then a key range
    [prefix, prefix + U+FFFF) rather than LIKE, which SQLite cannot serve from an index.
    """
    with engine.connect() as conn:
        if _fetch(conn, _KEY_EXISTS, {"key": query}):
            return [query]
        by_id = _fetch(conn, _KEY_OF_EVENT, {"id": query})
        if by_id and by_id[0][0] is not None:
            return [by_id[0][0]]
        found = _fetch(conn, _KEYS_IN_RANGE, {"low": query, "high": query + "\uffff"})
    return [row[0] for row in found]


def lifecycle_rows(engine: Engine, correlation_key: str
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One key's events (EVENT_COLUMNS) and every invocation that handled one of them
    (ATTEMPT_COLUMNS) as plain dicts: two index reads of statements compiled once."""
    params = {"key": correlation_key}
    with engine.connect() as conn:
        event_rows = _fetch(conn, _KEY_EVENTS, params)
        attempt_rows = _fetch(conn, _KEY_ATTEMPTS, params) if event_rows else []
    return ([dict(zip(EVENT_COLUMNS, row)) for row in event_rows],
            [dict(zip(ATTEMPT_COLUMNS, row)) for row in attempt_rows])


SIMILAR_ORDERS = 50


def similar_orders(engine: Engine, detail_type: str, exclude: str) -> dict[str, list[str]]:
    """The detail-types, in time order, of the other orders among those with the latest
    SIMILAR_ORDERS events of `detail_type`: one statement of two index reads (by type and
    time, then by correlation key), compiled once. What `lifecycle.inferred_gaps` compares
    an order with."""
    with engine.connect() as conn:
        rows = _fetch(conn, _SIMILAR, {"type": detail_type, "exclude": exclude})
    found: dict[str, list[str]] = {}
    for key, kind in rows:
        found.setdefault(key, []).append(kind)
    return found


def load_lifecycle(engine: Engine, correlation_key: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`lifecycle_rows` as DataFrames."""
    event_rows, attempt_rows = lifecycle_rows(engine, correlation_key)
    return frame(event_rows, EVENT_COLUMNS), frame(attempt_rows, ATTEMPT_COLUMNS)


_KEY = events.c.correlation_key
_KEY_EXISTS = sa.select(_KEY).where(_KEY == sa.bindparam("key")).limit(1)
_KEY_OF_EVENT = sa.select(_KEY).where(events.c.id == sa.bindparam("id"))
_KEYS_IN_RANGE = sa.select(_KEY).where(_KEY >= sa.bindparam("low"), _KEY < sa.bindparam("high"))\
    .distinct().order_by(_KEY).limit(MAX_PREFIX_MATCHES)
_SIMILAR = sa.select(_KEY, events.c.detail_type).where(_KEY.in_(
    sa.select(_KEY).where(events.c.detail_type == sa.bindparam("type"), _KEY.is_not(None),
                          _KEY != sa.bindparam("exclude"))
    .order_by(events.c.time_ms.desc()).limit(SIMILAR_ORDERS).scalar_subquery()))\
    .order_by(_KEY, events.c.time_ms, events.c.id)
_KEY_EVENTS = _event_select().where(_KEY == sa.bindparam("key"))
_KEY_ATTEMPTS = _attempt_select().where(invocations.c.event_id.in_(
    sa.select(events.c.id).where(_KEY == sa.bindparam("key"))))


_COMPILED: dict[tuple[Any, ...], tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}


def _compiled(dialect: sa.engine.Dialect, statement: sa.Select
              ) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
    """A constant statement's SQL for a kind of dialect (its class, parameter style and
    server version), its parameters' order (None: by name) and their fixed values (limits),
    compiled once per process, not once per engine: compiling costs more than the index read
    it runs, and a command opens a new engine. The statements are this module's constants,
    so the cache stays small."""
    key = (type(dialect), dialect.paramstyle, dialect.server_version_info, statement)
    found = _COMPILED.get(key)
    if found is None:
        compiled = statement.compile(dialect=dialect)
        order = tuple(compiled.positiontup) if compiled.positiontup is not None else None
        found = _COMPILED[key] = (str(compiled), order, dict(compiled.params))
    return found


def _fetch(conn: sa.Connection, statement: sa.Select, params: dict[str, Any]) -> list[Any]:
    """The rows of a constant statement, straight from the driver's cursor."""
    sql, order, fixed = _compiled(conn.dialect, statement)
    values = {**fixed, **params}
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, values if order is None else tuple(values[n] for n in order))
        return list(cursor.fetchall())
    finally:
        cursor.close()


# --- rollups: whole-store and time-window reads (see docs/findings.md, "Rollups") ---

def rollup_lag(engine: Engine) -> tuple[int, int | None]:
    """How stale the rollups are: (minutes waiting for their writer's refresh, the oldest
    of them, epoch ms). Readers never refresh: the writers do (`Store.settle_rollups`)."""
    return _store_of(engine).rollup_lag()


@lru_cache(maxsize=16)
def _store_of(engine: Engine) -> Store:
    """One `Store` per engine: building one compiles its statements (~1.6 ms)."""
    return Store(engine)


def _window(column: sa.ColumnElement, since_ms: int | None,
            until_ms: int | None) -> list[sa.ColumnElement]:
    """Rollup minutes in [since, until), widened to whole minutes."""
    clauses = []
    if since_ms is not None:
        clauses.append(column >= minute_of(since_ms))
    if until_ms is not None:
        clauses.append(column < minute_of(until_ms + MINUTE_MS - 1))
    return clauses


def _bucket_key(column: sa.ColumnElement, bucket_ms: int | None) -> list[sa.ColumnElement]:
    if not bucket_ms:
        return []
    if bucket_ms % MINUTE_MS:
        raise ValueError("rollup buckets must be whole minutes")
    return [(column - column % bucket_ms).label("bucket_ms")]


def _totals(engine: Engine, table: sa.Table, keys: list[str], sums: list[str],
            extra: list[tuple[str, str]], since_ms: int | None, until_ms: int | None,
            bucket_ms: int | None) -> pd.DataFrame:
    """Rollup rows in the window grouped by `keys` (x bucket): `sums` summed, `extra`
    (column, label) combined as `day_rollups.aggregate` says; whole days read from the day
    table, the minutes at the window's ends from the minute table."""
    values = sums + [name for name, _ in extra]
    parts = [sa.select(*(part.c[k] for k in keys),
                       *_bucket_key(part.c.minute_ms, bucket_ms),
                       *(part.c[v] for v in values))
             .where(*_between(part.c.minute_ms, low, high))
             for part, low, high in _spans(table, since_ms, until_ms, bucket_ms)]
    rows = (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery("rows")
    group = [rows.c[k] for k in keys] + ([rows.c.bucket_ms] if bucket_ms else [])
    statement = sa.select(*group, *(sa.func.sum(rows.c[s]).label(s) for s in sums),
                          *(aggregate(rows.c[name], name).label(label) for name, label in extra)
                          ).group_by(*group)
    columns = keys + (["bucket_ms"] if bucket_ms else []) + sums + [label for _, label in extra]
    result = _read(engine, statement, columns)
    for name in sums:
        result[name] = result[name].astype("int64") if name != "duration_sum_ms" \
            else result[name].astype(float)
    return result


def _spans(minutes: sa.Table, since_ms: int | None, until_ms: int | None,
           bucket_ms: int | None) -> list[tuple[sa.Table, int | None, int | None]]:
    """(table, first minute, end minute) parts of the window [since, until) widened to whole
    minutes: its whole days from the day table (unless buckets split days), the whole hours
    left at its ends from the hour table (where the minute table has one and buckets do not
    split hours), the rest from the minute table."""
    low = None if since_ms is None else minute_of(since_ms)
    high = None if until_ms is None else minute_of(until_ms + MINUTE_MS - 1)
    levels = [(period, table) for period, table in ((DAY_MS, DAYS_OF.get(minutes)),
                                                    (HOUR_MS, HOURS_OF.get(minutes)))
              if table is not None and not (bucket_ms and bucket_ms % period)]
    return _split(minutes, low, high, levels)


def _split(minutes: sa.Table, low: int | None, high: int | None,
           levels: Sequence[tuple[int, sa.Table]]
           ) -> list[tuple[sa.Table, int | None, int | None]]:
    """[low, high) (None: unbounded) as whole periods of the first level's table, the parts
    before and after them split by the next levels, the rest read from `minutes`."""
    if not levels:
        return [(minutes, low, high)]
    (period, table), finer = levels[0], levels[1:]
    first = None if low is None else -(-low // period) * period
    last = None if high is None else high - high % period
    if first is not None and last is not None and first >= last:
        return _split(minutes, low, high, finer)
    spans: list[tuple[sa.Table, int | None, int | None]] = [(table, first, last)]
    if low is not None and first is not None and low < first:
        spans += _split(minutes, low, first, finer)
    if high is not None and last is not None and last < high:
        spans += _split(minutes, last, high, finer)
    return spans


def _between(column: sa.ColumnElement, low: int | None,
             high: int | None) -> list[sa.ColumnElement]:
    return ([] if low is None else [column >= low]) + ([] if high is None else [column < high])


def load_event_totals(engine: Engine, since_ms: int | None = None, until_ms: int | None = None,
                      bucket_ms: int | None = None) -> pd.DataFrame:
    """Per (source, detail-type, version) (x bucket of event time, whole minutes) from the
    event rollup: count, first/last, sizes."""
    totals = _totals(engine, event_rollup, ["source", "detail_type", "version"],
                     ["events", "bytes_sum"],
                     [("first_ms", "first_ms"), ("last_ms", "last_ms"),
                      ("bytes_max", "max_size_bytes")],
                     since_ms, until_ms, bucket_ms)
    return totals.rename(columns={"events": "count"})


_MIN_OF_BUCKETS = {"first_ms"}
_MAX_OF_BUCKETS = {"last_ms", "duration_max_ms", "max_size_bytes"}


def without_buckets(totals: pd.DataFrame) -> pd.DataFrame:
    """Bucketed totals (`bucket_ms` from any `load_*_totals`) summed into the window's totals:
    the same values as reading the window without buckets, without a second scan."""
    keys = [c for c in totals.columns if c in CALL_KEYS or c in HANDLING_KEYS]
    values = [c for c in totals.columns if c not in keys and c != "bucket_ms"]
    how = {c: "min" if c in _MIN_OF_BUCKETS else "max" if c in _MAX_OF_BUCKETS else "sum"
           for c in values}
    if totals.empty:
        return totals.drop(columns=["bucket_ms"], errors="ignore")
    return totals.groupby(keys, dropna=False, sort=False).agg(how).reset_index()[keys + values]


def load_type_summary_rollup(engine: Engine, since_ms: int | None = None,
                             until_ms: int | None = None) -> pd.DataFrame:
    """`load_type_summary`'s exact shape and values, from the event rollup (of the events in
    [since_ms, until_ms) when given)."""
    return load_event_totals(engine, since_ms, until_ms)[
        ["source", "detail_type", "version", "count", "first_ms", "last_ms", "max_size_bytes"]]


CALL_KEYS = ["consumer", "source", "detail_type", "version", "outcome", "error_type"]
CALL_SUMS = ["invocations", "duration_count", "duration_sum_ms", *DURATION_BUCKETS]


def load_call_totals(engine: Engine, since_ms: int | None = None, until_ms: int | None = None,
                     bucket_ms: int | None = None) -> pd.DataFrame:
    """Invocation counts per function x event kind x outcome x error type (x bucket of start),
    with duration sums, duration-bucket counts and first/last start, from the rollup."""
    return _totals(engine, invocation_rollup, CALL_KEYS, CALL_SUMS,
                   [("duration_max_ms", "duration_max_ms"), ("first_start_ms", "first_ms"),
                    ("last_start_ms", "last_ms")],
                   since_ms, until_ms, bucket_ms)


def load_call_counts(engine: Engine, since_ms: int | None = None, until_ms: int | None = None,
                     bucket_ms: int | None = None) -> pd.DataFrame:
    """`load_call_totals` without the duration columns (invocations, first/last start only):
    what counts, the graph, top errors and who-handled-what need, at half the cost."""
    return _totals(engine, invocation_rollup, CALL_KEYS, ["invocations"],
                   [("first_start_ms", "first_ms"), ("last_start_ms", "last_ms")],
                   since_ms, until_ms, bucket_ms)


HANDLING_KEYS = ["consumer", "source", "detail_type", "version"]
HANDLING_SUMS = ["events", "attempts", "retried_then_ok", "final_failures", "redelivered",
                 "processed_twice"]


def load_handling_totals(engine: Engine, since_ms: int | None = None,
                         until_ms: int | None = None,
                         bucket_ms: int | None = None) -> pd.DataFrame:
    """Per function x event kind (x bucket): (function, event) pairs whose first attempt is in
    the window, their attempts, and how many recovered, failed finally, came twice."""
    return _totals(engine, handling_rollup, HANDLING_KEYS, HANDLING_SUMS, [], since_ms,
                   until_ms, bucket_ms)


def load_functions(engine: Engine) -> list[str]:
    """Every function the invocation rollup names (a read of its day table: a few hundred
    rows)."""
    r = invocation_rollup_day.c
    with engine.connect() as conn:
        return list(conn.execute(sa.select(r.consumer).distinct().order_by(r.consumer))
                    .scalars())


LATENCY_KEYS = ["consumer", "source", "detail_type", "measure", "bucket"]


def load_latency_totals(engine: Engine, since_ms: int | None = None,
                        until_ms: int | None = None) -> pd.DataFrame:
    """Latency histograms per function x event kind x measure x bucket (LATENCY_KEYS,
    `events`, `skewed`, `latency_max_ms`) of the (function, event) pairs whose first attempt
    is in the window (`latency.latency_from_histograms` reads them)."""
    return _totals(engine, latency_rollup, LATENCY_KEYS, ["events", "skewed"],
                   [("latency_max_ms", "latency_max_ms")], since_ms, until_ms, None)


def _oks(i: Any) -> Any:
    return sa.func.sum(sa.case((i.outcome == "ok", 1), else_=0))


FINAL_FAILURE_COLUMNS = ["consumer", "event_id", "detail_type", "version", "attempts",
                         "first_ms", "last_ms", "last_error_type", "last_error_message"]


def load_final_failures(engine: Engine, functions: Sequence[str] = (),
                        since_ms: int | None = None, until_ms: int | None = None,
                        owners: Mapping[str, str] | None = None,
                        newest: int | None = None) -> pd.DataFrame:
    """`failures.final_failures`' rows (FINAL_FAILURE_COLUMNS, unsorted), counted in SQL: one
    per (consumer, stored event) every attempt of which failed, of the pairs first tried in
    [since_ms, until_ms) (widened to whole minutes); `consumer` the function, or its name in
    `owners` ({function: consumer} of every function renamed, when two functions share a
    consumer: their attempts of one event are one pair), and the last error type and message
    the last non-null ones in start order. One statement, no attempt row leaves the database:
    the minutes the handling rollup flags, each an index range of the function's
    invocations; the pairs with a failed attempt there; each pair's attempts by event id,
    kept when every one failed, its last error type and message taken in the same pass
    (`_last_non_null`); each kept pair's event.

    With `newest`, of each function x detail-type only the minutes holding its `newest` final
    failures first tried last (by the rollup's counts): the rows include those pairs (and
    maybe older ones that failed again in those minutes), a bounded read whatever the store's
    size."""
    def named(table: Any) -> Any:
        return _named(table, owners)

    seen = _flagged_pairs(("final_failures",), functions, since_ms, until_ms,
                          named(invocations.c) if owners else invocations.c.consumer,
                          newest).subquery("seen")
    return _final_failure_rows(engine, seen, named, since_ms, until_ms)


def _named(table: Any, owners: Mapping[str, str] | None) -> Any:
    """The consumer an invocation's attempt counts for, as SQL: its function, or the
    function's name in `owners`. Without owners `consumer || ''`, which keeps SQLite (no
    statistics) from choosing the function's index over the event id's when it joins a
    pair's attempts: thousands of rows per pair."""
    if owners:
        return sa.case(dict(owners), value=table.consumer, else_=table.consumer)
    return table.consumer + ""


def load_latest_final_failures(engine: Engine, functions: Sequence[str], limit: int,
                               since_ms: int | None = None, until_ms: int | None = None,
                               owners: Mapping[str, str] | None = None,
                               detail_types: Sequence[str] = ()) -> pd.DataFrame:
    """`load_final_failures`' rows of the `limit` final failures whose last attempt is the
    latest of each of these functions (of events of `detail_types` only, when given): a
    superset of the `limit` newest of them all, whichever order `failures.newest_first`
    then gives their consumers' names. Exact and bounded: a final failure's last attempt is
    a failed invocation, so each function's failed invocations are read newest first
    (`FAILED_ONLY`'s index), each kept when no attempt of its pair succeeded or came after
    it (and, with a window, the pair's first attempt is in it), until `limit` are kept;
    then those pairs' rows as `load_final_failures` counts them. One statement.

    With `owners`, a pair is a consumer's, and it is wanted when one of the `functions` made
    an attempt at it: the functions sharing their consumers are read too."""
    if not functions or limit <= 0:
        return frame([], FINAL_FAILURE_COLUMNS)
    i, e = invocations.c, events.c
    j = invocations.alias("attempt").c
    # a pair's attempts: one probe of the (event id, function) index without owners
    pair = sa.and_(j.event_id == i.event_id,
                   _named(j, owners) == _named(i, owners) if owners else j.consumer == i.consumer)
    settled = sa.or_(j.outcome == "ok", j.start_ms > i.start_ms)
    first = sa.select(sa.func.min(j.start_ms)).where(pair).scalar_subquery()
    scanned, wanted = list(functions), []
    if owners:
        names = {owners.get(function, function) for function in functions}
        scanned = sorted(names | {f for f, name in owners.items() if name in names})
        if set(scanned) != set(functions):  # a pair of theirs one of `functions` tried
            wanted.append(sa.exists().where(pair, j.consumer.in_(list(functions))))
    latest = []
    for function in scanned:
        last_attempts = sa.select(_named(i, owners).label("consumer"), i.event_id).select_from(
            invocations.join(events, e.id == i.event_id)).where(
            i.consumer == function, FAILED_ONLY, ~sa.exists().where(pair, settled),
            *_window(first, since_ms, until_ms), *wanted)
        if since_ms is not None:  # a pair first tried since then was last tried since then
            last_attempts = last_attempts.where(i.start_ms >= minute_of(since_ms))
        if detail_types:
            last_attempts = last_attempts.where(e.detail_type.in_(list(detail_types)))
        # distinct: a pair's last attempts tied in start are one (and the read stays on
        # the failed invocations' index, which holds no request id)
        kept = last_attempts.add_columns(i.start_ms).distinct().order_by(
            i.start_ms.desc(), i.event_id).limit(limit).subquery()
        latest.append(sa.select(kept.c.consumer, kept.c.event_id))
    # union, not union all: a pair's last attempts tied in start by two of its functions
    seen = sa.union(*latest).subquery("seen")
    return _final_failure_rows(engine, seen, lambda table: _named(table, owners), since_ms,
                               until_ms)


def _final_failure_rows(engine: Engine, seen: sa.Subquery, named: Any, since_ms: int | None,
                        until_ms: int | None) -> pd.DataFrame:
    """FINAL_FAILURE_COLUMNS of the (consumer, event_id) pairs in `seen` (`named`: the
    consumer's expression of an invocations table) that failed finally, first tried in the
    window: each pair's attempts by event id, kept when every one failed, its last error type
    and message taken in the same pass (`_last_non_null`), joined to its event."""
    i, e = invocations.c, events.c
    failed = sa.func.sum(sa.case((i.outcome.in_(FAILED), 1), else_=0))
    dialect = engine.dialect.name
    pairs = sa.select(seen.c.consumer, seen.c.event_id, sa.func.count().label("attempts"),
                      sa.func.min(i.start_ms).label("first_ms"),
                      sa.func.max(i.start_ms).label("last_ms"),
                      _last_non_null(i.error_type, dialect).label("last_error_type"),
                      _last_non_null(i.error_message, dialect).label("last_error_message")
                      ).select_from(
        seen.join(invocations, sa.and_(i.event_id == seen.c.event_id,
                                       named(i) == seen.c.consumer))).group_by(
        seen.c.consumer, seen.c.event_id).having(
        failed == sa.func.count(), *_window(sa.func.min(i.start_ms), since_ms, until_ms)
    ).subquery("pairs")
    p = pairs.c
    return _read(engine, sa.select(
        p.consumer, p.event_id, e.detail_type, e.version, p.attempts, p.first_ms, p.last_ms,
        _unpacked(p.last_error_type, dialect), _unpacked(p.last_error_message, dialect)
    ).select_from(pairs.join(events, e.id == p.event_id)), FINAL_FAILURE_COLUMNS)


# Both dialects take a pair's last non-null error type and message in the pass that groups
# its attempts (a correlated subquery per pair and column was two ordered index probes per
# final failure: ~32k on the 1M-event store, a fifth of `failures`' CPU time). Neither has a
# `last` aggregate, and SQLite before 3.44 no ORDER BY inside one, hence one aggregate per
# dialect: PostgreSQL orders an array; SQLite takes the max() of a text key that sorts as
# (start_ms, request_id) does, the value appended after a separator. Request ids tied in
# start_ms compare by code point on both (SQLite's BINARY, PostgreSQL's "C" whatever the
# database's collation), as `failures.per_event` compares them.
_KEY_END = " "  # below every character of `hex()` and of the fixed-width start
_INT64_MAX = 2**63 - 1


def _last_non_null(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    """An aggregate over a pair's attempts: its last non-null `column` in (start_ms,
    request_id) order, as `_unpacked` reads it back (None when every one is null)."""
    i = invocations.c
    if dialect == "postgresql":
        return sa.func.array_agg(column, type_=sa.ARRAY(sa.Text)).aggregate_order_by(
            i.start_ms.desc(), i.request_id.collate("C").desc()).filter(
            column.is_not(None))[1]
    # fixed width, so text order is number order (negative starts first: '-' < '0');
    # hex() of the id's UTF-8 bytes keeps its BINARY order and never holds the separator
    start = sa.case((i.start_ms < 0, "-" + sa.func.printf("%019d", i.start_ms + _INT64_MAX)),
                    else_=sa.func.printf("%020d", i.start_ms))
    key = start + sa.func.hex(i.request_id) + _KEY_END
    return sa.func.max(sa.case((column.is_not(None), key + column)))


def _unpacked(last: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[Any]:
    """The value `_last_non_null` found, from the aggregate's result."""
    if dialect == "postgresql":
        return last
    return sa.func.substr(last, sa.func.instr(last, _KEY_END) + 1)


def _flagged_pairs(flags: tuple[str, ...], functions: Sequence[str], since_ms: int | None,
                   until_ms: int | None, name: Any = invocations.c.consumer,
                   newest: int | None = None) -> sa.Select:
    """The distinct (consumer, event_id) pairs (`name`: the consumer's expression) of the
    invocations in the minutes whose handling rollup row has one of the `flags` columns > 0
    (of `functions` only, when given; in the window's minutes; with `newest`, only the
    latest minutes of each function x detail-type that hold its `newest` latest flagged
    pairs), each minute an index range of the function's invocations; for final failures
    only the failed invocations there (a pair that failed finally failed at its first
    attempt)."""
    h, i = handling_rollup.c, invocations.c
    chosen = [sa.or_(*(h[flag] > 0 for flag in flags)),
              *_window(h.minute_ms, since_ms, until_ms)]
    if functions:
        chosen.append(h.consumer.in_(list(functions)))
    if newest is None:
        flagged = sa.select(h.consumer, h.minute_ms).where(*chosen).distinct()
    else:  # a minute is kept while fewer than `newest` pairs were flagged after it
        newer = sa.func.sum(h[flags[0]]).over(partition_by=(h.consumer, h.detail_type),
                                              order_by=h.minute_ms.desc(), rows=(None, -1))
        ranked = sa.select(h.consumer, h.minute_ms, newer.label("newer")).where(
            *chosen, h.detail_type.is_not(None)).subquery("ranked")
        r = ranked.c
        flagged = sa.select(r.consumer, r.minute_ms).where(
            sa.or_(r.newer.is_(None), r.newer < newest)).distinct()
    minutes = flagged.subquery("flagged")
    pairs = sa.select(name.label("consumer"), i.event_id).join(minutes, sa.and_(
        i.consumer == minutes.c.consumer, i.start_ms >= minutes.c.minute_ms,
        i.start_ms < minutes.c.minute_ms + MINUTE_MS)).where(i.event_id.is_not(None))
    if flags == ("final_failures",):
        pairs = pairs.where(FAILED_ONLY)  # read from the failed invocations' index alone
    return pairs.distinct()


DUPLICATE_COLUMNS = ["consumer", "event_id", "detail_type", "deliveries", "successes"]


def load_duplicate_pairs(engine: Engine, functions: Sequence[str] = (),
                         since_ms: int | None = None, until_ms: int | None = None,
                         owners: Mapping[str, str] | None = None) -> pd.DataFrame:
    """`duplicates.repeated_deliveries`' rows (DUPLICATE_COLUMNS) of every (function, event)
    pair first tried in [since_ms, until_ms) (widened to whole minutes) that was delivered
    more than once (distinct request ids) or succeeded more than once, counted in SQL; the
    pairs of functions sharing a consumer (`owners`: {function: consumer} of every function
    renamed) merged into one row per consumer and event. One statement, no attempt row
    leaves the database: the minutes the handling rollup flags (`_flagged_pairs`), the pairs
    there, each pair's attempts by event id, kept when they match; counted per consumer."""
    i, e = invocations.c, events.c
    seen = _flagged_pairs(("redelivered", "processed_twice"), functions, since_ms,
                          until_ms).subquery("seen")
    # a pair's attempts through the event id index (`_named`: not the function's index)
    function = _named(i, None)
    mine = sa.and_(i.event_id == seen.c.event_id, function == seen.c.consumer)
    pairs = sa.select(seen.c.consumer, seen.c.event_id).select_from(
        seen.join(invocations, mine)).group_by(seen.c.consumer, seen.c.event_id).having(
        sa.or_(sa.func.count(sa.distinct(i.request_id)) > 1, _oks(i) > 1),
        *_window(sa.func.min(i.start_ms), since_ms, until_ms)).subquery("pairs")
    p = pairs.c
    name = _named(p, owners) if owners else p.consumer
    return _read(engine, sa.select(
        name, p.event_id, sa.func.max(e.detail_type), sa.func.count(sa.distinct(i.request_id)),
        _oks(i)).select_from(pairs.join(invocations, sa.and_(
            i.event_id == p.event_id, function == p.consumer)).outerjoin(
            events, e.id == p.event_id)).group_by(name, p.event_id), DUPLICATE_COLUMNS)


def load_error_example(engine: Engine, functions: Sequence[str], detail_type: str | None,
                       error_type: str, outcome_if_unnamed: str | None, since_ms: int,
                       until_ms: int | None = None) -> tuple[str | None, str | None]:
    """(first non-null error message, first non-null event id) of one top-error group, read
    from the function's invocations in start order from `since_ms` (the group's first)."""
    i, e = invocations.c, events.c
    named = i.error_type == error_type
    if outcome_if_unnamed is not None:
        named = sa.or_(named, sa.and_(i.error_type.is_(None), i.outcome == outcome_if_unnamed))
    kind = e.detail_type.is_(None) if detail_type is None else e.detail_type == detail_type
    base = sa.select(i.error_message, i.event_id).select_from(
        invocations.outerjoin(events, e.id == i.event_id)).where(
        i.consumer.in_(list(functions)), i.start_ms >= since_ms, named, kind,
        i.outcome.in_(["error", "timeout"])).order_by(i.start_ms, i.request_id)
    if until_ms is not None:
        base = base.where(i.start_ms <= until_ms)
    with engine.connect() as conn:
        message = conn.execute(base.where(i.error_message.is_not(None)).limit(1)).first()
        example = conn.execute(base.where(i.event_id.is_not(None)).limit(1)).first()
    return (message[0] if message else None, example[1] if example else None)


ERROR_INVOCATION_COLUMNS = ["request_id", "consumer", "start_ms", "outcome", "duration_ms",
                            "error_type", "error_message", "event_id", "detail_type",
                            "log_group", "log_stream"]


def load_error_invocations(engine: Engine, functions: Sequence[str], detail_type: str | None,
                           error_type: str, outcome_if_unnamed: str | None,
                           since_ms: int | None = None, until_ms: int | None = None,
                           limit: int = 20) -> pd.DataFrame:
    """The latest `limit` failed invocations of an error type (of some functions and one
    detail-type when given) started in [since_ms, until_ms), newest first, with the log group
    and stream holding their log lines (index read on the functions' start times)."""
    i, e = invocations.c, events.c
    named = i.error_type == error_type
    if outcome_if_unnamed is not None:
        named = sa.or_(named, sa.and_(i.error_type.is_(None), i.outcome == outcome_if_unnamed))
    statement = sa.select(i.request_id, i.consumer, i.start_ms, i.outcome, i.duration_ms,
                          i.error_type, i.error_message, i.event_id, e.detail_type,
                          i.log_group, i.log_stream).select_from(
        invocations.outerjoin(events, e.id == i.event_id)).where(
        named, i.outcome.in_(["error", "timeout"]))
    if functions:
        statement = statement.where(i.consumer.in_(list(functions)))
    if detail_type is not None:
        statement = statement.where(e.detail_type == detail_type)
    statement = _within(statement, i.start_ms, since_ms, until_ms)
    return _read(engine, statement.order_by(i.start_ms.desc(), i.request_id).limit(limit),
                 ERROR_INVOCATION_COLUMNS)


CANCEL_COLUMNS = ["id", "correlation_key", "detail_type", "time_ms"]
FIRST_SEEN_COLUMNS = ["consumer", "correlation_key", "time_ms"]
HANDLER_COLUMNS = ["consumer", "event_id"]


def _cancellations(cancellations: Sequence[str], since_ms: int | None, until_ms: int | None,
                   latest: int | None) -> sa.Select:
    """The cancellation events (CANCEL_COLUMNS) of every order with a cancellation (one of
    the given types; cancelled within [since_ms, until_ms) when given; of the `latest` such
    cancellations only when given). An empty correlation key names no order."""
    e = events.c
    keys = sa.select(e.correlation_key).where(
        e.detail_type.in_(list(cancellations)), e.correlation_key.is_not(None),
        e.correlation_key != "")
    keys = _within(keys, e.time_ms, since_ms, until_ms)
    if latest is not None:
        keys = keys.order_by(e.time_ms.desc()).limit(latest)
    return sa.select(e.id, e.correlation_key, e.detail_type, e.time_ms).where(
        e.correlation_key.in_(keys), e.detail_type.in_(list(cancellations)))


def load_cancellation_summary(engine: Engine, cancellations: Sequence[str],
                              since_ms: int | None = None, until_ms: int | None = None,
                              latest: int | None = None
                              ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What `subscriptions.missing_from` needs about every order with a cancellation (see
    `_cancellations`): its cancellation events (CANCEL_COLUMNS), when each function first
    handled any of its events (FIRST_SEEN_COLUMNS, `consumer` the function) and who handled
    its cancellations (HANDLER_COLUMNS). Aggregated in SQL over the covering indexes
    `ix_events_order_cover` and `ix_invocations_event_consumer`: no row of an order's events
    or attempts leaves the database."""
    e, i = events.c, invocations.c
    cancels = _cancellations(cancellations, since_ms, until_ms, latest)
    keys = cancels.with_only_columns(e.correlation_key)
    first_seen = sa.select(i.consumer, e.correlation_key, sa.func.min(e.time_ms)).select_from(
        events.join(invocations, i.event_id == e.id)).where(
        e.correlation_key.in_(keys)).group_by(i.consumer, e.correlation_key)
    handlers = sa.select(i.consumer, i.event_id).distinct().where(
        i.event_id.in_(cancels.with_only_columns(e.id)))
    return (_read(engine, cancels, CANCEL_COLUMNS),
            _read(engine, first_seen, FIRST_SEEN_COLUMNS),
            _read(engine, handlers, HANDLER_COLUMNS))


MISSED_COLUMNS = ["consumer", "id", "correlation_key", "detail_type", "time_ms"]


def load_missed_cancellations(engine: Engine, cancellations: Sequence[str],
                              since_ms: int | None = None, until_ms: int | None = None,
                              latest: int | None = None) -> pd.DataFrame:
    """`subscriptions.missed_cancellations`' rows (MISSED_COLUMNS: the function, and the
    cancellation event of `_cancellations` it missed) found in SQL (`missed_select`)."""
    return _read(engine, missed_select(cancellations, since_ms, until_ms, latest),
                 MISSED_COLUMNS)


def missed_select(cancellations: Sequence[str], since_ms: int | None = None,
                  until_ms: int | None = None, latest: int | None = None) -> sa.Select:
    """Every cancellation (`_cancellations`) x every function the invocation rollup names,
    kept when the function handled an event of the order older than the cancellation and
    not the cancellation itself. Two index probes per pair, each stopping at its first row,
    on the covering indexes `ix_events_order_cover` and `ix_invocations_event_consumer`: no
    first-seen time of every order x function is built."""
    e, i = events.c, invocations.c
    # read once, whichever side of the join the planner loops over
    cancels = _cancellations(cancellations, since_ms, until_ms, latest).cte(
        "cancels").prefix_with("MATERIALIZED")
    c = cancels.c
    functions = sa.select(invocation_rollup_day.c.consumer).distinct().subquery("functions")
    f = functions.c
    # selecting index columns only: the probes read the covering indexes, never a row
    handled = sa.select(i.event_id).where(i.event_id == c.id,
                                          i.consumer == f.consumer).exists()
    later = invocations.alias("later")
    before = sa.select(e.id).select_from(events.join(later, later.c.event_id == e.id)).where(
        e.correlation_key == c.correlation_key, e.time_ms < c.time_ms,
        later.c.consumer == f.consumer).exists()
    return sa.select(f.consumer, c.id, c.correlation_key, c.detail_type, c.time_ms)\
        .select_from(cancels.join(functions, sa.true())).where(~handled, before)


CONTRACT_COLUMNS = ["consumer", "detail_type", "version", "check_kind", "status", "passed",
                    "reason", "checked_ms"]


def load_contract_results(store: Store) -> pd.DataFrame | None:
    """The newest stored result of every contract check (None when none was ever stored),
    with `status` (pass, fail, or not checked: a check that saw nothing is no pass) and
    `reason`: the first violation's message."""
    rows = store.contract_results(latest_only=True)
    if not rows:
        return None
    from eventscope.contracts.checks import check_status  # jsonschema: only with results
    return frame(({**row, "status": check_status(bool(row["passed"]), row["summary"]),
                   "reason": _first_violation(row["violations"])} for row in rows),
                 CONTRACT_COLUMNS)


def _first_violation(violations: str) -> str:
    found = orjson.loads(violations or "[]")
    if not found:
        return ""
    first = found[0]
    return str(first.get("message", first)) if isinstance(first, dict) else str(first)


# --- the faces' small reads: index reads, never a scan ---

def store_is_empty(engine: Engine) -> bool:
    """Whether the store holds no event and no invocation (two one-row reads, not counts)."""
    with engine.connect() as conn:
        return all(conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first()
                   is None for table in (events, invocations))


def latest_event_ms(engine: Engine) -> int | None:
    """The newest event time in the store (None when it holds no event)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(events.c.time_ms))).scalar()


def earliest_event_ms(engine: Engine) -> int | None:
    """The oldest event time in the store (None when it holds no event)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.min(events.c.time_ms))).scalar()


def load_recent_events(engine: Engine, since_ms: int | None = None,
                       until_ms: int | None = None, limit: int = 500) -> pd.DataFrame:
    """The window's latest `limit` events (EVENT_COLUMNS, newest first)."""
    statement = _within(_event_select(), events.c.time_ms, since_ms, until_ms)\
        .order_by(events.c.time_ms.desc(), events.c.id).limit(limit)
    return _read(engine, statement, EVENT_COLUMNS)


def latest_order_of_type(engine: Engine, detail_type: str, since_ms: int | None = None,
                         until_ms: int | None = None) -> str | None:
    """The correlation key (else the id) of the window's newest event of a detail-type: an
    order to open from the graph (one index read on (detail_type, time_ms))."""
    statement = _within(sa.select(events.c.id, events.c.correlation_key)
                        .where(events.c.detail_type == detail_type), events.c.time_ms,
                        since_ms, until_ms).order_by(events.c.time_ms.desc()).limit(1)
    with engine.connect() as conn:
        row = conn.execute(statement).first()
    return None if row is None else str(row.correlation_key or row.id)


def load_event_details(engine: Engine, ids: Sequence[str]) -> dict[str, str]:
    """{event id: detail JSON} of the stored events among `ids` (primary-key reads)."""
    if not ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(events.c.id, events.c.detail)
                            .where(events.c.id.in_(list(ids)))).all()
    return {row.id: row.detail for row in rows}


# --- dead-letter queues: the latest sample of each (`collectors/dlq.py`) ---

def load_dead_letters(engine: Engine, now_ms: int | None = None) -> list[dict[str, Any]]:
    """Each watched dead-letter queue's latest sample, with ages in seconds at `now_ms`:
    `oldest_age_s` (of the oldest message peeked), `nonempty_for_s` (since a sample first
    found it non-empty) and `sample_age_s` (how old the sample is). Empty when none sampled."""
    import time

    from eventscope.tables import queue_depths

    now = int(time.time() * 1000) if now_ms is None else now_ms
    rows = _rows(engine, sa.select(queue_depths).order_by(queue_depths.c.queue))

    def age(ms: Any) -> int | None:
        return None if ms is None else max(0, (now - int(ms)) // 1000)

    return [{**row, "oldest_age_s": age(row["oldest_sent_ms"]),
             "nonempty_for_s": age(row["nonempty_since_ms"]),
             "sample_age_s": age(row["observed_ms"])} for row in rows]


# --- the bus rules: the latest `collect rules` snapshot of each bus ---

def _rows(engine: Engine, statement: sa.Select) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(statement)]


def rule_buses(engine: Engine) -> list[str]:
    """The buses whose rules have been snapshotted."""
    with engine.connect() as conn:
        return [row[0] for row in _fetch(conn, _BUSES, {})]


_BUSES = sa.select(rule_snapshots.c.bus).distinct().order_by(rule_snapshots.c.bus)


def latest_rules(engine: Engine, bus: str) -> list[dict[str, Any]]:
    """The rules of the latest snapshot of a bus (by name), each with a `targets` list."""
    r, t = rule_snapshots.c, rule_targets.c
    latest = sa.select(sa.func.max(r.snapshot_ms)).where(r.bus == bus).scalar_subquery()
    rules = _rows(engine, sa.select(rule_snapshots).where(
        r.bus == bus, r.snapshot_ms == latest).order_by(r.rule_name))
    targets = _rows(engine, sa.select(rule_targets).where(
        t.bus == bus, t.snapshot_ms == latest).order_by(t.rule_name, t.target_id))
    for rule in rules:
        rule["targets"] = [x for x in targets if x["rule_name"] == rule["rule_name"]]
    return rules


def target_name(arn: str, target_id: str = "") -> str:
    """A rule target's name: its ARN's last segment (the function or queue name), or the
    target's id where the ARN names nothing (an archive's managed rule targets
    `arn:aws:events:REGION:::`)."""
    return arn.rsplit(":", 1)[-1].rsplit("/", 1)[-1] or target_id


def delivers_to_consumers(rule: Mapping[str, Any]) -> bool:
    """Whether a snapshotted rule routes events to the bus's consumers: an enabled pattern
    rule that is neither managed by an AWS service (`ManagedBy`: an archive's rule, schema
    discovery's) nor eventscope's own tap (`tables.TAP_RULE_NAME`). Those receive every
    event and would show as a consumer of every type."""
    return (rule["state"] == "ENABLED" and bool(rule["event_pattern"])
            and not rule.get("managed_by") and rule["rule_name"] != TAP_RULE_NAME)


def subscription_rows(engine: Engine, bus: str) -> list[dict[str, Any]]:
    """Who is subscribed to what in the latest snapshot of a bus: one row per rule × type ×
    target (SUBSCRIPTION_COLUMNS; `consumer` is the target ARN's last segment, the function
    or queue name). `source` / `detail_type` are None when the rule's pattern does not pin
    them to listed values. Only rules that deliver to consumers (`delivers_to_consumers`):
    disabled and scheduled rules, AWS-managed rules and eventscope's tap are left out."""
    rows: list[dict[str, Any]] = []
    for rule in latest_rules(engine, bus):
        if not delivers_to_consumers(rule):
            continue
        try:
            pattern = orjson.loads(rule["event_pattern"])
        except orjson.JSONDecodeError:
            continue  # not a pattern EventBridge would accept; no subscription to read
        if not isinstance(pattern, dict):
            continue
        sources = listed_values(pattern, "source") or [None]
        types = listed_values(pattern, "detail-type") or [None]
        for target in rule["targets"]:
            consumer = target_name(target["arn"], target["target_id"])
            rows.extend({"rule": rule["rule_name"], "source": source, "detail_type": kind,
                         "target": target["arn"], "consumer": consumer}
                        for source in sources for kind in types)
    return rows


def load_bus_subscriptions(engine: Engine) -> pd.DataFrame | None:
    """Who the buses' rules deliver to (SUBSCRIPTION_COLUMNS, `consumer` the target's name),
    from the latest snapshot of each bus; None when rules were never collected."""
    rows = [row for bus in rule_buses(engine) for row in subscription_rows(engine, bus)]
    return frame(rows, SUBSCRIPTION_COLUMNS) if rows else None
