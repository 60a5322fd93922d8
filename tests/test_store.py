"""The store on both engines: idempotent writes, checkpoints, counts, errors."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from eventscope.errors import StoreError
from eventscope.records import BusEvent, Invocation, Quarantined
from eventscope.store import (
    SCHEMA_VERSION,
    SQLITE_PAGE_SIZE,
    Store,
    invocations,
    meta,
    open_store,
)

EVENT = BusEvent(id="e-1", source="com.shop.orders", detail_type="OrderCreated",
                 time_ms=1714557600000, detail='{"orderId":"ord-1"}', size_bytes=300,
                 version="1", correlation_key="ord-1")
PARTIAL = Invocation(request_id="r-1", consumer="crm-notifier",
                     log_group="/aws/lambda/crm-notifier",
                     log_stream="2024/05/01/[$LATEST]ab", start_ms=1714557601000, outcome="ok",
                     event_id="e-1")
COMPLETE = replace(PARTIAL, outcome="error", complete=True, duration_ms=12.5,
                   error_type="KeyError", error_message="'x'")
BAD_LINE = Quarantined(origin="f.ndjson", position="line 3", reason="invalid_json",
                       detail="invalid JSON", raw=b"{oops")


def test_writing_an_event_twice_stores_it_once(store: Store) -> None:
    """A second write of the same event id adds nothing and reports no new row."""
    assert store.write_batch([EVENT]).events == 1
    assert store.write_batch([replace(EVENT, source="changed")]).events == 0
    assert store.counts()["events"] == 1


def test_new_rows_are_counted_among_duplicates(store: Store) -> None:
    """A batch mixing stored and new events reports only the new ones."""
    store.write_batch([EVENT])
    assert store.write_batch([EVENT, replace(EVENT, id="e-2")]).events == 1


def test_a_complete_invocation_replaces_a_partial_one(store: Store) -> None:
    """An invocation first seen without its REPORT is completed by the later full record."""
    assert store.write_batch(invocations_=[PARTIAL]).invocations == 1
    assert store.write_batch(invocations_=[COMPLETE]).invocations == 1
    assert store.counts()["invocations_by_outcome"] == {"ok": 0, "error": 1, "timeout": 0}


def test_a_complete_invocation_is_never_overwritten(store: Store) -> None:
    """Once complete, neither a partial nor another complete record changes it."""
    store.write_batch(invocations_=[COMPLETE])
    assert store.write_batch(invocations_=[PARTIAL]).invocations == 0
    assert store.write_batch(invocations_=[replace(COMPLETE, outcome="ok")]).invocations == 0
    assert store.counts()["failed_invocations"] == 1


def test_retries_with_the_same_request_id_are_separate_invocations(store: Store) -> None:
    """Lambda can reuse a request id for an async retry: a later start is a new invocation."""
    retry = replace(COMPLETE, start_ms=COMPLETE.start_ms + 60_000, outcome="ok")
    assert store.write_batch(invocations_=[COMPLETE, retry]).invocations == 2


def test_quarantine_is_idempotent(store: Store) -> None:
    """The same refused line from the same place is kept once."""
    store.write_batch(quarantined=[BAD_LINE])
    assert store.write_batch(quarantined=[BAD_LINE]).quarantined == 0
    assert store.counts()["quarantined_by_reason"] == {"invalid_json": 1}


def test_checkpoint_commits_with_its_data(store: Store) -> None:
    """A checkpoint written in a batch is readable after it and replaced by the next one."""
    assert store.checkpoint("logs", "/aws/lambda/crm-notifier") is None
    store.write_batch([EVENT], checkpoints_={("logs", "/aws/lambda/crm-notifier"): "100"})
    store.write_batch(checkpoints_={("logs", "/aws/lambda/crm-notifier"): "200"})
    assert store.checkpoint("logs", "/aws/lambda/crm-notifier") == "200"


def test_a_row_the_engine_refuses_is_quarantined_and_the_rest_commits(store: Store) -> None:
    """One row the engine refuses (NOT NULL) is quarantined with the reason; the batch's
    other rows and its checkpoint commit (issue 17: one row never takes a batch down)."""
    broken = replace(PARTIAL, consumer=None)  # violates NOT NULL
    written = store.write_batch([EVENT], [broken], checkpoints_={("logs", "g"): "1"})
    assert (written.events, written.invocations, written.quarantined) == (1, 0, 1)
    assert store.counts()["events"] == 1
    assert store.counts()["quarantined_by_reason"] == {"store_rejected": 1}
    assert store.checkpoint("logs", "g") == "1"


def test_counts_cover_every_headline(store: Store) -> None:
    """Counts report events, types, invocations by outcome, unattributed and quarantined."""
    unattributed = replace(COMPLETE, request_id="r-2", event_id=None, outcome="timeout")
    store.write_batch([EVENT, replace(EVENT, id="e-2", detail_type="OrderPaid")],
                      [COMPLETE, unattributed], [BAD_LINE])
    counts = store.counts()
    assert {k: counts[k] for k in ("events", "detail_types", "invocations", "failed_invocations",
                                   "unattributed_invocations", "quarantined")} == {
        "events": 2, "detail_types": 2, "invocations": 2, "failed_invocations": 2,
        "unattributed_invocations": 1, "quarantined": 1}


def test_sqlite_store_uses_wal(tmp_path: Path) -> None:
    """The embedded SQLite store runs in WAL mode with a busy timeout."""
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_a_new_sqlite_store_has_large_pages(tmp_path: Path) -> None:
    """A new SQLite file gets 16 KiB pages (rows of ~1 KB: the default 4 KiB page holds 3)."""
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == SQLITE_PAGE_SIZE == 16384


def test_an_existing_store_keeps_its_page_size_and_data(tmp_path: Path) -> None:
    """A store made with 4 KiB pages opens as it is: same pages, same rows, still writable."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA page_size=4096")
        conn.execute("CREATE TABLE unrelated (x)")  # the file now exists with 4 KiB pages
    first = open_store(f"sqlite:///{path}")
    first.write_batch([EVENT])
    first.engine.dispose()
    store = open_store(f"sqlite:///{path}")
    store.write_batch([replace(EVENT, id="e-2")])
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA page_size").scalar() == 4096
    assert store.counts()["events"] == 2


def test_a_store_from_a_newer_version_is_refused(store_url: str) -> None:
    """A store whose schema version is newer than ours is not touched."""
    store = open_store(store_url)
    with store.engine.begin() as conn:
        conn.execute(meta.update().values(value=str(SCHEMA_VERSION + 1)))
    with pytest.raises(StoreError, match="newer"):
        open_store(store_url)


@pytest.mark.parametrize("url", ["nonsense", "mysql://u@h/db", "sqlite+foo:///x.db"])
def test_bad_urls_are_one_line_errors(url: str) -> None:
    """A URL that is not a store we support is refused with a readable message."""
    with pytest.raises(StoreError):
        open_store(url)


def test_an_unreachable_postgresql_is_a_store_error() -> None:
    """A PostgreSQL server that does not answer gives a StoreError, not a driver traceback."""
    with pytest.raises(StoreError, match="cannot open store"):
        open_store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_reading_a_missing_sqlite_file_is_refused(tmp_path: Path) -> None:
    """A reading command pointed at a file that does not exist says so instead of creating it."""
    path = tmp_path / "typo.db"
    with pytest.raises(StoreError, match="no store at"):
        open_store(f"sqlite:///{path}", must_exist=True)
    assert not path.exists()


def test_event_rows_follow_the_events_table() -> None:
    """Ingest hands events over as plain tuples, so their order must be the table's."""
    from eventscope.records import EVENT_COLUMNS
    from eventscope.store import events as events_table

    assert tuple(column.name for column in events_table.columns) == EVENT_COLUMNS


# --- outcomes learnt late ------------------------------------------------------------------

OK_DONE = replace(PARTIAL, complete=True, end_ms=PARTIAL.start_ms + 3001, duration_ms=3000.0)
LATE_TIMEOUT = Invocation(  # what the assembler makes of a "Task timed out" line read alone
    request_id="r-1", consumer="crm-notifier", log_group=PARTIAL.log_group,
    log_stream=PARTIAL.log_stream, start_ms=OK_DONE.end_ms + 1, outcome="timeout",
    error_type="Sandbox.Timedout", error_message="Task timed out after 3.00 seconds")


def _outcomes(store: Store) -> list[tuple[str, int, str, str | None, str | None]]:
    return [(r["request_id"], r["start_ms"], r["outcome"], r["error_type"], r["error_message"])
            for r in store.select_rows(sa.select(invocations).order_by("start_ms"))]


def test_a_complete_ok_invocation_learns_a_later_failure(store: Store) -> None:
    """The same invocation offered again, complete and failed (a late timeout line re-emitted
    by the assembler), turns the stored ok row into a failure."""
    store.write_batch(invocations_=[OK_DONE])
    timed_out = replace(OK_DONE, outcome="timeout", error_type="Sandbox.Timedout")
    assert store.write_batch(invocations_=[timed_out]).invocations == 1
    assert _outcomes(store) == [("r-1", OK_DONE.start_ms, "timeout", "Sandbox.Timedout", None)]


def test_a_failed_invocation_never_goes_back_to_ok(store: Store) -> None:
    """Outcome changes only ever move ok -> error/timeout."""
    timed_out = replace(OK_DONE, outcome="timeout", error_type="Sandbox.Timedout")
    store.write_batch(invocations_=[timed_out])
    assert store.write_batch(invocations_=[OK_DONE]).invocations == 0
    assert store.write_batch(invocations_=[replace(OK_DONE, outcome="error")]).invocations == 0
    assert _outcomes(store)[0][2] == "timeout"


def test_a_late_timeout_line_read_alone_updates_its_stored_invocation(store: Store) -> None:
    """A timeout line read in a later run than its REPORT updates the row, adds none."""
    store.write_batch(invocations_=[OK_DONE])
    assert store.write_batch(invocations_=[LATE_TIMEOUT]).invocations == 1
    assert _outcomes(store) == [("r-1", OK_DONE.start_ms, "timeout", "Sandbox.Timedout",
                                 "Task timed out after 3.00 seconds")]


def test_a_late_timeout_far_from_any_report_is_stored_as_its_own_partial(store: Store) -> None:
    """Nothing ended just before it in that stream: it is kept as a partial invocation."""
    store.write_batch(invocations_=[OK_DONE])
    far = replace(LATE_TIMEOUT, start_ms=OK_DONE.end_ms + 60_000)
    other_stream = replace(LATE_TIMEOUT, log_stream="2024/05/01/[$LATEST]cd")
    assert store.write_batch(invocations_=[far, other_stream]).invocations == 2
    assert [row[2] for row in _outcomes(store)] == ["ok", "timeout", "timeout"]


def test_a_writer_lag_from_the_environment_keeps_its_newest_minutes_for_later(
        store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """$EVENTSCOPE_ROLLUP_LAG_MS (a deployed collector's setting): a write settles only the
    minutes that far behind its oldest row; the newest stay marked for a later writer."""
    monkeypatch.setenv("EVENTSCOPE_ROLLUP_LAG_MS", "120000")
    store = open_store(store_url)
    try:
        assert store.rollup_lag_ms == 120_000
        store.write_batch([BusEvent("e1", "shop", "A", 1_700_000_000_000, "{}", 2)])
        assert store.dirty_minutes() == 1
        store.write_batch([BusEvent("e2", "shop", "A", 1_700_000_600_000, "{}", 2)])
        assert store.rollup_lag() == (1, 1_700_000_580_000)  # e1's minute settled, e2's waits
    finally:
        store.engine.dispose()


def test_a_writer_lag_that_is_not_a_number_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("EVENTSCOPE_ROLLUP_LAG_MS", "2 minutes")
    with pytest.raises(StoreError, match="EVENTSCOPE_ROLLUP_LAG_MS must be a whole number"):
        open_store(f"sqlite:///{tmp_path / 'store.db'}")
