"""`eventscope ingest` and `eventscope stats`: files into the store, and what the store holds."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from eventscope.catalog.model import Catalog
from eventscope.cli.options import catalog_option, db_option, echo_json, json_option
from eventscope.events import DEFAULT_CORRELATION_PATHS
from eventscope.ingest import IngestSummary, check_readable, ingest_paths, total_size
from eventscope.redaction import RedactionSettings
from eventscope.store import open_store

PROGRESS_MIN_BYTES = 20 * 1024 * 1024


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@db_option
@click.option("--correlation-path", "correlation_paths", multiple=True, metavar="PATH",
              help="Dotted path to the correlation key (repeatable; first found wins). "
                   f"Default: {', '.join(DEFAULT_CORRELATION_PATHS)}.")
@click.option("--workers", type=click.IntRange(min=0), default=None, metavar="N",
              help="Processes parsing in parallel (default: one per CPU, none on one CPU; "
                   "0 parses in this process).")
@click.option("--sample-rate", "sample_rate", type=click.FloatRange(0, 1, min_open=True),
              default=None, metavar="RATE",
              help="Keep this fraction of events (by a hash of their id) and of their "
                   "invocations; it becomes the store's rate (default: the store's, 1 unless a "
                   "tap recorded one).")
@catalog_option
@json_option
def ingest(paths: tuple[str, ...], db_url: str | None, correlation_paths: tuple[str, ...],
           workers: int | None, sample_rate: float | None, catalog_path: str | None,
           as_json: bool) -> None:
    """Read NDJSON files of bus events and consumer log records into the store.

    PATH may be plain or gzipped NDJSON, or - for standard input. Each line is recognised as
    an EventBridge envelope or a CloudWatch Logs record; anything else is quarantined with
    its reason. Re-ingesting the same files changes nothing. With a catalog, each catalogued
    type's version is read as its `version-from` says (default: detail.version) and its
    declared PII fields are redacted whatever their values look like.
    """
    check_readable(paths)
    catalog = None
    if catalog_path:  # imported only then: its schema checks cost a run without a catalog
        from eventscope.catalog.loader import load_catalog

        catalog = load_catalog(catalog_path)
    rules = catalog.version_rules() if catalog else None
    store = open_store(db_url)
    with _progress(paths, enabled=not as_json) as on_progress:
        summary = ingest_paths(store, paths, correlation_paths or DEFAULT_CORRELATION_PATHS,
                               on_progress, _redaction(store, catalog), workers,
                               sample_rate=sample_rate, version_rules=rules)
    if as_json:
        echo_json(summary.as_dict())
    else:
        click.echo(format_summary(summary, len(paths), store.url))


@click.command()
@db_option
@json_option
def stats(db_url: str | None, as_json: bool) -> None:
    """Print counts of what the store holds: events, types, invocations by outcome."""
    counts = open_store(db_url, must_exist=True).counts()
    if as_json:
        echo_json(counts)
        return
    outcomes = counts["invocations_by_outcome"]
    click.echo(f"events:        {counts['events']} ({counts['detail_types']} detail-types)")
    click.echo(f"invocations:   {counts['invocations']} (ok {outcomes['ok']}, error "
               f"{outcomes['error']}, timeout {outcomes['timeout']}; "
               f"{counts['unattributed_invocations']} unattributed)")
    quarantined = _quarantine_text(counts["quarantined"], counts["quarantined_by_reason"])
    click.echo(f"quarantined:   {quarantined}")


def format_summary(summary: IngestSummary, files: int, store_url: str) -> str:
    """The human-readable summary of one ingest run."""
    data = summary.as_dict()
    return "\n".join([
        f"read {data['lines']} lines from {files} file(s) into {store_url}",
        f"events:       {data['events_read']} read, {data['events_stored']} stored, "
        f"{data['event_duplicates']} already stored"
        + (f", {data['replay_echoes']} replay echoes skipped" if data["replay_echoes"] else ""),
        f"log records:  {data['log_records_read']} read -> {data['invocations_built']} "
        f"invocations, {data['invocations_stored']} stored, "
        f"{data['invocations_already_stored']} already stored, "
        f"{data['unattributed_invocations']} without an event id",
        f"quarantined:  {_quarantine_text(data['quarantined'], data['quarantined_by_reason'])}",
    ])


def _quarantine_text(total: int, by_reason: dict[str, int]) -> str:
    if not total:
        return "0"
    return f"{total} (" + ", ".join(f"{r}: {n}" for r, n in sorted(by_reason.items())) + ")"


@contextmanager
def _progress(paths: tuple[str, ...], enabled: bool) -> Iterator[Callable[[int], None] | None]:
    size = total_size(paths)
    if not enabled or not sys.stderr.isatty() or size < PROGRESS_MIN_BYTES:
        yield None
        return
    with click.progressbar(length=size, label="ingesting", file=sys.stderr) as bar:
        yield bar.update


def _redaction(store: Any, catalog: Catalog | None) -> RedactionSettings:
    """PII redaction before the store, as on the collectors' write paths (docs/collectors.md):
    the given catalog's declared PII fields, else those of $EVENTSCOPE_CATALOG."""
    from eventscope.collectors.pii import pii_fields_of, settings_from_env

    return settings_from_env(store, pii_fields_of(catalog) if catalog else None)
