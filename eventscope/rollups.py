"""Rollup maintenance: which minutes a write makes stale, and recomputing them from raw rows.

The per-minute rollup tables (see `eventscope.tables`) answer whole-store questions without
scanning millions of rows. `Store.write_batch` marks the minutes a batch may change with
`changed_minutes`, each with the side that changed (its events, its invocations: a minute
whose invocations alone changed keeps its `event_rollup` rows, and one whose events alone
changed its invocation-side rows); `Store.refresh_rollups` recomputes marked minutes with
`recompute`.
Functions here take a connection inside the caller's transaction.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateTable

from eventscope.pg_locks import RECOMPUTE_LOCK, lock_store
from eventscope.records import EVENT_COLUMNS, Invocation
from eventscope.tables import (BOTH_SIDES, DAY_MS, DURATION_EDGES_MS, EVENTS_SIDE, EVENTS_TIME,
                               FAILED_STARTS, FAILED_STARTS_DDL, FINDING_INDEXES, INVOCATIONS_SIDE,
                               INVOCATIONS_START, LATENCY_EDGES_MS, LATENCY_MEASURES, MINUTE_MS,
                               event_rollup, events, handling_rollup, invocation_rollup,
                               invocations, latency_rollup, meta, rollup_dirty)


def prepare_rollups(conn: Connection, had_rollups: bool) -> None:
    """On a store made before the findings' covering indexes: add them; before the latency
    rollup: fill it; before marks said which side of a minute changed: add their `sides`
    (marks already there: both); before rollups: add the time indexes, mark every minute
    dirty."""
    if conn.execute(sa.select(meta.c.value).where(meta.c.key == SIDES_KEY)).first() is None:
        columns = {c["name"] for c in sa.inspect(conn).get_columns(rollup_dirty.name)}
        if "sides" not in columns:  # created by `metadata.create_all` on a new store
            conn.exec_driver_sql(f"ALTER TABLE {rollup_dirty.name} ADD COLUMN sides INTEGER "
                                 f"NOT NULL DEFAULT {BOTH_SIDES}")
        conn.execute(meta.insert().values(key=SIDES_KEY, value="added"))
    for index in FINDING_INDEXES:  # added later than the tables: a store made before them
        index.create(conn, checkfirst=True)
    conn.exec_driver_sql(FAILED_STARTS_DDL)  # IF NOT EXISTS
    if conn.execute(sa.select(meta.c.value).where(meta.c.key == LATENCY_KEY)).first() is None:
        if had_rollups:  # else every minute is marked below: the refresh fills it
            _fill_latency_rollup(conn)
        conn.execute(meta.insert().values(key=LATENCY_KEY, value="filled"))
    if had_rollups:
        return
    for index in (INVOCATIONS_START, EVENTS_TIME):
        index.create(conn, checkfirst=True)
    minutes = sa.union(sa.select(_minute(events.c.time_ms)),
                       sa.select(_minute(invocations.c.start_ms))).subquery()
    conn.execute(rollup_dirty.insert().from_select(["minute_ms"], sa.select(minutes.c[0])))


LATENCY_KEY = "latency_rollup"  # meta key: the latency rollup was filled (or born) here
SIDES_KEY = "rollup_mark_sides"  # meta key: `rollup_dirty` has its `sides` column


def rollups_prepared(relations: set[str], meta_keys: set[str]) -> bool:
    """Whether `prepare_rollups` has nothing to do on a store holding these tables and
    indexes (names) and these `meta` keys: its rollups, covering indexes and filled latency
    rollup are there."""
    return (rollup_dirty.name in relations and LATENCY_KEY in meta_keys
            and SIDES_KEY in meta_keys
            and all(index.name in relations for index in FINDING_INDEXES)
            and FAILED_STARTS in relations)


def _fill_latency_rollup(conn: Connection) -> None:
    """On a store whose rollups were made before the latency rollup: fill it from every
    stored invocation, once."""
    low, high = conn.execute(sa.select(sa.func.min(invocations.c.start_ms),
                                       sa.func.max(invocations.c.start_ms))).one()
    if low is None:
        return
    _recompute_pairs(conn, [(minute_of(low), minute_of(high) + MINUTE_MS)],
                     LATENCY_INSERTS)


def minute_of(ms: int) -> int:
    return ms - ms % MINUTE_MS


def ranges_within(ranges: Sequence[tuple[int, int]], minutes: set[int]
                  ) -> list[tuple[int, int]]:
    """The minutes of `ranges` that are in `minutes`, as ranges (`minute_ranges`)."""
    return minute_ranges([minute for low, high in ranges
                          for minute in range(low, high, MINUTE_MS) if minute in minutes])


def minute_ranges(minutes: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted minutes merged into [start, end) ranges of consecutive minutes."""
    ranges: list[tuple[int, int]] = []
    for minute in sorted(minutes):
        if ranges and ranges[-1][1] == minute:
            ranges[-1] = (ranges[-1][0], minute + MINUTE_MS)
        else:
            ranges.append((minute, minute + MINUTE_MS))
    return ranges


MAX_RANGES = 200  # ranges per group of a refresh (one transaction each, with `max_minutes`)


def range_chunks(minutes: Sequence[int], max_minutes: int) -> list[list[tuple[int, int]]]:
    """Sorted minutes as [start, end) ranges, grouped so no group holds more than
    `max_minutes` minutes or `MAX_RANGES` ranges (one statement's worth)."""
    chunks: list[list[tuple[int, int]]] = []
    for start in range(0, len(minutes), max_minutes):
        ranges = minute_ranges(minutes[start:start + max_minutes])
        chunks.extend(ranges[i:i + MAX_RANGES] for i in range(0, len(ranges), MAX_RANGES))
    return chunks


def day_chunks(minutes: Sequence[int], max_minutes: int) -> list[list[tuple[int, int]]]:
    """`range_chunks`, cut between days where it can: a group holds whole days while they fit
    in `max_minutes`, and only a day with more dirty minutes than that (or more than
    `MAX_RANGES` ranges) is split. A refresh recomputes the days of each group
    (`day_rollups.recompute_days`) after its minutes, but of a day split between two groups
    only the last does (`Store.refresh_rollups`); cut by count alone, most days were split."""
    chunks: list[list[tuple[int, int]]] = []
    days: list[int] = []
    for _, group in itertools.groupby(minutes, key=lambda minute: minute - minute % DAY_MS):
        day = list(group)
        if days and len(days) + len(day) > max_minutes:
            chunks.extend(range_chunks(days, max_minutes))
            days = []
        days += day
    if days:
        chunks.extend(range_chunks(days, max_minutes))
    return chunks


def _minute(column: Any) -> Any:
    return column - column % MINUTE_MS


LOOKUP_CHUNK = 500


_ID, _TIME = EVENT_COLUMNS.index("id"), EVENT_COLUMNS.index("time_ms")


def changed_minutes(conn: Connection, event_rows: Sequence[tuple[Any, ...]],
                    invocations_: Sequence[Invocation]) -> tuple[set[int], set[int]]:
    """Minutes whose rollups a batch may change, by side (see `tables.EVENTS_SIDE`): its
    events' minutes (their `event_rollup`), and its invocations' with those of stored
    invocations of its events (an event arriving late changes their attribution; the
    invocation-side rollups). Events are given as their rows (`records.event_row`); their
    stored invocations are not looked up in a store that holds none (events ingested first)."""
    event_minutes = {row[_TIME] - row[_TIME] % MINUTE_MS for row in event_rows}
    minutes = {i.start_ms - i.start_ms % MINUTE_MS for i in invocations_}
    ids = [row[_ID] for row in event_rows]
    if ids and not invocations_ and conn.exec_driver_sql(_ANY_INVOCATION).first() is None:
        return event_minutes, minutes
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:  # driver SQL: SQLAlchemy's per-statement IN expansion costs more than the lookup
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = ids[start:start + LOOKUP_CHUNK]
            cursor.execute(_lookup_sql(conn.dialect.paramstyle, len(chunk)), chunk)
            minutes.update(row[0] for row in cursor.fetchall())
    finally:
        cursor.close()
    return event_minutes, minutes


_ANY_INVOCATION = f"SELECT 1 FROM {invocations.name} LIMIT 1"


def _lookup_sql(paramstyle: str, count: int) -> str:
    mark, modulo = ("?", "%") if paramstyle == "qmark" else ("%s", "%%")
    return (f"SELECT DISTINCT start_ms - start_ms {modulo} {MINUTE_MS} FROM invocations "
            f"WHERE event_id IN ({', '.join([mark] * count)})")


def related_minutes(conn: Connection, dirty: Sequence[int], chunk: int) -> set[int]:
    """Minutes outside `dirty` holding invocations of events handled in a dirty minute
    (`dirty`: sorted minutes whose invocations changed; a minute whose events alone changed
    moves no (function, event) pair)."""
    if not dirty:
        return set()
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
    related = prepared(conn, "related")
    for ranges in range_chunks(dirty, chunk):
        for params in related.params(ranges):
            found.update(row[0] for row in conn.exec_driver_sql(related.sql, params))
    return found - wanted


def recompute(conn: Connection, ranges: Sequence[tuple[int, int]],
              event_minutes: Collection[int] | None = None,
              invocation_minutes: Collection[int] | None = None
              ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Replace the rollup rows of the minutes in `ranges` (one transaction, marks first):
    the `event_rollup` rows of `event_minutes` and the invocation-side rows (invocation,
    handling, latency) of `invocation_minutes` (None: every minute of `ranges`), and of
    each side of a minute its mark names when taken (a writer may have added a side since
    the caller read the marks). Returns the (event, invocation) ranges recomputed, whose
    days `day_rollups.recompute_days` recomputes next."""
    if conn.dialect.name == "postgresql":  # SQLite's one writer needs no row locks
        # One recomputation at a time across a store's processes (writers settle their own
        # batches): a minute recomputed by two at once -- a related minute has no mark to
        # lock -- would be deleted by both before either inserted, then counted twice. Taken
        # before any mark: a writer never waits for it, so it cannot join a deadlock.
        lock_store(conn, RECOMPUTE_LOCK)
        # Lock marks in ascending order, as writers take them (sorted): they cannot deadlock.
        lock = prepared(conn, "lock_marks")
        for params in lock.params(sorted(ranges)):
            conn.exec_driver_sql(lock.sql, params).fetchall()
    every: set[int] = set()
    if event_minutes is None or invocation_minutes is None:
        every = {minute for low, high in ranges for minute in range(low, high, MINUTE_MS)}
    events_side = set(every if event_minutes is None else event_minutes)
    invocations_side = set(every if invocation_minutes is None else invocation_minutes)
    take = prepared(conn, "delete_marks")  # one range at a time: RETURNING needs execute
    for params in take.params(ranges):
        for minute, sides in conn.exec_driver_sql(take.sql, params):
            if sides & EVENTS_SIDE:
                events_side.add(int(minute))
            if sides & INVOCATIONS_SIDE:
                invocations_side.add(int(minute))
    event_ranges = ranges_within(ranges, events_side)
    invocation_ranges = ranges_within(ranges, invocations_side)
    for side_ranges, steps in ((event_ranges, _EVENT_STEPS),
                               (invocation_ranges, _INVOCATION_STEPS)):
        for name in steps if side_ranges else ():
            statement = prepared(conn, name)
            conn.exec_driver_sql(statement.sql, statement.params(side_ranges))
    if invocation_ranges:
        _recompute_pairs(conn, invocation_ranges,
                         ("insert_handling_rollup", *LATENCY_INSERTS))
    return event_ranges, invocation_ranges


def _recompute_pairs(conn: Connection, ranges: Sequence[tuple[int, int]],
                     inserts: Sequence[str]) -> None:
    """The per-pair rollups (`inserts`: handling, latency) of the minutes in `ranges`, from
    one computation of each range's (function, event) pairs: grouped, joined to their event
    and their latencies clipped once into `PAIRS` (a temporary table), which both inserts
    read (each grouping the pairs and joining the events itself cost twice as much, and
    the latency buckets were evaluated over the unclipped expression at every comparison).
    The pairs of every range are filled first (a pair's first attempt is in one range only,
    so no pair is filled twice) and each insert then runs once: run once per range, their
    fixed cost was a sixth of a refresh of scattered minutes (thousands of short ranges)."""
    conn.exec_driver_sql(_create_pairs(conn.dialect))
    conn.exec_driver_sql(_CLEAR_PAIRS)
    fill = prepared(conn, "fill_pairs")
    conn.exec_driver_sql(fill.sql, fill.params(ranges))  # executemany: one range at a time
    for name in inserts:
        statement = prepared(conn, name)
        conn.exec_driver_sql(statement.sql, statement.defaults_only())
    conn.exec_driver_sql(_CLEAR_PAIRS)


# --- the refresh's statements, built and compiled once per process and dialect ----------------
#
# Every statement takes one [lo, hi) range of minutes as its two parameters and runs once per
# range (executemany where it writes), rather than being built and compiled anew, with the
# ranges written in, on every refresh.


class Prepared:
    """One statement compiled for a dialect, its constants kept as default parameters."""

    def __init__(self, statement: Any, dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect,
                                     compile_kwargs={"render_postcompile": True})
        self.sql = str(compiled)
        self.order: Sequence[str] | None = compiled.positiontup  # None: named parameters
        self.defaults = dict(compiled.params)

    def params(self, ranges: Sequence[tuple[int, int]]) -> list[Any]:
        """Driver parameters, one set per [lo, hi) range."""
        rows = [{**self.defaults, "lo": int(lo), "hi": int(hi)} for lo, hi in ranges]
        if self.order is None:
            return rows
        return [tuple(row[name] for name in self.order) for row in rows]

    def defaults_only(self) -> Any:
        """Driver parameters of a statement that takes no range (it reads `PAIRS`)."""
        if self.order is None:
            return dict(self.defaults)
        return tuple(self.defaults[name] for name in self.order)


_PREPARED: dict[tuple[str, str], Prepared] = {}


def prepared(conn: Connection, name: str, build: Callable[[], Any] | None = None) -> Prepared:
    """The statement `name` (built by `build`, else by this module's builder of that name)
    compiled once per process and dialect."""
    key = (conn.dialect.name, name)
    found = _PREPARED.get(key)
    if found is None:
        found = _PREPARED[key] = Prepared((build or _BUILDERS[name])(), conn.dialect)
    return found


def within(column: Any) -> Any:
    """`column` in the statement's [lo, hi) range."""
    return sa.and_(column >= sa.bindparam("lo", 0, type_=sa.BigInteger),
                   column < sa.bindparam("hi", 0, type_=sa.BigInteger))


def _related_select() -> sa.Select:
    i = invocations.c
    touched = sa.select(i.event_id).where(within(i.start_ms), i.event_id.is_not(None))
    return sa.select(_minute(i.start_ms)).distinct().where(i.event_id.in_(touched))


def _lock_marks() -> sa.Select:
    return (sa.select(rollup_dirty.c.minute_ms).where(within(rollup_dirty.c.minute_ms))
            .order_by(rollup_dirty.c.minute_ms).with_for_update())


def _insert_from(table: sa.Table, select: sa.Select) -> Any:
    return table.insert().from_select([c.name for c in table.columns], select)


def _event_rollup_select() -> sa.Select:
    e = events.c
    minute = _minute(e.time_ms)
    return sa.select(
        minute, e.source, e.detail_type, e.version, sa.func.count(), sa.func.sum(e.size_bytes),
        sa.func.max(e.size_bytes), sa.func.min(e.time_ms), sa.func.max(e.time_ms),
    ).where(within(e.time_ms)).group_by(minute, e.source, e.detail_type, e.version)


def _count_if(condition: Any) -> Any:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def _duration_buckets(duration: Any) -> list[Any]:
    edges = DURATION_EDGES_MS
    buckets = [_count_if(duration < edges[0])]
    buckets += [_count_if(sa.and_(duration >= lo, duration < hi))
                for lo, hi in zip(edges, edges[1:])]
    buckets.append(_count_if(duration >= edges[-1]))
    return buckets


def _invocation_rollup_select() -> sa.Select:
    i, e = invocations.c, events.c
    minute = _minute(i.start_ms)
    return sa.select(
        minute, i.consumer, e.source, e.detail_type, e.version, i.outcome, i.error_type,
        sa.func.count(), sa.func.count(i.duration_ms),
        sa.func.coalesce(sa.func.sum(i.duration_ms), 0.0), sa.func.max(i.duration_ms),
        sa.func.min(i.start_ms), sa.func.max(i.start_ms), *_duration_buckets(i.duration_ms),
    ).select_from(invocations.outerjoin(events, e.id == i.event_id)).where(
        within(i.start_ms)).group_by(
        minute, i.consumer, e.source, e.detail_type, e.version, i.outcome, i.error_type)


# The (function, event) pairs whose first attempt is in one range, with their event's kind
# and time and their latencies clipped at 0 (an event stamped after its handling): filled
# per range by `fill_pairs`, read by the handling and latency inserts, in one transaction.
PAIRS = sa.Table(
    "rollup_pairs", sa.MetaData(),
    sa.Column("consumer", sa.Text), sa.Column("first_ms", sa.BigInteger),
    sa.Column("attempts", sa.BigInteger), sa.Column("failed", sa.BigInteger),
    sa.Column("oks", sa.BigInteger), sa.Column("deliveries", sa.BigInteger),
    sa.Column("stored", sa.Integer),  # 1: the event is in the store (0: no event row)
    sa.Column("source", sa.Text), sa.Column("detail_type", sa.Text),
    sa.Column("version", sa.Text), sa.Column("first_latency", sa.BigInteger),
    sa.Column("skewed", sa.Integer), sa.Column("ok_latency", sa.BigInteger),
    prefixes=["TEMPORARY"])
_CLEAR_PAIRS = f"DELETE FROM {PAIRS.name}"
_CREATE_PAIRS: dict[str, str] = {}  # per dialect, compiled on first use


def _create_pairs(dialect: Any) -> str:
    found = _CREATE_PAIRS.get(dialect.name)
    if found is None:
        found = _CREATE_PAIRS[dialect.name] = str(
            CreateTable(PAIRS, if_not_exists=True).compile(dialect=dialect))
    return found


def _fill_pairs() -> Any:
    i, e = invocations.c, events.c
    touched = sa.select(i.event_id).where(within(i.start_ms), i.event_id.is_not(None))
    pairs = sa.select(
        i.consumer, i.event_id, sa.func.min(i.start_ms).label("first_ms"),
        sa.func.count().label("attempts"),
        _count_if(i.outcome.in_(["error", "timeout"])).label("failed"),
        _count_if(i.outcome == "ok").label("oks"),
        sa.func.count(sa.distinct(i.request_id)).label("deliveries"),
        sa.func.min(sa.case((i.outcome == "ok", i.start_ms))).label("ok_ms"),
    ).where(i.event_id.in_(touched)).group_by(i.event_id, i.consumer).subquery()  # event first:
    # rows come from the event_id index in that order, and SQLite groups them a third faster
    p = pairs.c
    zero = sa.literal_column("0", sa.BigInteger)
    first_raw, ok_raw = p.first_ms - e.time_ms, p.ok_ms - e.time_ms
    select = sa.select(
        p.consumer, p.first_ms, p.attempts, p.failed, p.oks, p.deliveries,
        sa.case((e.id.is_(None), 0), else_=1), e.source, e.detail_type, e.version,
        sa.case((first_raw < 0, zero), else_=first_raw), sa.case((first_raw < 0, 1), else_=0),
        sa.case((ok_raw < 0, zero), else_=ok_raw),
    ).select_from(pairs.outerjoin(events, e.id == p.event_id)).where(within(p.first_ms))
    return PAIRS.insert().from_select([c.name for c in PAIRS.columns], select)


def _handling_rollup_select() -> sa.Select:
    p = PAIRS.c
    minute = _minute(p.first_ms)
    return sa.select(
        minute, p.consumer, p.source, p.detail_type, p.version, sa.func.count(),
        sa.func.sum(p.attempts), _count_if(sa.and_(p.failed > 0, p.failed < p.attempts)),
        _count_if(p.failed == p.attempts), _count_if(p.deliveries > 1), _count_if(p.oks > 1),
    ).group_by(minute, p.consumer, p.source, p.detail_type, p.version)


def latency_bucket(value: Any, low: int = 0, high: int = len(LATENCY_EDGES_MS)) -> Any:
    """The latency bucket of `value` in SQL, the same on SQLite and PostgreSQL: how many of
    LATENCY_EDGES_MS[low:high] are <= value, plus `low` (a binary tree of CASEs: about 8
    comparisons a row, no math functions)."""
    if low == high:
        return sa.literal_column(str(low), sa.Integer)
    middle = (low + high) // 2
    return sa.case((value < sa.literal_column(str(LATENCY_EDGES_MS[middle]), sa.BigInteger),
                    latency_bucket(value, low, middle)),
                   else_=latency_bucket(value, middle + 1, high))


def _latency_rollup_select(measure: str) -> sa.Select:
    """The latency rollup rows of one measure (`tables.LATENCY_MEASURES`) from `PAIRS`: one
    insert per measure, each reading the pairs once and bucketing one latency (a single
    insert joining every pair to both measures cost a third more, its CASEs choosing the
    measure's columns at every row)."""
    p = PAIRS.c
    first = measure == "first"
    latency = p.first_latency if first else p.ok_latency
    minute = _minute(p.first_ms)
    bucket = latency_bucket(latency)
    kept = [p.stored == 1]  # pairs of stored events only
    if not first:
        kept.append(latency.is_not(None))  # pairs with a success
    skewed = sa.func.sum(p.skewed) if first else sa.literal_column("0", sa.BigInteger)
    return sa.select(
        minute, p.consumer, p.source, p.detail_type, sa.literal_column(f"'{measure}'"), bucket,
        sa.func.count(), skewed, sa.func.max(latency),
    ).where(*kept).group_by(minute, p.consumer, p.source, p.detail_type, bucket)


_BUILDERS: dict[str, Any] = {
    "related": _related_select,
    "lock_marks": _lock_marks,
    "delete_marks": lambda: rollup_dirty.delete().where(within(rollup_dirty.c.minute_ms))
    .returning(rollup_dirty.c.minute_ms, rollup_dirty.c.sides),
    **{f"delete_{table.name}": (lambda table=table: table.delete().where(
        within(table.c.minute_ms))) for table in (event_rollup, invocation_rollup,
                                                    handling_rollup, latency_rollup)},
    "insert_event_rollup": lambda: _insert_from(event_rollup, _event_rollup_select()),
    "insert_invocation_rollup": lambda: _insert_from(invocation_rollup,
                                                     _invocation_rollup_select()),
    "fill_pairs": _fill_pairs,
    "insert_handling_rollup": lambda: _insert_from(handling_rollup, _handling_rollup_select()),
    **{f"insert_latency_{measure}": (lambda measure=measure: _insert_from(
        latency_rollup, _latency_rollup_select(measure))) for measure in LATENCY_MEASURES},
}
LATENCY_INSERTS = tuple(f"insert_latency_{measure}" for measure in LATENCY_MEASURES)
_EVENT_STEPS = ("delete_event_rollup", "insert_event_rollup")
_INVOCATION_STEPS = ("delete_invocation_rollup", "delete_handling_rollup",
                     "delete_latency_rollup", "insert_invocation_rollup")
# then the pairs' (`_recompute_pairs`)
