"""The PostgreSQL write path: rows go in with COPY into session staging tables, then one
``INSERT ... SELECT ... ON CONFLICT`` per table -- no per-row round trips.

Owns the staging tables, the statements that move staged rows into the store (the same
conflict rules as the row-by-row path of `Store.write_batch`: events and quarantine insert
or ignore, invocations upsert when the offered row completes a partial one or reports a
failure learnt late), and `merge_invocations`, the pure fold that gives one row per key when
a batch holds the same invocation twice (one ``INSERT ... ON CONFLICT DO UPDATE`` may not
touch a row twice). Functions take a connection inside the caller's transaction.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from eventscope.records import EVENT_COLUMNS, Invocation
from eventscope.tables import MINUTE_MS, events, invocations

INVOCATION_COLUMNS = tuple(c.name for c in invocations.columns)
_invocation_row = operator.attrgetter(*INVOCATION_COLUMNS)
_stage_metadata = sa.MetaData()


def _stage(table: sa.Table) -> sa.Table:
    return sa.Table(f"_stage_{table.name}", _stage_metadata,
                    *(sa.Column(c.name, c.type) for c in table.columns))


STAGE_EVENTS, STAGE_INVOCATIONS = _stage(events), _stage(invocations)


# The two statements are compiled at first use, not at import: `eventscope.store` imports this
# module, and a SQLite store's start-up should not load SQLAlchemy's PostgreSQL dialect.
@cache
def _insert_events() -> str:
    from sqlalchemy.dialects import postgresql
    statement = postgresql.insert(events).from_select(
        list(EVENT_COLUMNS), sa.select(*(STAGE_EVENTS.c[n] for n in EVENT_COLUMNS)))
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return str(statement.on_conflict_do_nothing().compile(dialect=dialect))


@cache
def _upsert_invocations() -> str:
    from sqlalchemy.dialects import postgresql
    insert = postgresql.insert(invocations).from_select(
        list(INVOCATION_COLUMNS), sa.select(*(STAGE_INVOCATIONS.c[n] for n in INVOCATION_COLUMNS)))
    stored, offered = invocations.c, insert.excluded
    ok: Any = sa.literal_column("'ok'")
    statement = insert.on_conflict_do_update(
        index_elements=[stored.request_id, stored.start_ms],
        set_={c.name: offered[c.name] for c in invocations.columns if not c.primary_key},
        where=sa.and_(offered.complete, sa.or_(sa.not_(stored.complete),
                                               sa.and_(stored.outcome == ok,
                                                       offered.outcome != ok))))
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return str(statement.compile(dialect=dialect))


# Minutes of stored invocations of the staged events (an event arriving late changes their
# attribution): one statement instead of a lookup per 500 ids.
RELATED_MINUTES = (f"SELECT DISTINCT i.start_ms - i.start_ms %% {MINUTE_MS} FROM invocations i "
                   f"WHERE i.event_id IN (SELECT id FROM {STAGE_EVENTS.name})")


def _ensure_stages(conn: Connection, *stages: sa.Table) -> None:
    """The session's staging tables (temporary, emptied at every commit). Made in the
    write's own transaction, so a write that rolls back takes them away: no flag to trust."""
    for stage in stages:
        table = stage.name.removeprefix("_stage_")
        conn.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage.name} "
                             f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")


def _copy(conn: Connection, stage: sa.Table, columns: Sequence[str],
          rows: Sequence[tuple[Any, ...]]) -> None:
    """COPY the rows into the staging table, then ANALYZE it (autovacuum never analyzes a
    temporary table: without its size the planner guessed 200 rows and joined the related
    minutes' lookup by a sequential scan of every invocation, 89 s a minute of traffic on a
    store of 2 h); a refused value raises as SQLAlchemy would."""
    import psycopg

    sql = f"COPY {stage.name} ({', '.join(columns)}) FROM STDIN"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(f"ANALYZE {stage.name}")
    except psycopg.Error as exc:
        raise sa.exc.DBAPIError.instance(sql, None, exc, psycopg.Error) from None
    finally:
        cursor.close()


def write_events(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> int:
    """Insert the event rows (`records.event_row` tuples) not yet stored; how many were new.
    The rows stay staged until the commit (see `related_minutes`)."""
    if not rows:
        return 0
    _ensure_stages(conn, STAGE_EVENTS)
    conn.exec_driver_sql(f"DELETE FROM {STAGE_EVENTS.name}")
    _copy(conn, STAGE_EVENTS, EVENT_COLUMNS, rows)
    return max(conn.exec_driver_sql(_insert_events()).rowcount, 0)


def related_minutes(conn: Connection) -> set[int]:
    """Minutes of stored invocations of the events staged by `write_events`."""
    return set(conn.exec_driver_sql(RELATED_MINUTES).scalars())


def write_invocations(conn: Connection, offered: Sequence[Invocation]) -> int:
    """Insert or upgrade the invocations; how many rows were inserted or changed."""
    if not offered:
        return 0
    _ensure_stages(conn, STAGE_INVOCATIONS)
    conn.exec_driver_sql(f"DELETE FROM {STAGE_INVOCATIONS.name}")
    _copy(conn, STAGE_INVOCATIONS, INVOCATION_COLUMNS,
          [_invocation_row(i) for i in merge_invocations(offered)])
    return max(conn.exec_driver_sql(_upsert_invocations()).rowcount, 0)


def replaces(stored: Invocation, offered: Invocation) -> bool:
    """True when the offered row replaces the stored one with the same key, as the upsert
    decides: it completes a partial row, or reports a failure where the stored row said ok."""
    return offered.complete and (not stored.complete
                                 or (stored.outcome == "ok" and offered.outcome != "ok"))


def merge_invocations(offered: Sequence[Invocation]) -> list[Invocation]:
    """One invocation per (request id, start): each key's rows folded in order as the
    row-by-row upsert would apply them; first-seen order kept."""
    kept: dict[tuple[str, int], Invocation] = {}
    for inv in offered:
        key = (inv.request_id, inv.start_ms)
        found = kept.get(key)
        if found is None or replaces(found, inv):
            kept[key] = inv
    return list(kept.values())
