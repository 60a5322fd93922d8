"""The layers hold: nothing but the CLI imports `eventscope.cli`; the faces keep no SQL.

Every module of the product (eventscope/, collectors/, dashboard/, bench/) is parsed with
`ast`, never imported, so a violation is found even in a branch no test runs: an import of
`eventscope.cli` outside the CLI (its entry point `eventscope/__main__.py` excepted), and in
the dashboard and the contracts package an import of a database library or of the table
definitions, a SQL statement in a string, or an `execute` call. Dashboard pages also do no
`groupby` (design.md: pages call loaders, findings and figure builders only). Each rule is
also run on a small bad module, so a checker that checks nothing fails here.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ["eventscope", "collectors", "dashboard", "bench"]
CLI_ENTRY = {"eventscope/__main__.py"}
NO_SQL = ["dashboard", "eventscope/contracts"]
DATABASE_MODULES = ("sqlalchemy", "sqlite3", "psycopg", "psycopg2", "eventscope.tables")
DATABASE_CALLS = {"execute", "executemany", "exec_driver_sql", "read_sql", "read_sql_query",
                  "read_sql_table"}
COLUMN = r"[\w.*()\"`]+(?:\s+as\s+\w+)?"
SQL = re.compile(
    rf"\bselect\s+(?:distinct\s+)?{COLUMN}(?:\s*,\s*{COLUMN})*\s+from\s+[\w\"`.]+|"
    r"\binsert\s+(?:or\s+\w+\s+)?into\b|"
    r"\bupdate\s+[\w\"`.]+\s+set\b|\bdelete\s+from\b|\b(?:create|drop|alter)\s+"
    r"(?:temp(?:orary)?\s+)?(?:table|index|view|schema)\b|\bpragma\s+\w+", re.IGNORECASE)


def modules(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py")
                  if "__pycache__" not in path.parts)


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# The repository's folders and the import names they install as (pyproject's package-dir).
INSTALLED_AS = {"collectors": "eventscope.collectors", "dashboard": "eventscope.dashboard"}


def module_name(path: str) -> str:
    """The dotted name a module at `path` (relative to the repository) is imported as."""
    dotted = path.removesuffix(".py").replace("/", ".")
    top, _, rest = dotted.partition(".")
    return f"{INSTALLED_AS[top]}.{rest}" if top in INSTALLED_AS else dotted


def imported(tree: ast.AST, path: str = "") -> Iterator[tuple[int, str]]:
    """(line, dotted module name) of every import, relative ones resolved against `path`."""
    package = module_name(path).split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[:len(package) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            yield node.lineno, base
            yield from ((node.lineno, f"{base}.{alias.name}") for alias in node.names)


def cli_imports(tree: ast.AST, path: str) -> list[str]:
    """Imports of `eventscope.cli` (or a module in it) in a module outside the CLI."""
    if path.startswith("eventscope/cli/") or path in CLI_ENTRY:
        return []
    return [f"{path}:{line} imports {name}" for line, name in imported(tree, path)
            if name == "eventscope.cli" or name.startswith("eventscope.cli.")]


def sql_uses(tree: ast.AST, path: str) -> list[str]:
    """Database imports, SQL text and execute-style calls in a module that must hold none."""
    found = [f"{path}:{line} imports {name}" for line, name in imported(tree, path)
             if any(name == m or name.startswith(f"{m}.") for m in DATABASE_MODULES)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and SQL.search(node.value):
            found.append(f"{path}:{node.lineno} holds SQL text {node.value[:60]!r}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in DATABASE_CALLS:
            found.append(f"{path}:{node.lineno} calls .{node.func.attr}()")
    return found


def folder_imports(tree: ast.AST, path: str) -> list[str]:
    """Imports of a repository folder by its folder name (`collectors`, `dashboard`): they work
    from the repository's root only; installed, the one top-level name is `eventscope`."""
    return [f"{path}:{line} imports {name}" for line, name in imported(tree, path)
            if name.split(".")[0] in INSTALLED_AS]


def groupby_uses(tree: ast.AST, path: str) -> list[str]:
    """`.groupby(...)` / `.pivot_table(...)` calls (aggregation belongs in findings or views)."""
    return [f"{path}:{node.lineno} calls .{node.func.attr}()" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("groupby", "pivot_table", "resample")]


def parsed(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_the_product_has_modules_to_check() -> None:
    """The folders exist and hold modules (an empty walk would pass every rule below)."""
    assert len(modules(*PRODUCT)) > 50
    assert modules("dashboard/app_pages") and modules("eventscope/contracts")


def test_nothing_outside_the_cli_imports_the_cli() -> None:
    """Only eventscope/cli/* and eventscope/__main__.py import eventscope.cli."""
    found = [v for path in modules(*PRODUCT) for v in cli_imports(parsed(path), relative(path))]
    assert found == []


def test_everything_is_imported_under_the_one_top_level_name() -> None:
    """`eventscope.collectors`, never `collectors` (tests and benches included)."""
    found = [v for path in modules(*PRODUCT, "tests", "docs")
             for v in folder_imports(parsed(path), relative(path))]
    assert found == []


@pytest.mark.parametrize("source", [
    "import collectors.handler", "from dashboard import data", "from collectors import pii",
    "def f():\n    import dashboard.serve\n",
])
def test_a_folder_name_import_is_caught(source: str) -> None:
    assert folder_imports(ast.parse(source), "tests/test_x.py")
    assert not folder_imports(ast.parse("from . import data"), "dashboard/app.py")
    assert not folder_imports(ast.parse("from .clients import make_client"),
                              "collectors/tap.py")


def test_the_dashboard_and_the_contracts_keep_no_sql() -> None:
    """No database library, no table definitions, no SQL text, no execute calls."""
    found = [v for path in modules(*NO_SQL) for v in sql_uses(parsed(path), relative(path))]
    assert found == []


def test_dashboard_pages_do_not_aggregate() -> None:
    """Pages call loaders, views and figure builders; no groupby of their own."""
    found = [v for path in modules("dashboard/app_pages")
             for v in groupby_uses(parsed(path), relative(path))]
    assert found == []


@pytest.mark.parametrize("source", [
    "from eventscope.cli.findings_cmd import load_catalog_file",
    "import eventscope.cli",
    "from eventscope.cli import main",
    "from eventscope import cli",
    "def f():\n    from eventscope.cli.catalog_cmd import _event_source\n",
])
def test_a_cli_import_is_caught_anywhere_but_the_cli(source: str) -> None:
    tree = ast.parse(source)
    assert cli_imports(tree, "dashboard/data.py")
    assert cli_imports(tree, "eventscope/contracts/pytest_plugin.py")
    assert not cli_imports(tree, "eventscope/cli/options.py")
    assert not cli_imports(tree, "eventscope/__main__.py")


def test_a_relative_cli_import_is_caught() -> None:
    assert cli_imports(ast.parse("from ..cli import findings_cmd"),
                       "eventscope/findings/read.py")
    assert cli_imports(ast.parse("from . import cli"), "eventscope/alerts.py")


@pytest.mark.parametrize("source", [
    "import sqlalchemy as sa",
    "from sqlalchemy import select",
    "import sqlite3",
    "from eventscope.tables import events",
    "q = 'SELECT id, detail FROM events WHERE id = ?'",
    "q = '''select count(*)\n  from invocations'''",
    "q = 'insert or ignore into events values (?)'",
    "q = 'DELETE FROM rule_snapshots'",
    "q = 'PRAGMA journal_mode=WAL'",
    "conn.execute(statement)",
    "pd.read_sql(query, engine)",
])
def test_sql_is_caught_in_a_face(source: str) -> None:
    assert sql_uses(ast.parse(source), "dashboard/data.py")


@pytest.mark.parametrize("text", [
    "Select an event type from the list",  # words, not SQL: no column list before FROM
    "Checking subscriptions against lifecycles and traffic…",
    "Events delivered or processed more than once (all data)",
    "Update the catalog",
])
def test_plain_words_are_not_sql(text: str) -> None:
    assert not sql_uses(ast.parse(f"label = {text!r}"), "dashboard/ui.py")


def test_a_groupby_in_a_page_is_caught() -> None:
    assert groupby_uses(ast.parse("df.groupby('consumer').size()"),
                        "dashboard/app_pages/failures.py")
