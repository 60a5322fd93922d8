"""The `eventscope` command line: a thin Click layer over the library.

Owns the command group, the options shared by commands (`--db`, `--json`), and turning a
user's mistake (`EventscopeError`) into one line on stderr and exit status 1. Commands live in
the modules of this package, named in `COMMANDS` below and imported when used.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from eventscope.errors import EventscopeError


# Each command's module is imported only when that command runs (or help lists it), so a
# quick `eventscope ingest` does not pay for pandas, the findings and the dashboard.
COMMANDS: dict[str, str] = {
    "ingest": "ingest_cmd:ingest",
    "stats": "ingest_cmd:stats",
    "catalog": "catalog_cmd:catalog",
    "contracts": "catalog_cmd:contracts",
    "graph": "findings_cmd:graph",
    "failures": "findings_cmd:failures",
    "lifecycle": "findings_cmd:lifecycle",
    "undocumented": "findings_cmd:undocumented",
    "subscriptions": "findings_cmd:subscriptions",
    "duplicates": "findings_cmd:duplicates",
    "check": "findings_cmd:check",
    "dashboard": "dashboard_cmd:dashboard",
    "tap": "collect_cmd:tap",
    "collect": "collect_cmd:collect",
    "replay": "collect_cmd:replay",
    "demo": "demo_cmd:demo",
}


class _Group(click.Group):
    """The top-level group: lazily loaded commands, user mistakes as one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name].split(":")
        command: click.Command = getattr(importlib.import_module(f"eventscope.cli.{module}"),
                                         attribute)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EventscopeError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="eventscope")
def main() -> None:
    """eventscope: see what really happens on your event bus."""
