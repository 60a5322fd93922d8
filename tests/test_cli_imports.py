"""The CLI's start-up, its help and the order lifecycle import none of the heavy libraries
(pandas, pyarrow, plotly, networkx, boto3, streamlit; jsonschema without a catalog): each
command imports what it needs when it runs; a SQLite store never imports SQLAlchemy's
PostgreSQL dialect. A test of imports, read from `-X importtime`, not of time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from eventscope.cli import COMMANDS, SHORT_HELP, lean_process, main
from eventscope.store import open_store
from tests import findings_scenario as scenario

HEAVY = {"pandas", "pyarrow", "plotly", "networkx", "boto3", "botocore", "streamlit",
         "jsonschema", "numpy"}
CATALOG = str(Path(__file__).parent / "data" / "readmodel" / "catalog")


def modules(*args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """Every module `eventscope ARGS` imported (dotted names), and the finished process."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "eventscope", *args],
                          capture_output=True, text=True, check=False)
    names = {line.rsplit("|", 1)[1].strip()
             for line in done.stderr.splitlines() if line.startswith("import time:")}
    return names - {"imported package"}, done


def imported(*args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """The top-level packages `eventscope ARGS` imported, and the finished process."""
    names, done = modules(*args)
    return {name.split(".")[0] for name in names}, done


def postgresql_modules(names: set[str]) -> set[str]:
    """SQLAlchemy's PostgreSQL dialect (with its asyncpg, pg8000 ... modules) and drivers."""
    return {n for n in names if n.startswith(("sqlalchemy.dialects.postgresql", "psycopg",
                                              "asyncpg"))}


@pytest.fixture
def order_store(store_url: str) -> str:
    store = open_store(store_url)
    store.write_batch(scenario.bus_events(), scenario.invocations())
    store.engine.dispose()
    return store_url


def test_the_command_list_imports_no_command_module() -> None:
    """`eventscope --help` lists every command from SHORT_HELP: no SQLAlchemy, no jsonschema,
    nothing heavy, and every command is listed."""
    names, done = imported("--help")
    assert done.returncode == 0, done.stderr[-500:]
    assert names & (HEAVY | {"sqlalchemy"}) == set()
    listed = {line.split()[0] for line in done.stdout.split("Commands:")[1].splitlines()
              if line.startswith("  ") and not line.startswith("   ")}
    assert listed == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_listed_help_line_is_the_commands_own(name: str) -> None:
    """SHORT_HELP holds, for every command, the first line of the command's own docstring."""
    command = main.get_command(click.Context(main), name)
    assert command is not None
    assert SHORT_HELP.get(name) == command.get_short_help_str(limit=300)


@pytest.mark.parametrize("args", [["lifecycle", "--help"], ["check", "--help"]])
def test_help_imports_no_heavy_library(args: list[str]) -> None:
    """A command's help imports its module: the findings modules import the catalog, whose
    loader holds jsonschema validators, so jsonschema is let through."""
    names, done = imported(*args)
    assert done.returncode == 0, done.stderr[-500:]
    assert names & HEAVY <= {"jsonschema"}


def test_lifecycle_imports_no_heavy_library(order_store: str) -> None:
    """Nor, on a SQLite store, the PostgreSQL dialect; nor the pruning, which readers of a
    pruned payload need not import."""
    names, done = modules("lifecycle", "o-1", "--db", order_store, "--json")
    assert done.returncode == 0, done.stderr[-500:]
    assert '"key": "o-1"' in done.stdout
    assert {name.split(".")[0] for name in names} & HEAVY == set()
    assert "eventscope.retention" not in names
    if order_store.startswith("sqlite"):
        assert postgresql_modules(names) == set()


@pytest.mark.parametrize("args", [["stats"], ["failures", "--json"], ["prune", "--dry-run"]])
def test_a_sqlite_store_never_imports_the_postgresql_dialect(args: list[str],
                                                             tmp_path: Path) -> None:
    """Opening, reading and pruning a SQLite store: SQLAlchemy's PostgreSQL dialect is
    imported only for a PostgreSQL store."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)
    store.write_batch(scenario.bus_events(), scenario.invocations())
    store.engine.dispose()
    names, done = modules(*args, "--db", url)
    assert done.returncode == 0, done.stderr[-500:]
    assert postgresql_modules(names) == set()


def test_lifecycle_with_a_catalog_imports_only_the_catalogs_validator(order_store: str) -> None:
    """The catalog's loader validates schemas with jsonschema; nothing else heavy comes in."""
    names, done = imported("lifecycle", "o-1", "--db", order_store, "--catalog", CATALOG)
    assert done.returncode == 0, done.stderr[-500:]
    assert names & HEAVY <= {"jsonschema"}


def test_the_check_sees_a_command_that_does_import_pandas(order_store: str) -> None:
    """`failures` computes with pandas: the same reading of the imports reports it."""
    names, done = imported("failures", "--db", order_store, "--json")
    assert done.returncode == 0, done.stderr[-500:]
    assert "pandas" in names


@pytest.mark.parametrize("command", ["check", "undocumented", "failures", "duplicates",
                                     "latency", "subscriptions"])
def test_findings_import_no_schema_validator_without_a_catalog_nor_networkx(
        command: str, order_store: str) -> None:
    """Without a catalog or contract results there is no schema to check: the findings
    commands leave jsonschema, referencing and jsonschema-rs unimported; only the graph's
    readers import networkx."""
    names, done = imported(command, "--db", order_store, "--json")
    assert done.returncode in (0, 1), done.stderr[-500:]
    assert names & {"jsonschema", "referencing", "jsonschema_rs", "networkx"} == set()


def test_the_graph_does_import_networkx(order_store: str) -> None:
    """The same reading of the imports sees networkx where the graph is built."""
    names, done = imported("graph", "--db", order_store, "--json")
    assert done.returncode == 0, done.stderr[-500:]
    assert "networkx" in names


@pytest.mark.parametrize("command", ["failures", "check", "graph", "subscriptions",
                                     "duplicates", "latency"])
def test_a_command_process_runs_pandas_without_pyarrow_and_answers_alike(
        command: str, order_store: str) -> None:
    """`eventscope` as a process hides pyarrow from pandas (`lean_process`): pandas is
    imported, pyarrow is not, and the JSON is the same as this process's, whose pandas backs
    its strings with pyarrow."""
    pytest.importorskip("pyarrow")
    from click.testing import CliRunner
    names, done = modules(command, "--db", order_store, "--json")
    assert done.returncode in (0, 1), done.stderr[-500:]
    # the refused `import pyarrow` is listed (5 us); no module of pyarrow's is loaded
    assert "pandas.core.frame" in names and "pyarrow.lib" not in names
    here = CliRunner().invoke(main, [command, "--db", order_store, "--json"])
    assert here.exit_code == done.returncode, here.output[-500:]
    assert json.loads(done.stdout) == json.loads(here.output)


def test_lean_process_hides_pyarrow_only_before_pandas_and_keeps_a_users_setting() -> None:
    """Pure: the BLAS thread setting is a default, and pyarrow is hidden only while neither
    pandas nor pyarrow is loaded."""
    environ: dict[str, str] = {}
    modules: dict[str, Any] = {}
    lean_process(environ, modules)
    assert environ == {"OPENBLAS_NUM_THREADS": "1"} and modules == {"pyarrow": None}
    environ, loaded = {"OPENBLAS_NUM_THREADS": "4"}, {"pandas": object()}
    lean_process(environ, loaded)
    assert environ == {"OPENBLAS_NUM_THREADS": "4"} and "pyarrow" not in loaded
    arrow = object()
    modules = {"pyarrow": arrow}
    lean_process({}, modules)
    assert modules == {"pyarrow": arrow}
