"""`eventscope prune`: apply the store's retention now, or show what it would remove.

A thin Click layer over `eventscope.retention.prune`: the days given become the store's
retention (what `collect all`'s daily prune applies, and what readers are told), then every
kind's old rows go in batches, and the command prints per table what it freed.
"""

from __future__ import annotations

import click

from eventscope import retention
from eventscope.cli.options import db_option, echo_json, json_option, print_table
from eventscope.store import open_store

DAYS = click.IntRange(1, 100_000)


@click.command()
@db_option
@click.option("--payload-days", type=DAYS, default=None,
              help="Keep events' payloads this many days (the events stay; default 7).")
@click.option("--raw-days", type=DAYS, default=None,
              help="Keep events, invocations and deliveries this many days (default 30).")
@click.option("--quarantine-days", type=DAYS, default=None,
              help="Keep quarantined inputs this many days (default 30).")
@click.option("--minute-rollup-days", type=DAYS, default=None,
              help="Keep per-minute summaries this many days (default 30; >= --raw-days).")
@click.option("--rollup-days", type=DAYS, default=None,
              help="Keep daily summaries this many days (default 400).")
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@json_option
def prune(db_url: str | None, payload_days: int | None, raw_days: int | None,
          quarantine_days: int | None, minute_rollup_days: int | None,
          rollup_days: int | None, dry_run: bool, as_json: bool) -> None:
    """Delete what is older than the store's retention, in batches; print what was freed.

    Days given here become the store's retention (kept in the store, applied daily by
    `collect all`); days not given keep the store's (else the defaults)."""
    store = open_store(db_url, must_exist=True)
    policy = retention.with_overrides(retention.read_retention(store.engine).policy, {
        "payloads": payload_days, "raw": raw_days, "quarantine": quarantine_days,
        "minute_rollups": minute_rollup_days, "day_rollups": rollup_days})
    report = retention.prune(store, policy, dry_run=dry_run)
    if as_json:
        echo_json(report.as_dict())
        return
    print_table([{"kept": retention.WHAT[kind], "days": policy.days(kind),
                  "from": retention.iso_day(since)} for kind, since in report.kept_since.items()],
                ["kept", "days", "from"])
    click.echo()
    for freed in report.tables:
        if freed.note:
            click.echo(f"note: {freed.table}: {freed.note}", err=True)
    if report.rows == 0:
        click.echo("nothing to prune: the store holds nothing older than its retention")
        return
    verb = "would free" if dry_run else "freed"
    print_table([{"table": t.table, "kind": t.kind, "rows": t.rows,
                  "action": t.action + (f" ({len(t.partitions)} day partitions dropped)"
                                        if t.partitions else "")}
                 for t in report.tables if t.rows], ["table", "kind", "rows", "action"])
    space = report.space
    if space.get("freed_bytes") is not None:
        click.echo(f"{verb} {space['freed_bytes']} bytes inside the file, "
                   f"{space['returned_bytes']} returned to the file system")
    click.echo(f"{verb} {report.rows} rows; {space['advice']}")
