"""SQLite writes bind many rows to a statement (`store._Compiled.runs`), with what executemany
of one row per statement would store and count: duplicates within a batch and against stored
rows, partial invocations completed, failures learnt late, statement sizes at every boundary.

Why it matters: the driver hands the GIL back at every statement step and must win it back,
so one step per row waited out the interpreter's switch interval row after row beside the
ingest's busy assembly thread. How long that takes is for `bench/`; here, that a large write
runs as few statements and stores exactly what the row-per-statement path stores.
"""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import replace
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from eventscope import store as store_module
from eventscope.records import BusEvent, Invocation
from eventscope.store import Store, events, invocations, open_store, quarantine

BASE_MS = 1714557600000
EVENT = BusEvent(id="e-0", source="com.shop.orders", detail_type="OrderCreated",
                 time_ms=BASE_MS, detail='{"orderId":"ord-1"}', size_bytes=300,
                 version="1", correlation_key="ord-1")
CALL = Invocation(request_id="r-0", consumer="crm-notifier",
                  log_group="/aws/lambda/crm-notifier", log_stream="2024/05/01/[$LATEST]ab",
                  start_ms=BASE_MS + 1000, outcome="ok", event_id="e-0")


def _statements_run(store: Store) -> list[str]:
    """Every statement SQLite starts on the store's connections from now on (the trace
    callback fires at each start: once per row under executemany)."""
    started: list[str] = []
    store.engine.dispose()
    sa.event.listen(store.engine, "connect",
                    lambda dbapi, _record: dbapi.set_trace_callback(started.append))
    return started


def test_a_large_sqlite_write_binds_many_rows_to_each_statement(tmp_path: Path) -> None:
    """7,000 invocations and 7,000 events are written by a handful of INSERTs each (one
    statement per row before), and every row is stored."""
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    started = _statements_run(store)
    calls = [replace(CALL, request_id=f"r-{i}", event_id=f"e-{i}") for i in range(7000)]
    news = [replace(EVENT, id=f"e-{i}") for i in range(7000)]
    written = store.write_batch(news, calls)
    assert (written.events, written.invocations) == (7000, 7000)
    inserts = {table: sum(1 for sql in started if sql.startswith(f"INSERT OR FAIL INTO {table} "))
               for table in ("events", "invocations")}
    assert 0 < inserts["events"] <= 20 and 0 < inserts["invocations"] <= 20, inserts
    assert store.counts()["events"] == 7000
    store.engine.dispose()


def test_postgresql_keeps_one_executemany_for_many_rows(pg_url: str) -> None:
    """On PostgreSQL (any engine but SQLite) a write stays one executemany of every row."""
    store = open_store(pg_url)
    statement = store._upsert_invocation  # noqa: SLF001 - the statement under test
    rows = [replace(CALL, request_id=f"r-{i}") for i in range(3)]
    with store.engine.connect() as conn:
        runs = list(statement.runs(conn, rows))
    store.engine.dispose()
    assert runs == [(statement.sql, statement.params(rows))]


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One SQLite store for the tests that only build statements."""
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('multirow') / 'store.db'}")
    yield store
    store.engine.dispose()


@pytest.mark.parametrize("limit", [14 * 600, 11 * 600, 999, 13])
@given(count=st.integers(0, 1400))
@settings(max_examples=40)
def test_runs_cover_the_rows_once_in_order_within_the_variable_limit(
        sqlite_store: Store, limit: int, count: int) -> None:
    """Whatever the number of rows and the engine's variable limit, the statements bind the
    rows' values once each, in order, none binds more variables than the limit, and few
    distinct statements are ever prepared."""
    statement = sqlite_store._upsert_invocation  # noqa: SLF001 - the statement under test
    rows = [replace(CALL, request_id=f"r-{i}", start_ms=BASE_MS + i) for i in range(count)]
    with sqlite_store.engine.connect() as conn:
        statement._per_statement = max(1, limit // len(statement.names))  # noqa: SLF001
        runs = list(statement.runs(conn, rows))
    bound = list(chain.from_iterable(params for _, params in runs))
    assert bound == (list(chain.from_iterable(statement.params(rows))) if rows else [])
    assert all(len(params) <= max(limit, len(statement.names)) for _, params in runs)
    assert all(sql.count("?") == len(params) for sql, params in runs)
    assert len({sql for sql, _ in runs}) <= 5


KEYS = st.tuples(st.integers(0, 5), st.integers(0, 2))  # (request, start): collisions likely
TEXT = st.text(max_size=30)  # any Unicode (surrogates and NULs too: those rows are refused)
INVOCATIONS = st.builds(
    lambda key, outcome, complete, duration, message: replace(
        CALL, request_id=f"r-{key[0]}", start_ms=BASE_MS + key[1] * 60_000,
        event_id=f"e-{key[0] % 3}", outcome=outcome, complete=complete,
        duration_ms=duration if complete else None,
        error_type=None if outcome == "ok" else "Boom", error_message=message),
    KEYS, st.sampled_from(["ok", "error", "timeout"]), st.booleans(),
    st.floats(0, 900_000, allow_nan=False), st.none() | TEXT)
EVENTS = st.builds(lambda n, source, detail: replace(EVENT, id=f"e-{n}", source=source,
                                                     detail=detail),
                   st.integers(0, 8), st.sampled_from(["a", "b"]), TEXT)
BATCHES = st.lists(st.tuples(st.lists(EVENTS, max_size=40), st.lists(INVOCATIONS, max_size=40)),
                   min_size=1, max_size=4)


def _table(url: str, table: sa.Table) -> list[tuple[Any, ...]]:
    """The table's rows in key order, without when they were written."""
    columns = ", ".join(c.name for c in table.columns if not c.name.endswith("ed_ms"))
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return conn.execute(f"SELECT {columns} FROM {table.name} ORDER BY 1, 2").fetchall()


@given(batches=BATCHES, per_statement=st.integers(1, 9))
@settings(max_examples=40)
def test_many_rows_to_a_statement_store_and_count_what_one_per_statement_does(
        batches: list[tuple[list[BusEvent], list[Invocation]]], per_statement: int) -> None:
    """Batches with repeated keys, within a batch and across batches, written many rows to
    a statement (a small maximum, so every boundary is crossed) and one row per statement
    (the driver's executemany) leave the same rows and report the same counts."""
    with tempfile.TemporaryDirectory() as folder:
        urls = [f"sqlite:///{Path(folder) / name}" for name in ("many.db", "one.db")]
        many, one = (open_store(url) for url in urls)
        many._upsert_invocation._per_statement = per_statement  # noqa: SLF001
        many._insert_event._per_statement = per_statement  # noqa: SLF001
        for statement in (one._upsert_invocation, one._insert_event):  # noqa: SLF001
            statement._values = None  # noqa: SLF001 - the executemany path, as a reference
        for news, calls in batches:
            a, b = many.write_batch(news, calls), one.write_batch(news, calls)
            assert (a.events, a.invocations, a.quarantined) == (
                b.events, b.invocations, b.quarantined)
        for store in (many, one):
            store.engine.dispose()
        for table in (events, invocations, quarantine):
            assert _table(urls[0], table) == _table(urls[1], table)


def test_a_refused_row_inside_a_statement_of_many_is_quarantined_alone(tmp_path: Path) -> None:
    """A row the engine refuses (NOT NULL) in the middle of a statement of many rows: that
    row is quarantined, every other row is stored once, nothing of the failed attempt stays."""
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    calls = [replace(CALL, request_id=f"r-{i}") for i in range(3000)]
    calls[1234] = replace(calls[1234], consumer=None)  # type: ignore[arg-type]
    written = store.write_batch([EVENT], calls)
    assert (written.events, written.invocations, written.quarantined) == (1, 2999, 1)
    counts = store.counts()
    assert counts["quarantined_by_reason"] == {"store_rejected": 1}
    assert sum(counts["invocations_by_outcome"].values()) == 2999
    assert "r-1234" not in {row[0] for row in _table(f"sqlite:///{tmp_path / 'store.db'}",
                                                     invocations)}
    store.engine.dispose()


def test_statements_of_many_rows_keep_no_statement_journal(tmp_path: Path) -> None:
    """Statements of many rows run as INSERT OR FAIL: no statement journal (SQLite copies
    every page such a statement touches that its transaction had already changed)."""
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    started = _statements_run(store)
    store.write_batch([replace(EVENT, id=f"e-{i}") for i in range(20)],
                      [replace(CALL, request_id=f"r-{i}") for i in range(20)])
    inserts = [sql for sql in started if sql.startswith("INSERT")
               and ("INTO events " in sql or "INTO invocations " in sql)]
    assert inserts and all(sql.startswith("INSERT OR FAIL INTO ") for sql in inserts)
    store.engine.dispose()


def test_the_variable_limit_is_the_connections_own(tmp_path: Path) -> None:
    """The rows per statement follow the connection's limit, capped at SQLite's default."""
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    with store.engine.connect() as conn:
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None
        dbapi.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 500)
        assert store_module._variable_limit(conn) == 500  # noqa: SLF001
        dbapi.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 10**6)  # SQLite caps it at its own
        assert dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) > 32_766  # (this build's)
        assert store_module._variable_limit(conn) == store_module._SQLITE_VARIABLES  # noqa: SLF001
    store.engine.dispose()
