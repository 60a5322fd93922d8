"""How a CLI process ends (`cli.run` -> `cli.quick_exit`): the stores it opened are closed,
every object left is frozen out of the shutdown's garbage collection, and the exit status
contract holds. Commands run as real processes (`python -m eventscope`), as users run them."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import orjson
import pytest

from eventscope.events import envelope_of
from eventscope.store import open_store
from tests import findings_scenario as scenario


def eventscope(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "eventscope", *args], capture_output=True,
                          text=True, check=False, timeout=120)


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, check=False, timeout=120)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Path:
    """A SQLite store holding the findings scenario, closed (no -wal or -shm file)."""
    path = tmp_path / "store.db"
    store = open_store(f"sqlite:///{path}")
    store.write_batch(scenario.bus_events(), scenario.invocations())
    store.engine.dispose()
    assert not _companions(path)
    return path


def _companions(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name + "-"))


@pytest.mark.parametrize("args", [["stats"], ["failures", "--json"], ["graph", "--json"],
                                  ["lifecycle", "o-1", "--json"]])
def test_a_reading_command_closes_the_sqlite_store_it_opened(sqlite_store: Path,
                                                             args: list[str]) -> None:
    """The objects are frozen at exit, so the shutdown's collection, which used to close the
    engines' connections, no longer does: `quick_exit` closes them first, and SQLite's last
    connection removes the -wal and -shm files as before."""
    done = eventscope(*args, "--db", f"sqlite:///{sqlite_store}")
    assert done.returncode == 0, done.stderr[-800:]
    assert done.stdout.strip()  # it answered
    assert _companions(sqlite_store) == []


def test_ingest_as_a_process_leaves_its_rows_committed_and_no_wal(tmp_path: Path) -> None:
    """A writing command: every row is in the main file once the process is gone (the
    write-ahead log was checkpointed and removed when its connection closed)."""
    source = tmp_path / "events.ndjson"
    source.write_bytes(b"".join(orjson.dumps(envelope_of(event)) + b"\n"
                                for event in scenario.bus_events()))
    path = tmp_path / "ingested.db"
    done = eventscope("ingest", str(source), "--db", f"sqlite:///{path}", "--json")
    assert done.returncode == 0, done.stderr[-800:]
    assert json.loads(done.stdout)["events_stored"] == len(scenario.bus_events())
    assert _companions(path) == []
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == len(
            scenario.bus_events())


def test_quick_exit_closes_every_store_on_both_engines_and_freezes(store_url: str,
                                                                  tmp_path: Path) -> None:
    """In a process of its own (freezing is for good): two stores opened, one connection
    each returned to its pool; after `quick_exit` none is left open and objects are
    frozen."""
    done = python(f"""
        import gc, sys
        from eventscope.cli import quick_exit
        from eventscope.store import open_store
        stores = [open_store({store_url!r}), open_store({f"sqlite:///{tmp_path / 'b.db'}"!r})]
        for store in stores:
            with store.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        before = [store.engine.pool.checkedin() for store in stores]
        quick_exit(sys.modules)
        print(before, [store.engine.pool.checkedin() for store in stores],
              gc.get_freeze_count() > 0)
    """)
    assert done.returncode == 0, done.stderr[-800:]
    assert done.stdout.split() == ["[1,", "1]", "[0,", "0]", "True"]


def test_quick_exit_imports_no_store_when_none_was_opened() -> None:
    """`eventscope --version` and `--help` must not pay for SQLAlchemy at exit."""
    done = python("""
        import sys
        from eventscope.cli import quick_exit
        quick_exit(sys.modules)
        print("sqlalchemy" in sys.modules, "eventscope.store" in sys.modules)
    """)
    assert done.returncode == 0, done.stderr[-800:]
    assert done.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(("args", "status"), [
    (["check", "--json"], 1),                  # the scenario holds failures at `fail_on`
    (["stats", "--db", "not-a-url"], 2),       # a user's mistake: one line, no traceback
])
def test_the_exit_status_contract_holds_through_the_quick_exit(sqlite_store: Path,
                                                               args: list[str],
                                                               status: int) -> None:
    if "--db" not in args:
        args = [*args, "--db", f"sqlite:///{sqlite_store}"]
    done = eventscope(*args)
    assert done.returncode == status, done.stderr[-800:]
    if status == 2:
        assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1
