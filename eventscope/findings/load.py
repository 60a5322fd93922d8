"""Reading what findings need from the store: SQLAlchemy Core selects returning DataFrames.

The one module of `eventscope.findings` that touches the database. Whole-store reads select
only the narrow columns the analyses use; the order lifecycle goes through indexes only
(events by `correlation_key`, invocations by `event_id`) so it answers in milliseconds on a
store of millions of events.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from eventscope.findings.frames import ATTEMPT_COLUMNS, EVENT_COLUMNS, frame
from eventscope.store import events, invocations

MAX_PREFIX_MATCHES = 50


def _event_select(with_detail: bool = False) -> sa.Select:
    columns = [events.c[name] for name in EVENT_COLUMNS]
    if with_detail:
        columns.append(events.c.detail)
    return sa.select(*columns)


def _attempt_select() -> sa.Select:
    i, e = invocations.c, events.c
    return sa.select(
        i.request_id, i.start_ms, i.consumer, i.consumer.label("function"), i.event_id,
        i.outcome, i.duration_ms, i.error_type, i.error_message, e.source, e.detail_type,
        e.version, e.time_ms.label("event_time_ms"),
    ).select_from(invocations.outerjoin(events, events.c.id == invocations.c.event_id))


def _read(engine: Engine, statement: sa.Select, columns: list[str]) -> pd.DataFrame:
    """Rows straight from the driver's cursor: SQLAlchemy's Row objects cost 2-3x on big reads."""
    compiled = statement.compile(dialect=engine.dialect,
                                 compile_kwargs={"render_postcompile": True})
    params: object = compiled.params
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
    statement = _event_select(with_detail)
    if since_ms is not None:
        statement = statement.where(events.c.time_ms >= since_ms)
    if until_ms is not None:
        statement = statement.where(events.c.time_ms < until_ms)
    if detail_types:
        statement = statement.where(events.c.detail_type.in_(list(detail_types)))
    return _read(engine, statement, EVENT_COLUMNS + (["detail"] if with_detail else []))


def load_attempts(engine: Engine, since_ms: int | None = None, until_ms: int | None = None,
                  functions: Sequence[str] = ()) -> pd.DataFrame:
    """Invocations started in the window, joined to the events they handled."""
    statement = _attempt_select()
    if since_ms is not None:
        statement = statement.where(invocations.c.start_ms >= since_ms)
    if until_ms is not None:
        statement = statement.where(invocations.c.start_ms < until_ms)
    if functions:
        statement = statement.where(invocations.c.consumer.in_(list(functions)))
    return _read(engine, statement, ATTEMPT_COLUMNS)


def load_samples(engine: Engine, per_type: int = 20) -> pd.DataFrame:
    """The latest `per_type` events of every (source, detail-type, version), with details."""
    with engine.connect() as conn:
        kinds = conn.execute(sa.select(events.c.detail_type).distinct()).scalars().all()
        rows = []
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


def find_correlation_keys(engine: Engine, query: str) -> list[str]:
    """Correlation keys matching an order id, an event id, or a key prefix (in that order).

    Every lookup is an index read: the key itself, the event's primary key, then a key range
    [prefix, prefix + U+FFFF) rather than LIKE, which SQLite cannot serve from an index.
    """
    key = events.c.correlation_key
    with engine.connect() as conn:
        if conn.execute(sa.select(key).where(key == query).limit(1)).first():
            return [query]
        by_id = conn.execute(sa.select(key).where(events.c.id == query)).scalar()
        if by_id is not None:
            return [by_id]
        found = conn.execute(
            sa.select(key).where(key >= query, key < query + "\uffff").distinct()
            .order_by(key).limit(MAX_PREFIX_MATCHES)).scalars().all()
    return list(found)


def load_lifecycle(engine: Engine, correlation_key: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One key's events and every invocation that handled one of them (index reads only)."""
    with engine.connect() as conn:
        event_rows = conn.execute(
            _event_select().where(events.c.correlation_key == correlation_key)).all()
        ids = [row.id for row in event_rows]
        attempt_rows = conn.execute(
            _attempt_select().where(invocations.c.event_id.in_(ids))).all() if ids else []
    return frame(event_rows, EVENT_COLUMNS), frame(attempt_rows, ATTEMPT_COLUMNS)
