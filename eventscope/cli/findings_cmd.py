"""The findings commands: graph, failures, lifecycle, undocumented, subscriptions, duplicates,
check. Whole-store views read the rollups through `eventscope.findings.summaries`; the
lifecycle and other drill-downs read raw rows through `eventscope.findings.load`. Each prints
a table or, with `--json`, one stable JSON document (shapes in docs/findings.md).
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timezone
from typing import Any

import click
import pandas as pd

from eventscope.catalog.model import Catalog
from eventscope.cli.aws import aws_clients, aws_options, aws_settings
from eventscope.cli.options import catalog_option, db_option, echo_json, json_option
from eventscope.errors import EventscopeError
from eventscope.findings import load, read, summaries
from eventscope.findings.check import Finding, at_or_above, read_thresholds, run_check_summaries
from eventscope.findings.duplicates import producer_resends
from eventscope.findings.failures import failure_rates, final_failures, top_errors
from eventscope.findings.frames import records, resolve_consumers
from eventscope.findings.graph import graph_json, to_dot, to_mermaid
from eventscope.findings.lifecycle import order_lifecycle
from eventscope.findings.undocumented import undocumented_events
from eventscope.store import Store, open_store

DURATION = re.compile(r"^(\d+)([smhdw])$")
UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}

load_catalog_file = read.load_catalog_file  # the read model's, shared with the dashboard


def parse_when(value: str | None, now_ms: int) -> int | None:
    """Milliseconds for a relative age (30m, 24h, 7d, 2w) or an ISO 8601 date/time."""
    if value is None:
        return None
    match = DURATION.match(value.strip())
    if match:
        return now_ms - int(match.group(1)) * UNIT_MS[match.group(2)]
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither an age like 24h/7d nor an ISO "
                                 "date/time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1000)


def parse_bucket(value: str | None) -> int | None:
    if value is None:
        return None
    match = DURATION.match(value.strip())
    if not match:
        raise click.BadParameter(f"{value!r} is not a duration like 5m, 1h or 1d")
    return int(match.group(1)) * UNIT_MS[match.group(2)]


def _cell(value: Any) -> str:
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
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    click.echo("  ".join("-" * w for w in widths))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def _store(db_url: str | None) -> Store:
    return open_store(db_url, must_exist=True)


def _iso(ms: Any) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc)\
        .isoformat(timespec="seconds")


@click.command()
@db_option
@catalog_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "dot", "mermaid"]),
              default="table", help="Output format (default table).")
@json_option
def graph(db_url: str | None, catalog_path: str | None, fmt: str, as_json: bool) -> None:
    """Producers -> event types -> consumers, each edge declared / subscribed / observed."""
    store, catalog = _store(db_url), load_catalog_file(catalog_path)
    built = summaries.build_graph(store.engine, catalog, _bus_subscriptions(store, catalog))
    fmt = "json" if as_json else fmt
    if fmt == "json":
        echo_json(graph_json(built))
    elif fmt in ("dot", "mermaid"):
        click.echo(to_dot(built) if fmt == "dot" else to_mermaid(built), nl=False)
    else:
        rows = [{"from": built.nodes[a]["name"], "to": built.nodes[b]["name"], **d,
                 "last_seen": _iso(d["last_seen_ms"])} for a, b, d in built.edges(data=True)]
        print_table(sorted(rows, key=lambda r: (r["from"], r["to"])),
                    ["from", "to", "status", "count", "failed", "last_seen"])


@click.command()
@db_option
@catalog_option
@click.option("--since", default=None, help="Start: an age (24h, 7d) or ISO time.")
@click.option("--until", default=None, help="End (exclusive): an age or ISO time.")
@click.option("--consumer", "consumers", multiple=True, help="Only this consumer (repeatable).")
@click.option("--type", "detail_types", multiple=True, help="Only this detail-type (repeatable).")
@click.option("--bucket", default=None, help="Also split into time buckets (5m, 1h, 1d).")
@json_option
def failures(db_url: str | None, catalog_path: str | None, since: str | None,
             until: str | None, consumers: tuple[str, ...], detail_types: tuple[str, ...],
             bucket: str | None, as_json: bool) -> None:
    """Failure rates per consumer x event type x version, final failures, top errors."""
    now = int(time.time() * 1000)
    store, catalog = _store(db_url), load_catalog_file(catalog_path)
    since_ms, until_ms, bucket_ms = parse_when(since, now), parse_when(until, now), \
        parse_bucket(bucket)
    if bucket_ms and bucket_ms % 60_000:
        result = _raw_failures(store, catalog, since_ms, until_ms, consumers, detail_types,
                               bucket_ms)
    else:
        selection = {"catalog": catalog, "since_ms": since_ms, "until_ms": until_ms,
                     "consumers": consumers, "detail_types": detail_types}
        result = {"rates": records(summaries.failure_rates(store.engine, **selection)),
                  "final_failures": records(summaries.final_failures(
                      store.engine, **selection).head(100)),
                  "top_errors": records(summaries.top_errors(store.engine, **selection))}
        if bucket_ms:
            result["buckets"] = records(summaries.failure_rates(
                store.engine, bucket_ms=bucket_ms, **selection))
    if as_json:
        echo_json(result)
        return
    print_table(result["rates"], ["consumer", "detail_type", "version", "invocations", "failed",
                                  "rate", "retries", "final_failures", "p50_ms", "p95_ms"])
    click.echo("\ntop errors:")
    print_table(result["top_errors"], ["consumer", "detail_type", "error_type", "count",
                                       "example_event_id", "first_message"])


def _raw_failures(store: Store, catalog: Catalog | None, since_ms: int | None,
                  until_ms: int | None, consumers: Sequence[str], detail_types: Sequence[str],
                  bucket_ms: int) -> dict[str, Any]:
    """Failures from raw rows, for buckets finer than the rollups' minute."""
    attempts = resolve_consumers(load.load_attempts(store.engine, since_ms, until_ms), catalog)
    if consumers:
        attempts = attempts[attempts["consumer"].isin(consumers)
                            | attempts["function"].isin(consumers)]
    if detail_types:
        attempts = attempts[attempts["detail_type"].isin(detail_types)]
    return {"rates": records(failure_rates(attempts)),
            "final_failures": records(final_failures(attempts).head(100)),
            "top_errors": records(top_errors(attempts)),
            "buckets": records(failure_rates(attempts, bucket_ms))}


@click.command()
@click.argument("query")
@db_option
@catalog_option
@json_option
def lifecycle(query: str, db_url: str | None, catalog_path: str | None, as_json: bool) -> None:
    """Every event of one order (QUERY: order id, event id, or key prefix) with outcomes."""
    store, catalog = _store(db_url), load_catalog_file(catalog_path)
    keys = load.find_correlation_keys(store.engine, query)
    if len(keys) != 1:
        if as_json:
            echo_json({"query": query, "matches": keys, "lifecycle": None})
        else:
            click.echo(f"no order matches {query!r}" if not keys else
                       f"{len(keys)} keys start with {query!r}: " + ", ".join(keys))
        if not keys:
            raise SystemExit(1)
        return
    events, attempts = load.load_lifecycle(store.engine, keys[0])
    life = order_lifecycle(keys[0], events, resolve_consumers(attempts, catalog), catalog,
                           _bus_subscriptions(store, catalog))
    if as_json:
        echo_json({"query": query, "matches": keys, "lifecycle": life})
        return
    click.echo(f"order {_cell(keys[0])}: {len(life['events'])} event(s)")
    for step in life["events"]:
        click.echo(f"{_iso(step['time_ms'])}  {_cell(step['detail_type'])} "
                   f"v{_cell(step['version'])}  {_cell(step['id'])}")
        for consumer in step["consumers"]:
            click.echo(f"    {_cell(consumer['consumer']):<30} {consumer['outcome']:<16} "
                       f"{len(consumer['attempts'])} attempt(s)")
    for gap in life["gaps"]:
        click.echo(f"gap: {gap['kind']} " + " ".join(
            f"{k}={_cell(v)}" for k, v in gap.items() if k != "kind"))


@click.command()
@db_option
@catalog_option
@json_option
def undocumented(db_url: str | None, catalog_path: str | None, as_json: bool) -> None:
    """Events seen on the bus that the catalog does not document (needs --catalog)."""
    catalog = load_catalog_file(catalog_path)
    if catalog is None:
        if as_json:
            echo_json({"skipped": "no catalog given (--catalog PATH)", "undocumented": []})
        else:
            click.echo("skipped: undocumented events need a catalog (--catalog PATH)")
        return
    store = _store(db_url)
    found = undocumented_events(load.load_type_summary_rollup(store.engine), catalog,
                                summaries.handled_kinds(store.engine, catalog),
                                load.load_samples(store.engine, per_type=1))
    if as_json:
        echo_json({"skipped": None, "undocumented": found})
        return
    print_table([{**f, "first_seen": _iso(f["first_ms"]), "last_seen": _iso(f["last_ms"]),
                  "consumers": ",".join(f["consumers"])} for f in found],
                ["source", "detail_type", "version", "reason", "count", "first_seen",
                 "last_seen", "consumers"])


@click.command()
@db_option
@catalog_option
@json_option
def subscriptions(db_url: str | None, catalog_path: str | None, as_json: bool) -> None:
    """Missing subscriptions to cancellations: from the catalog and from the data."""
    store, catalog = _store(db_url), load_catalog_file(catalog_path)
    found = read.missing_subscriptions(store.engine, catalog)
    note = None if catalog else "no catalog given: only evidence from data"
    if as_json:
        echo_json({"note": note, "missing": found})
        return
    if note:
        click.echo(note)
    print_table([{**m, "orders": (m["observed"] or {}).get("orders", 0),
                  "examples": ",".join((m["observed"] or {}).get("examples", []))}
                 for m in found],
                ["consumer", "detail_type", "lifecycle", "evidence", "orders", "examples"])


@click.command()
@db_option
@catalog_option
@click.option("--resends/--no-resends", default=False,
              help="Also look for producer re-sends (reads every payload).")
@json_option
def duplicates(db_url: str | None, catalog_path: str | None, resends: bool,
               as_json: bool) -> None:
    """Events delivered or processed more than once per consumer; producer re-sends."""
    store, catalog = _store(db_url), load_catalog_file(catalog_path)
    load.refresh_rollups(store.engine)
    found = summaries.duplicates(store.engine, catalog)
    result = {"consumers": found, "producer_resends":
              producer_resends(load.load_events(store.engine, with_detail=True))
              if resends else None}
    if as_json:
        echo_json(result)
        return
    print_table(found, ["consumer", "events", "delivered_more_than_once", "processed_twice",
                        "examples"])
    if resends:
        click.echo("\nproducer re-sends:")
        print_table(result["producer_resends"] or [], ["source", "detail_type",
                                                        "correlation_key", "event_ids"])


@click.command()
@db_option
@catalog_option
@click.option("--thresholds", "thresholds_path", metavar="PATH", default=None,
              help="YAML thresholds file (see docs); defaults apply without it.")
@click.option("--notify", is_flag=True, help="Send new findings to --sns-topic / --webhook.")
@click.option("--sns-topic", metavar="ARN", default=None, envvar="EVENTSCOPE_SNS_TOPIC",
              help="SNS topic for --notify (also $EVENTSCOPE_SNS_TOPIC).")
@click.option("--webhook", metavar="URL", default=None, envvar="EVENTSCOPE_WEBHOOK",
              help="Slack-compatible webhook for --notify (also $EVENTSCOPE_WEBHOOK).")
@click.option("--notify-min", type=click.Choice(["info", "warning", "error"]),
              default="warning", help="Lowest severity to notify (default warning).")
@aws_options
@json_option
def check(db_url: str | None, catalog_path: str | None, thresholds_path: str | None,
          notify: bool, sns_topic: str | None, webhook: str | None, notify_min: str,
          profile: str | None, region: str | None, endpoint_url: str | None,
          as_json: bool) -> None:
    """Run every finding against thresholds; exit 2 when any is at or above `fail_on`."""
    thresholds = read_thresholds(thresholds_path)
    store, catalog = _store(db_url), load_catalog_file(catalog_path)
    inputs = replace(
        summaries.check_summaries(store.engine, catalog, _bus_subscriptions(store, catalog)),
        contract_results=load.load_contract_results(store))
    found, skipped = run_check_summaries(inputs, catalog, thresholds, date.today())
    aws = aws_settings(profile, region or _topic_region(sns_topic), endpoint_url)
    notified = (_notify(store, found, catalog, sns_topic, webhook, notify_min, aws)
                if notify else None)
    if as_json:
        echo_json({"findings": [f.as_dict() for f in found], "skipped": skipped,
                   "notified": notified})
    else:
        print_table([f.as_dict() for f in found], ["severity", "kind", "summary"])
        for item in skipped:
            click.echo(f"skipped {item['kind']}: {item['reason']}")
        if notified is not None:
            click.echo(f"notified {notified['sent']} new finding(s), "
                       f"{notified['already_sent']} already sent")
    if notified and notified["errors"]:
        for line in notified["errors"]:
            click.echo(f"error: {line}", err=True)
    if any(at_or_above(f.severity, thresholds.fail_on) for f in found):
        raise SystemExit(2)
    if notified and notified["errors"]:
        raise SystemExit(1)


def _bus_subscriptions(store: Store, catalog: Catalog | None = None) -> pd.DataFrame | None:
    """The latest bus-rules snapshot (`read.bus_subscriptions`; None when never collected)."""
    return read.bus_subscriptions(store.engine, catalog)


def _topic_region(sns_topic: str | None) -> str | None:
    """The region named in an SNS topic ARN (arn:aws:sns:REGION:account:name)."""
    return sns_topic.split(":")[3] if sns_topic and sns_topic.count(":") >= 5 else None


def _notify(store: Store, found: list[Finding], catalog: Catalog | None, sns_topic: str | None,
            webhook: str | None, min_severity: str, aws: Any) -> dict[str, Any]:
    from eventscope import alerts  # boto3 is imported only when notifying
    if not sns_topic and not webhook:
        raise EventscopeError("--notify needs --sns-topic ARN and/or --webhook URL")
    channels = []
    if sns_topic:
        sns, = aws_clients(aws, "sns")
        channels.append(alerts.sns_channel(sns, sns_topic))
    if webhook:
        channels.append(alerts.webhook_channel(webhook))
    result = alerts.notify(found, store.notified_fingerprints(), channels, catalog, min_severity)
    current = [f.fingerprint for f in found if at_or_above(f.severity, min_severity)]
    store.record_notifications(alerts.notification_rows(result.sent), current)
    return {"sent": len(result.sent), "already_sent": result.already_sent,
            "errors": result.failed}


