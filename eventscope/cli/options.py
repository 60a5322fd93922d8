"""Options shared by several commands, as decorators (the sqlite-utils pattern).

Owns `--db`, `--catalog`, the one time/duration grammar as Click parameter types (so a bad
value is a usage error, exit 2), and the one output switch of table commands: a table by
default, `--json` (one document), `--nl` (one JSON object per row and line) or `--csv`.
"""

from __future__ import annotations

import csv
import functools
import io
import time
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
import orjson

from eventscope.durations import duration_ms, since_ms

F = TypeVar("F", bound=Callable[..., Any])

db_option = click.option(
    "--db", "db_url", envvar="EVENTSCOPE_DB", default=None, metavar="URL",
    help="Store URL: sqlite:///file.db (default sqlite:///eventscope.db) or "
         "postgresql://user@host/db. Also $EVENTSCOPE_DB.",
)

catalog_option = click.option(
    "--catalog", "catalog_path", envvar="EVENTSCOPE_CATALOG", default=None, metavar="PATH",
    type=click.Path(file_okay=False),
    help="The catalog folder (enables catalog-based checks). Also $EVENTSCOPE_CATALOG.")

catalog_folder_option = click.option(  # for commands that cannot work without a catalog
    "--catalog", "catalog_path", envvar="EVENTSCOPE_CATALOG", default="catalog",
    show_default=True, metavar="PATH", type=click.Path(file_okay=False),
    help="The catalog folder. Also $EVENTSCOPE_CATALOG.")

json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON object instead of a table.")


class TimeType(click.ParamType):
    """A point in time: a duration ago (15m, 2h, 1d, 1w) or an ISO 8601 time; epoch ms."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return since_ms(str(value), int(time.time() * 1000))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class DurationType(click.ParamType):
    """A duration (90s, 15m, 2h, 1d, 1w), in milliseconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return duration_ms(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


TIME = TimeType()
DURATION = DurationType()

OUTPUTS = ("table", "json", "nl", "csv")


def output_options(function: F) -> F:
    """--json, --nl and --csv (at most one); the command receives `output`, one of OUTPUTS."""
    @functools.wraps(function)
    def wrapper(*args: Any, as_json: bool, as_nl: bool, as_csv: bool, **kwargs: Any) -> Any:
        chosen = [name for name, on in (("json", as_json), ("nl", as_nl), ("csv", as_csv)) if on]
        if len(chosen) > 1:
            raise click.UsageError("give at most one of --json, --nl and --csv")
        return function(*args, output=chosen[0] if chosen else "table", **kwargs)

    for option in reversed([
        click.option("--json", "as_json", is_flag=True, help="Print one JSON document."),
        click.option("--nl", "as_nl", is_flag=True,
                     help="Print the table's rows as newline-delimited JSON."),
        click.option("--csv", "as_csv", is_flag=True, help="Print the table's rows as CSV."),
    ]):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


def echo_json(value: Any) -> None:
    """Print a JSON document with stable key order, for scripts and CI."""
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())


def emit_rows(output: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Rows as `nl` (one JSON object a line, every key) or `csv` (a header of every key, the
    table's columns first; lists and objects as JSON text)."""
    if output == "nl":
        for row in rows:
            click.echo(orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode())
        return
    fields = list(columns) + sorted({k for row in rows for k in row} - set(columns))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        writer.writerow([_csv_cell(row.get(f)) for f in fields])
    click.echo(buffer.getvalue(), nl=False)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may run as a formula


def _csv_cell(value: Any) -> Any:
    """A CSV cell; text a spreadsheet would take for a formula gets a leading `'` (OWASP's
    CSV injection advice), so an event's data is never executed where the CSV is opened."""
    if isinstance(value, (dict, list, tuple)):
        value = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def cell(value: Any) -> str:
    """Printable text for a table cell: control characters (terminal escapes) are dropped."""
    if value is None:
        return "-"
    if isinstance(value, float):
        value = f"{value:.3g}" if value < 1 else f"{value:.1f}"
    text = str(value)
    return "".join(c if unicodedata.category(c)[0] != "C" else "?" for c in text)[:120]


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Aligned columns, a header and a rule; '(none)' for no rows."""
    if not rows:
        click.echo("(none)")
        return
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    click.echo("  ".join("-" * w for w in widths))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)))
