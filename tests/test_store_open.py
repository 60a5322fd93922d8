"""Opening a store: one already up to date is only read (three reads, no DDL, no lock); one
made by an older eventscope, in each way it can be older, still gets every migration, and is
up to date afterwards (so the next open is the cheap one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from eventscope import day_rollups, rollups
from eventscope.store import SCHEMA_VERSION, Store, _current_version, create_engine, open_store
from eventscope.tables import FAILED_STARTS, FINDING_INDEXES, meta
from tests.test_rollups_days import _spread

ROLLUP_TABLES = [table for minutes, days, _ in day_rollups.PAIRS for table in (minutes, days)]
ROLLUP_TABLES += [hours for _, hours, _ in day_rollups.HOUR_PAIRS]


def _filled(url: str) -> Store:
    store = open_store(url)
    store.write_batch(*_spread(orders=12))
    store.refresh_rollups()
    return store


def _rollup_rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every minute and day rollup table, sorted."""
    with store.engine.connect() as conn:
        return {table.name: sorted(map(tuple, conn.execute(sa.select(table))), key=repr)
                for table in ROLLUP_TABLES}


def _version(store: Store) -> str | None:
    with store.engine.connect() as conn:
        return _current_version(conn)


def test_a_new_store_is_up_to_date_at_once(store_url: str) -> None:
    """What `create_schema` makes (the partitioned layout on PostgreSQL included) passes the
    check, so no store stays on the slow path."""
    store = open_store(store_url)
    assert _version(store) == str(SCHEMA_VERSION)
    store.engine.dispose()


def test_opening_an_up_to_date_store_only_reads(store_url: str) -> None:
    """Three reads (catalog, meta, day tables), no DDL, no write, no PostgreSQL lock."""
    _filled(store_url).engine.dispose()
    store = Store(create_engine(store_url))
    store.engine.connect().close()  # the dialect's own first-connect queries are not ours
    seen: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda _c, _cur, statement, *_: seen.append(statement))
    store.create_schema()
    assert len(seen) == 3, seen
    assert all(s.lstrip().upper().startswith("SELECT") for s in seen), seen
    store.engine.dispose()


def _drop_day_tables(conn: sa.Connection) -> None:  # a store made before the day rollups
    for _minutes, days, _keys in day_rollups.PAIRS:
        conn.execute(sa.text(f"DROP TABLE {days.name}"))


def _drop_hour_tables(conn: sa.Connection) -> None:  # a store made before the hour rollups
    for _minutes, hours, _keys in day_rollups.HOUR_PAIRS:
        conn.execute(sa.text(f"DROP TABLE {hours.name}"))


def _empty_one_hour_table(conn: sa.Connection) -> None:  # minutes there, their hours not
    conn.execute(sa.text("DELETE FROM invocation_rollup_hour"))


def _drop_latency_rollup(conn: sa.Connection) -> None:  # a store made before the latency one
    conn.execute(sa.text("DROP TABLE latency_rollup_day"))
    conn.execute(sa.text("DROP TABLE latency_rollup"))
    conn.execute(meta.delete().where(meta.c.key == "latency_rollup"))


def _drop_finding_indexes(conn: sa.Connection) -> None:  # before the covering indexes
    for name in [index.name for index in FINDING_INDEXES] + [FAILED_STARTS]:
        conn.execute(sa.text(f"DROP INDEX {name}"))


def _empty_one_day_table(conn: sa.Connection) -> None:  # minutes there, their days not
    conn.execute(sa.text("DELETE FROM handling_rollup_day"))


def _marks_without_sides(conn: sa.Connection) -> None:  # marks not saying which side changed
    conn.execute(sa.text("ALTER TABLE rollup_dirty DROP COLUMN sides"))
    conn.execute(meta.delete().where(meta.c.key == rollups.SIDES_KEY))


def _no_version(conn: sa.Connection) -> None:  # the oldest stores
    conn.execute(meta.delete().where(meta.c.key == "schema_version"))


OLDER: dict[str, Callable[[sa.Connection], None]] = {
    "before day rollups": _drop_day_tables,
    "before hour rollups": _drop_hour_tables,
    "an hour table empty": _empty_one_hour_table,
    "before the latency rollup": _drop_latency_rollup,
    "before the covering indexes": _drop_finding_indexes,
    "a day table empty": _empty_one_day_table,
    "no schema version": _no_version,
    "marks without sides": _marks_without_sides,
}


@pytest.mark.parametrize("older", sorted(OLDER))
def test_an_older_store_is_migrated_then_up_to_date(store_url: str, older: str) -> None:
    """The check sees each way a store can be older; opening it migrates it to the rollups
    of a store that never was older, and leaves it up to date."""
    store = _filled(store_url)
    wanted = _rollup_rows(store)
    with store.engine.begin() as conn:
        OLDER[older](conn)
    assert _version(store) is None
    store.engine.dispose()
    reopened = open_store(store_url)
    assert _version(reopened) == str(SCHEMA_VERSION)
    assert _rollup_rows(reopened) == wanted
    reopened.engine.dispose()


def test_days_to_fill_names_each_empty_day_or_hour_table_whose_minutes_have_rows(
        store_url: str) -> None:
    store = _filled(store_url)
    with store.engine.connect() as conn:
        assert day_rollups.days_to_fill(conn) == []
    for minutes, days, keys in day_rollups.PAIRS + day_rollups.HOUR_PAIRS:
        with store.engine.connect() as conn:
            conn.execute(days.delete())
            assert day_rollups.days_to_fill(conn) == [(minutes, days, keys)]
            conn.execute(minutes.delete())  # no minutes either: nothing to fill
            assert day_rollups.days_to_fill(conn) == []
            conn.rollback()
    store.engine.dispose()


def test_marks_made_before_sides_recompute_both_sides(store_url: str) -> None:
    """Marks left by an eventscope whose marks did not say which side of a minute changed
    count as both: after the migration, refreshing them rebuilds every rollup table."""
    store = _filled(store_url)
    wanted = _rollup_rows(store)
    with store.engine.begin() as conn:
        _marks_without_sides(conn)
        for table in ROLLUP_TABLES:
            conn.execute(table.delete())
        conn.execute(sa.text(
            "INSERT INTO rollup_dirty (minute_ms) SELECT DISTINCT time_ms - time_ms % 60000 "
            "FROM events UNION SELECT start_ms - start_ms % 60000 FROM invocations"))
    store.engine.dispose()
    reopened = open_store(store_url)
    assert reopened.refresh_rollups() > 0
    assert _rollup_rows(reopened) == wanted
    reopened.engine.dispose()
