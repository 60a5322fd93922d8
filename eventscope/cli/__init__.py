"""The `eventscope` command line: a thin Click layer over the library.

Owns the command group, the options shared by commands (`--db`, `--json`), and turning a
user's mistake (`EventscopeError`) into one line on stderr and exit status 1. Commands live in
the modules of this package and are registered in `COMMANDS` below.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from eventscope.cli import (catalog_cmd, collect_cmd, dashboard_cmd, demo_cmd, findings_cmd,
                            ingest_cmd)
from eventscope.errors import EventscopeError


class _Group(click.Group):
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


COMMANDS: list[click.Command] = [ingest_cmd.ingest, ingest_cmd.stats, *catalog_cmd.COMMANDS,
                                 *findings_cmd.COMMANDS, dashboard_cmd.dashboard,
                                 collect_cmd.tap, collect_cmd.collect, collect_cmd.replay,
                                 demo_cmd.demo]
for command in COMMANDS:
    main.add_command(command)
