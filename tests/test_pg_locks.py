"""PostgreSQL's advisory locks (`eventscope.pg_locks`): a store's processes exclude each other
from the work they must not do at once; stores in other schemas of the same database never
wait for them; and an older eventscope's database-wide lock still excludes a newer process."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import OperationalError

from eventscope.errors import StoreError
from eventscope.pg_locks import RECOMPUTE_LOCK, SCHEMA_LOCK, lock_store
from eventscope.records import BusEvent, Invocation
from eventscope.store import Store, open_store
from tests.conftest import _fresh_pg_schema
from tests.store_shapes import EngineTracker

T0 = 1_767_225_600_000  # 2026-01-01


@pytest.fixture
def other_pg_url() -> Iterator[str]:
    """A second fresh store's URL on the same database, in a schema of its own."""
    yield from _fresh_pg_schema()


def _impatient(url: str) -> str:
    """The store's URL (conftest's, which ends in its `options`) with a 1 s lock timeout: a
    wait for a lock fails instead of hanging."""
    return url + "%20-clock_timeout%3D1000"


def _dirty(url: str) -> Store:
    """The store at `url` with one event and its invocation written, rollups not refreshed."""
    store = open_store(url)
    store.write_batch([BusEvent(id="e1", source="shop", detail_type="OrderPlaced", time_ms=T0,
                                detail="{}", size_bytes=2)],
                      [Invocation("r1", "fn", "/aws/lambda/fn", "s", T0 + 10, "ok", "e1",
                                  duration_ms=5.0, complete=True)], settle=False)
    return store


@pytest.fixture
def recompute_key(monkeypatch: pytest.MonkeyPatch) -> int:
    """The recomputation's lock key, made this test process's own: an older eventscope's
    database-wide lock, taken below, would otherwise make every refresh in the database
    wait, the 1 s-impatient ones of a test running beside this one on another worker too."""
    from eventscope import rollups
    key = RECOMPUTE_LOCK + os.getpid()
    monkeypatch.setattr(rollups, "RECOMPUTE_LOCK", key)
    return key


# `engines` (conftest): every store a test opens is disposed of afterwards.

def test_a_refresh_waits_for_its_own_stores_lock_never_another_stores(
        pg_url: str, other_pg_url: str, engines: EngineTracker, recompute_key: int) -> None:
    first, second = _dirty(_impatient(pg_url)), _dirty(_impatient(other_pg_url))
    with first.engine.connect() as holder, holder.begin():
        lock_store(holder, recompute_key)  # the first store's refresh is under way
        assert second.refresh_rollups() > 0
        with pytest.raises(StoreError, match="lock timeout"):
            first.refresh_rollups()
    assert first.refresh_rollups() > 0  # released: it runs


def test_a_new_store_is_created_while_another_stores_schema_is_locked(
        pg_url: str, other_pg_url: str, engines: EngineTracker) -> None:
    first = open_store(pg_url)
    with first.engine.connect() as holder, holder.begin():
        lock_store(holder, SCHEMA_LOCK)
        created = open_store(_impatient(other_pg_url))  # creates its schema's tables
        assert created.counts()["events"] == 0


def test_an_older_eventscopes_database_wide_lock_still_excludes_a_refresh(
        pg_url: str, other_pg_url: str, engines: EngineTracker, recompute_key: int) -> None:
    """An older process took `pg_advisory_xact_lock(key)` for the whole database: a newer
    one waits for it, and it for a newer one (a rolling upgrade stays safe)."""
    store, other = _dirty(_impatient(pg_url)), open_store(_impatient(other_pg_url))
    with other.engine.connect() as older, older.begin():
        older.exec_driver_sql(f"SELECT pg_advisory_xact_lock({recompute_key})")
        with pytest.raises(StoreError, match="lock timeout"):
            store.refresh_rollups()
    with store.engine.connect() as newer, newer.begin():
        lock_store(newer, recompute_key)
        with other.engine.connect() as older, older.begin():
            with pytest.raises(OperationalError, match="lock timeout"):
                older.exec_driver_sql(f"SELECT pg_advisory_xact_lock({recompute_key})")
