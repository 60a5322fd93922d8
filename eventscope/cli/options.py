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


def echo_json(value: Any) -> None:
    """Print a JSON document with stable key order, for scripts and CI."""
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
