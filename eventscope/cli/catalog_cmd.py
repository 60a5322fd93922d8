"""`eventscope catalog ...` and `eventscope contracts ...`: the catalog and contract commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import yaml

from eventscope.catalog.compat import MODES, Change, check, diff
from eventscope.catalog.loader import CatalogError, load_catalog
from eventscope.catalog.model import Catalog
from eventscope.catalog.schemas import catalog_registry
from eventscope.cli.options import echo_json, json_option
from eventscope.errors import InputError

catalog_option = click.option(
    "--catalog", "catalog_path", envvar="EVENTSCOPE_CATALOG", default="catalog",
    show_default=True, metavar="PATH", type=click.Path(file_okay=False),
    help="The catalog folder. Also $EVENTSCOPE_CATALOG.")


@click.group()
def catalog() -> None:
    """Check and compare the event catalog (events, consumers, lifecycles)."""


@catalog.command()
@click.argument("path", type=click.Path(file_okay=False))
@json_option
def validate(path: str, as_json: bool) -> None:
    """Check a catalog folder and report every mistake as file:line field: expected.

    Checks each file against the catalog format, then across files: unknown event types,
    unresolvable $refs, examples that break their schema, versions that break their type's
    compatibility mode. Exits 1 when anything is wrong.
    """
    try:
        loaded = load_catalog(path)
    except CatalogError as error:
        if as_json:
            echo_json({"valid": False, "problems": [vars(p) for p in error.problems]})
        else:
            for problem in error.problems:
                click.echo(str(problem), err=True)
            click.echo(f"{len(error.problems)} problem(s) in {path}", err=True)
        sys.exit(1)
    summary = {"valid": True, "event_types": len(loaded.event_types),
               "consumers": len(loaded.consumers), "lifecycles": len(loaded.lifecycles),
               "revision": loaded.revision}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"{path}: valid ({summary['event_types']} event types, "
                   f"{summary['consumers']} consumers, {summary['lifecycles']} lifecycles, "
                   f"revision {loaded.revision})")


@catalog.command(name="diff")
@click.argument("old")
@click.argument("new")
@click.option("--catalog", "catalog_path", envvar="EVENTSCOPE_CATALOG", default=None,
              metavar="PATH", help="Catalog folder, to name versions as EventType@version and "
                                   "resolve $refs to its schemas.")
@click.option("--mode", type=click.Choice(MODES), default=None,
              help="Mode to gate on (default: the event type's, else FULL_TRANSITIVE).")
@json_option
def diff_command(old: str, new: str, catalog_path: str | None, mode: str | None,
                 as_json: bool) -> None:
    """Classify every change between two schema versions and gate on a compatibility mode.

    OLD and NEW are JSON/YAML schema files, or EventType@version with --catalog. Prints each
    change read both ways (new reading old events: BACKWARD; old reading new: FORWARD) with
    its reason, and the verdict for every mode. Exits 1 when the mode is broken.
    """
    loaded = load_catalog(catalog_path) if catalog_path else None
    old_schema, old_mode = _schema_arg(old, loaded)
    new_schema, _ = _schema_arg(new, loaded)
    registry = catalog_registry(loaded) if loaded else None
    gate = mode or old_mode or "FULL_TRANSITIVE"
    backward = diff(old_schema, new_schema, registry, "old", "new")
    forward = diff(new_schema, old_schema, registry, "new", "old")
    verdicts = {m: check([("old", old_schema)], new_schema, m, registry).compatible
                for m in MODES}
    if as_json:
        echo_json({"mode": gate, "compatible": verdicts[gate], "verdicts": verdicts,
                   "backward": [vars(c) for c in backward],
                   "forward": [vars(c) for c in forward]})
    else:
        _print_changes("new schema reading old events (BACKWARD)", backward)
        _print_changes("old schema reading new events (FORWARD)", forward)
        click.echo("verdicts: " + ", ".join(f"{m} {'ok' if v else 'BREAKS'}"
                                            for m, v in verdicts.items()))
        click.echo(f"{gate}: {'compatible' if verdicts[gate] else 'INCOMPATIBLE'}")
    if not verdicts[gate]:
        sys.exit(1)


def _print_changes(title: str, changes: list[Change]) -> None:
    click.echo(f"{title}:")
    if not changes:
        click.echo("  no differences")
    for change in changes:
        mark = "ok   " if change.compatible else "BREAK"
        click.echo(f"  {mark} {change.path} {change.kind}: {change.reason}")


def _schema_arg(value: str, loaded: Catalog | None) -> tuple[Any, str | None]:
    if "@" in value and loaded is not None and not Path(value).exists():
        name, version = value.rsplit("@", 1)
        event_type = loaded.event_type(name)
        found = event_type.version(version) if event_type else None
        if found is None:
            raise InputError(f"{value}: no such event type/version in the catalog "
                             "(expected EventType@version)")
        return found.schema, event_type.compatibility if event_type else None
    path = Path(value)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")), None
    except OSError as exc:
        raise InputError(f"cannot read schema {value}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{value} is not JSON or YAML: {str(exc).splitlines()[0]}") from None


COMMANDS: list[click.Command] = [catalog]
