"""Shared fixtures: a fresh store on SQLite and, when reachable, on PostgreSQL.

Every test that takes `store` (or `store_url`) runs once per engine. Each PostgreSQL test gets
its own schema, dropped afterwards, so tests never see each other's rows. Under CI=true an
unreachable PostgreSQL is a failure, not a skip.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import settings

from eventscope.store import Store, open_store
from tests.store_shapes import EngineTracker

# Property tests: random draws where a developer runs them (new shapes every run), a fixed
# draw under CI (a run that lands is repeatable; a failure prints how to reproduce it).
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", print_blob=True, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")

PG_URL = os.environ.get("EVENTSCOPE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DATA = Path(__file__).parent / "data"


def _pg_reachable() -> str | None:
    try:
        with sa.create_engine(PG_URL).connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return str(exc).splitlines()[0]
    return None


_PG_PROBLEM = _pg_reachable()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty store on each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    yield from _fresh_pg_schema()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL store (for PostgreSQL-only tests)."""
    yield from _fresh_pg_schema()


def _fresh_pg_schema() -> Iterator[str]:
    """A URL whose search path is a fresh schema of the test server, dropped afterwards;
    a test fails under CI, and is skipped elsewhere, when the server is unreachable."""
    if _PG_PROBLEM:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL must be reachable under CI: {_PG_PROBLEM}")
        pytest.skip(f"PostgreSQL not reachable: {_PG_PROBLEM}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A fresh store with its schema, on each engine."""
    opened = open_store(store_url)
    yield opened
    opened.engine.dispose()


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[EngineTracker]:
    """The engines in-process commands and pages open, disposed of after each use (the
    property tests run many on one store; PostgreSQL would run out of connections)."""
    tracker = EngineTracker(monkeypatch)
    yield tracker
    tracker.dispose()


@pytest.fixture(autouse=True)
def _main_module_kept() -> Iterator[None]:
    """Streamlit's AppTest runs a page as `__main__` and leaves it there: a process pool
    started later in the same test process (ingest's workers, spawned once threads run)
    would import that page in every worker, which then dies. Put the real one back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main
