"""Day and hour rollups: the minute rollups summed per day and per hour, kept equal to them.

A whole-store read of the minute rollups reads about as many rows as there are minutes with
traffic (hundreds of thousands in a month); the day tables hold a few rows per day, the hour
tables (events, invocations, handling) a few per hour. Each refresh of minute rows
recomputes, in the same transaction, the hours and the days those minutes fall in
(`recompute_days`); a store made before these tables gets them filled from its minute rows
when it is opened (`prepare_day_rollups`). Readers combine whole days from the day tables
with whole hours and the minutes at a window's ends, and read series in buckets of hours
from the hour tables (`eventscope.findings.load`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventscope.rollups import prepared, within
from eventscope.tables import (DAY_MS, HOUR_MS, event_rollup, event_rollup_day,
                               event_rollup_hour, handling_rollup, handling_rollup_day,
                               handling_rollup_hour, invocation_rollup, invocation_rollup_day,
                               invocation_rollup_hour, latency_rollup, latency_rollup_day,
                               rollup_dirty)
from eventscope.tables import BOTH_SIDES, EVENTS_SIDE, INVOCATIONS_SIDE

# (minute table, day table, key columns); every other column is summed, except these
PAIRS = ((event_rollup, event_rollup_day, ("source", "detail_type", "version")),
         (invocation_rollup, invocation_rollup_day,
          ("consumer", "source", "detail_type", "version", "outcome", "error_type")),
         (handling_rollup, handling_rollup_day, ("consumer", "source", "detail_type", "version")),
         (latency_rollup, latency_rollup_day,
          ("consumer", "source", "detail_type", "measure", "bucket")))
SIDE_PAIRS = {EVENTS_SIDE: PAIRS[:1], INVOCATIONS_SIDE: PAIRS[1:], BOTH_SIDES: PAIRS}
# (minute table, hour table, key columns): the minute tables read in buckets of hours
HOUR_PAIRS = ((event_rollup, event_rollup_hour, PAIRS[0][2]),
              (invocation_rollup, invocation_rollup_hour, PAIRS[1][2]),
              (handling_rollup, handling_rollup_hour, PAIRS[2][2]))
SIDE_HOURS = {EVENTS_SIDE: HOUR_PAIRS[:1], INVOCATIONS_SIDE: HOUR_PAIRS[1:],
              BOTH_SIDES: HOUR_PAIRS}
DAYS_OF = {minutes: days for minutes, days, _ in PAIRS}  # minute table -> its day table
HOURS_OF = {minutes: hours for minutes, hours, _ in HOUR_PAIRS}  # -> its hour table, if any
# (hour table, else minute table, day table, keys): what each side's days are summed from
SIDE_DAY_SOURCES = {side: tuple((HOURS_OF.get(minutes, minutes), days, keys)
                                for minutes, days, keys in pairs)
                    for side, pairs in SIDE_PAIRS.items()}
PERIOD_MS = {**{days: DAY_MS for _, days, _ in PAIRS},
             **{hours: HOUR_MS for _, hours, _ in HOUR_PAIRS}}  # summary table -> its period
LEAST = {"first_ms", "first_start_ms"}
GREATEST = {"last_ms", "last_start_ms", "bytes_max", "duration_max_ms", "latency_max_ms"}


def day_of(ms: int) -> int:
    return ms - ms % DAY_MS


def day_ranges(minute_ranges: Sequence[tuple[int, int]], period: int = DAY_MS
               ) -> list[tuple[int, int]]:
    """The [start, end) ranges of whole days (or periods of `period` ms: hours) that the
    minute ranges touch, merged."""
    found: list[tuple[int, int]] = []
    for low, high in sorted(minute_ranges):
        start, end = low - low % period, (high - 1) - (high - 1) % period + period
        if found and found[-1][1] >= start:
            found[-1] = (found[-1][0], max(found[-1][1], end))
        else:
            found.append((start, end))
    return found


def aggregate(column: sa.ColumnElement[Any], name: str) -> Any:
    """How a rollup column combines over minutes (or days): least, greatest, else sum."""
    if name in LEAST:
        return sa.func.min(column)
    if name in GREATEST:
        return sa.func.max(column)
    return sa.func.sum(column)


def _day_select(minutes: sa.Table, keys: Sequence[str], where: Any,
                period: int = DAY_MS) -> sa.Select[Any]:
    day = (minutes.c.minute_ms - minutes.c.minute_ms % period).label("minute_ms")
    group = [day, *(minutes.c[k] for k in keys)]
    values = [aggregate(c, c.name).label(c.name) for c in minutes.columns
              if c.name != "minute_ms" and c.name not in keys]
    return sa.select(*group, *values).where(where).group_by(*group)


def _columns(minutes: sa.Table, keys: Sequence[str]) -> list[str]:
    return ["minute_ms", *keys, *(c.name for c in minutes.columns
                                  if c.name != "minute_ms" and c.name not in keys)]


def recompute_days(conn: Connection, minute_ranges: Sequence[tuple[int, int]],
                   marked_from: int | None = None, side: int = BOTH_SIDES,
                   later: Collection[int] = ()) -> None:
    """Replace the rows of every hour and day the minute ranges touch (in the caller's
    transaction, after the minute rows were recomputed), in the hour and day tables of the
    minute tables of `side` (`tables.EVENTS_SIDE`, `INVOCATIONS_SIDE` or both).

    With `marked_from` (the `before` of a bulk ingest's refresh), a day still holding a
    dirty mark of `side` at or after it is left as it is: the refresh of that mark, which
    recomputes its day, is bound to come (the end of a bulk ingest refreshes every mark),
    and recomputing the day now as well would redo it at every settle point of the day (a
    day's rows grow with it). The marks are read here, inside the transaction that
    recomputed the minutes, which holds SQLite's write lock or PostgreSQL's recomputation
    lock: no other refresh can take such a mark (and recompute its day) before this one
    commits its minutes.

    `later` (day starts) are days whose minutes of `side` a later transaction of the same
    refresh recomputes (`Store.refresh_rollups`: a day split between two chunks). Such a
    day still holding a dirty mark of `side` is left as it is, on the same ground: those
    marks are not this transaction's (it deleted its own), and their refresh, this one's
    next chunk or another's, recomputes the day after this one commits. One no longer
    marked (another refresh took the marks first) is recomputed here.

    The hour rows of every hour the minute ranges touch are recomputed first, always, from
    their minutes (an hour holds at most 60 of them: nothing to defer), so every hour of a
    day is current whenever the day is recomputed, from its hours (where the minute table
    has an hour table: 24 rows per key rather than 1,440)."""
    if not minute_ranges:
        return
    _replace(conn, day_ranges(minute_ranges, HOUR_MS), SIDE_HOURS[side], HOUR_MS)
    days = day_ranges(minute_ranges)
    if later and days:
        days = _without(days, _marked_days(conn, set(later), side))
    if marked_from is not None and days:
        days = _without_marked(conn, days, marked_from, side)
    _replace(conn, days, SIDE_DAY_SOURCES[side], DAY_MS)


def _replace(conn: Connection, periods: list[tuple[int, int]],
             pairs: Sequence[tuple[sa.Table, sa.Table, tuple[str, ...]]], period: int) -> None:
    """The summary rows in `periods` ([start, end) ranges of whole periods of `period` ms)
    recomputed from a finer table's rows (minutes or hours), for each (finer table, summary
    table, keys) of `pairs`: two statements per pair, compiled once per process, each run
    once per range."""
    if not periods:
        return
    for finer, summary, keys in pairs:
        delete = prepared(conn, f"delete {summary.name}", partial(_delete, summary))
        fill = prepared(conn, f"fill {summary.name} from {finer.name}",
                        partial(_fill, finer, summary, keys, period))
        for statement in (delete, fill):
            conn.exec_driver_sql(statement.sql, statement.params(periods))


def _delete(summary: sa.Table) -> Any:
    return summary.delete().where(within(summary.c.minute_ms))


def _fill(finer: sa.Table, summary: sa.Table, keys: Sequence[str], period: int) -> Any:
    return summary.insert().from_select(
        _columns(finer, keys), _day_select(finer, keys, within(finer.c.minute_ms), period))


def _without_marked(conn: Connection, days: list[tuple[int, int]], marked_from: int,
                    side: int) -> list[tuple[int, int]]:
    """The day ranges less the days holding a dirty mark of `side` (of every bit of it) at
    or after `marked_from`: that mark's refresh recomputes the same day tables."""
    last = max(high for _, high in days)
    if marked_from >= last:
        return days
    return _without(days, _days_marked(conn, marked_from, last, side))


def _marked_days(conn: Connection, days: set[int], side: int) -> set[int]:
    """Those of the days (starts) holding a dirty mark of `side` (of every bit of it)."""
    return days & _days_marked(conn, min(days), max(days) + DAY_MS, side)


def _days_marked(conn: Connection, low: int, high: int, side: int) -> set[int]:
    """The days (starts) of the dirty marks of `side` (every bit of it) in [low, high)."""
    d = rollup_dirty.c
    return {day_of(minute) for minute in conn.execute(sa.select(d.minute_ms).where(
        d.minute_ms >= low, d.minute_ms < high, d.sides.op("&")(side) == side)).scalars()}


def _without(days: list[tuple[int, int]], skipped: set[int]) -> list[tuple[int, int]]:
    """The day ranges less the days (starts) in `skipped`."""
    if not skipped:
        return days
    kept: list[tuple[int, int]] = []
    for low, high in days:
        for day in range(low, high, DAY_MS):
            if day in skipped:
                continue
            if kept and kept[-1][1] == day:
                kept[-1] = (kept[-1][0], day + DAY_MS)
            else:
                kept.append((day, day + DAY_MS))
    return kept


def prepare_day_rollups(conn: Connection, had_days: bool) -> None:
    """On a store made before the day tables (`had_days` False), or before one of them
    (the latency one, the hour ones): fill each day or hour table that is empty while its
    minutes are not (each is checked either way, see `days_to_fill`)."""
    for minutes, summary, keys in days_to_fill(conn):
        conn.execute(summary.insert().from_select(
            _columns(minutes, keys), _day_select(minutes, keys, sa.true(), PERIOD_MS[summary])))


def days_to_fill(conn: Connection) -> list[tuple[sa.Table, sa.Table, tuple[str, ...]]]:
    """The PAIRS and HOUR_PAIRS whose day or hour table is empty while its minute table is
    not, in one read (an EXISTS of each table): what `prepare_day_rollups` fills; none on a
    store up to date."""
    pairs = PAIRS + HOUR_PAIRS
    sql = _FILL_CHECKS.get(conn.dialect.name)
    if sql is None:  # every command opens a store, each with a new engine (and its own cache)
        tables = [table for minutes, summary, _ in pairs for table in (minutes, summary)]
        sql = _FILL_CHECKS[conn.dialect.name] = str(sa.select(*(
            sa.select(sa.literal_column("1")).select_from(table).exists() for table in tables
        )).compile(dialect=conn.dialect))
    found = tuple(conn.exec_driver_sql(sql).one())
    return [pair for pair, has_minutes, has_summary in zip(pairs, found[::2], found[1::2])
            if has_minutes and not has_summary]


_FILL_CHECKS: dict[str, str] = {}  # per dialect: `days_to_fill`'s read, compiled once
