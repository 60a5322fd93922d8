"""Options shared by several commands, as decorators (the sqlite-utils pattern)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
import orjson

F = TypeVar("F", bound=Callable[..., Any])

db_option = click.option(
    "--db", "db_url", envvar="EVENTSCOPE_DB", default=None, metavar="URL",
    help="Store URL: sqlite:///file.db (default sqlite:///eventscope.db) or "
         "postgresql://user@host/db. Also $EVENTSCOPE_DB.",
)

json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print one JSON object instead of a table.")


def echo_json(value: Any) -> None:
    """Print a JSON document with stable key order, for scripts and CI."""
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
