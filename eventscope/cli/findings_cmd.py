"""The findings commands: graph, failures, lifecycle, undocumented, subscriptions, duplicates,
latency, check. Whole-store views read the rollups through `eventscope.findings.summaries`; the
lifecycle, latency and other drill-downs read raw rows through `eventscope.findings.load`. Each
prints a table or, with `--json`, one stable JSON document (shapes in docs/findings.md); table
commands also print their rows with `--nl` or `--csv`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

import click

from eventscope.cli.aws import aws_clients, aws_options, aws_settings
from eventscope.cli.options import (DURATION, TIME, catalog_option, db_option, echo_json,
                                     emit_rows, json_option, output_options, print_table)
from eventscope.cli.options import cell as _cell
from eventscope.errors import EventscopeError
from eventscope.findings import read
from eventscope.store import Store, open_store

if TYPE_CHECKING:  # pandas, networkx and the analyses are imported by the commands using
    # them, so `lifecycle` and `--help` start without them
    import pandas as pd

    from eventscope.catalog.model import Catalog
    from eventscope.findings.check import Finding

load_catalog_file = read.load_catalog_file  # the read model's, shared with the dashboard
FINAL_FAILURES_SHOWN = 100  # `failures --json`: the newest final failures (last attempt)


def _store(db_url: str | None) -> Store:
    return open_store(db_url, must_exist=True)


def _iso(ms: Any) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc)\
        .isoformat(timespec="seconds")


@click.command()
@db_option
@catalog_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "dot", "mermaid"]),
              default="table", help="Output format (default table; --json, --nl, --csv too).")
@output_options
def graph(db_url: str | None, catalog_path: str | None, fmt: str, output: str) -> None:
    """Producers -> event types -> consumers, each edge declared / subscribed / observed."""
    from eventscope.findings import summaries
    from eventscope.findings.graph import graph_json, to_dot, to_mermaid
    store, catalog = _store(db_url), load_catalog_file(catalog_path)
    built = summaries.build_graph(store.engine, catalog,
                                  rules=read.bus_rules(store.engine, catalog))
    fmt = fmt if output == "table" else output
    if fmt == "json":
        echo_json(graph_json(built))
    elif fmt in ("dot", "mermaid"):
        click.echo(to_dot(built) if fmt == "dot" else to_mermaid(built), nl=False)
    else:
        rows = sorted(({"from": built.nodes[a]["name"], "to": built.nodes[b]["name"], **d,
                        "known_from": "+".join(d["known_from"]),
                        "rules": ", ".join(d["rules"]),
                        "last_seen": _iso(d["last_seen_ms"])}
                       for a, b, d in built.edges(data=True)),
                      key=lambda r: (r["from"], r["to"]))
        columns = ["from", "to", "status", "known_from", "rules", "count", "failed",
                   "last_seen"]
        if fmt == "table":
            print_table(rows, columns)
        else:
            emit_rows(fmt, rows, columns)


@click.command()
@db_option
@catalog_option
@click.option("--since", "since_ms", type=TIME, default=None,
              help="Start: an age (15m, 2h, 1d, 1w) or an ISO time.")
@click.option("--until", "until_ms", type=TIME, default=None,
              help="End (exclusive): an age or an ISO time.")
@click.option("--consumer", "consumers", multiple=True, help="Only this consumer (repeatable).")
@click.option("--type", "detail_types", multiple=True, help="Only this detail-type (repeatable).")
@click.option("--bucket", "bucket_ms", type=DURATION, default=None,
              help="Also split into time buckets (5m, 1h, 1d).")
@output_options
def failures(db_url: str | None, catalog_path: str | None, since_ms: int | None,
             until_ms: int | None, consumers: tuple[str, ...], detail_types: tuple[str, ...],
             bucket_ms: int | None, output: str) -> None:
    """Failure rates per consumer x event type x version, final failures, top errors.

    --nl and --csv print the rates (with --bucket: the bucketed rates)."""
    from eventscope.findings import summaries
    from eventscope.findings.frames import records
    if bucket_ms == 0:
        raise click.BadParameter("must be longer than 0", param_hint="--bucket")
    store, catalog = _store(db_url), load_catalog_file(catalog_path)
    if bucket_ms and bucket_ms % 60_000:
        result = _raw_failures(store, catalog, since_ms, until_ms, consumers, detail_types,
                               bucket_ms)
    else:
        selection: dict[str, Any] = {"catalog": catalog, "since_ms": since_ms,
                                     "until_ms": until_ms, "consumers": consumers,
                                     "detail_types": detail_types}
        result = {"rates": records(summaries.failure_rates(store.engine, **selection)),
                  "final_failures": records(summaries.final_failures(
                      store.engine, latest=FINAL_FAILURES_SHOWN, **selection)),
                  "top_errors": records(summaries.top_errors(store.engine, **selection))}
        if bucket_ms:
            result["buckets"] = records(summaries.failure_rates(
                store.engine, bucket_ms=bucket_ms, **selection))
    columns = ["consumer", "detail_type", "version", "invocations", "failed", "rate",
               "retries", "final_failures", "p50_ms", "p95_ms"]
    result["retention"] = read.retention_notes(
        store.engine, since_ms, read.RAW if bucket_ms and bucket_ms % 60_000
        else read.rollup_needs(since_ms, bucket_ms))
    if output == "json":
        echo_json(result)
        return
    _retention_notes(result["retention"], output)
    if output != "table":
        emit_rows(output, result["buckets"] if bucket_ms else result["rates"],
                  (["bucket_ms"] if bucket_ms else []) + columns)
        return
    print_table(result["rates"], columns)
    click.echo("\ntop errors:")
    print_table(result["top_errors"], ["consumer", "detail_type", "error_type", "count",
                                       "example_event_id", "first_message"])


def _raw_failures(store: Store, catalog: Catalog | None, since_ms: int | None,
                  until_ms: int | None, consumers: Sequence[str], detail_types: Sequence[str],
                  bucket_ms: int) -> dict[str, Any]:
    """Failures from raw rows, for buckets finer than the rollups' minute."""
    from eventscope.findings import load
    from eventscope.findings.failures import failure_rates, final_failures, top_errors
    from eventscope.findings.frames import records, resolve_consumers
    attempts = resolve_consumers(load.load_attempts(store.engine, since_ms, until_ms), catalog)
    if consumers:
        attempts = attempts[attempts["consumer"].isin(consumers)
                            | attempts["function"].isin(consumers)]
    if detail_types:
        attempts = attempts[attempts["detail_type"].isin(detail_types)]
    return {"rates": records(failure_rates(attempts)),
            "final_failures": records(final_failures(attempts).head(FINAL_FAILURES_SHOWN)),
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
    query = read.stored_form(store.engine, query)  # never echo what the store would redact
    keys = read.find_orders(store.engine, query)
    if len(keys) != 1:
        if as_json:
            echo_json({"query": query, "matches": keys, "lifecycle": None})
        else:
            click.echo(f"no order matches {query!r}" if not keys else
                       f"{len(keys)} keys start with {query!r}: " + ", ".join(keys))
        if not keys:
            raise SystemExit(1)
        return
    life = read.lifecycle(store.engine, keys[0], catalog)
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
    click.echo(f"expected steps: {_cell(life['gaps_basis'])}")
    for gap in life["gaps"]:
        click.echo(f"gap: {gap['kind']} " + " ".join(
            f"{k}={_cell(v)}" for k, v in gap.items() if k != "kind"))


@click.command()
@db_option
@catalog_option
@output_options
def undocumented(db_url: str | None, catalog_path: str | None, output: str) -> None:
    """Events seen on the bus that the catalog does not document (needs --catalog)."""
    from eventscope.findings import load, summaries
    from eventscope.findings.undocumented import undocumented_events
    store, catalog = _store(db_url), load_catalog_file(catalog_path)
    columns = ["source", "detail_type", "version", "reason", "count", "first_seen",
               "last_seen", "consumers"]
    if catalog is None:
        if output == "json":
            echo_json({"skipped": "no catalog given (--catalog PATH)", "undocumented": []})
        elif output == "table":
            click.echo("skipped: undocumented events need a catalog (--catalog PATH)")
        else:
            click.echo("skipped: undocumented events need a catalog (--catalog PATH)",
                       err=True)
            emit_rows(output, [], columns)
        return
    found = undocumented_events(load.load_type_summary_rollup(store.engine), catalog,
                                summaries.handled_kinds(store.engine, catalog),
                                load.load_samples(store.engine, per_type=1))
    notes = read.retention_notes(store.engine, None, ("payloads",) + read.rollup_needs(None))
    if output == "json":
        echo_json({"skipped": None, "undocumented": found, "retention": notes})
        return
    _retention_notes(notes, output)
    if output != "table":
        emit_rows(output, found, columns[:5] + ["first_ms", "last_ms", "consumers"])
        return
    print_table([{**f, "first_seen": _iso(f["first_ms"]), "last_seen": _iso(f["last_ms"]),
                  "consumers": ",".join(f["consumers"])} for f in found], columns)


@click.command()
@db_option
@catalog_option
@click.option("--orders", "per_order", is_flag=True,
              help="List every affected order (one row per consumer, type and order).")
@output_options
def subscriptions(db_url: str | None, catalog_path: str | None, per_order: bool,
                  output: str) -> None:
    """Missing subscriptions to cancellations: from the catalog and from the data.

    The table shows each finding's count of affected orders and the first few; --orders,
    --json (every order under observed.affected) list them all."""
    store, catalog = _store(db_url), load_catalog_file(catalog_path)
    found = read.missing_subscriptions(store.engine, catalog)
    note = None if catalog else "no catalog given: only evidence from data"
    columns = ["consumer", "detail_type", "lifecycle", "evidence", "orders", "examples"]
    notes = read.retention_notes(store.engine, None, read.RAW)
    if output == "json":
        echo_json({"note": note, "missing": found, "retention": notes})
        return
    if note:
        click.echo(note, err=output != "table")
    _retention_notes(notes, output)
    if per_order:
        rows = read.affected_orders(found)
        order_columns = ["consumer", "detail_type", "order", "cancelled", "event_id"]
        shown = [{**r, "cancelled": _iso(r["time_ms"])} for r in rows]
        if output == "table":
            print_table(shown, order_columns)
        else:
            emit_rows(output, shown, order_columns)
        return
    if output != "table":
        emit_rows(output, found, columns[:4])
        return
    print_table([{**m, "orders": (m["observed"] or {}).get("orders", 0),
                  "examples": ",".join((m["observed"] or {}).get("examples", []))}
                 for m in found], columns)
    for m in found:
        orders = (m["observed"] or {}).get("orders", 0)
        if orders > len((m["observed"] or {}).get("examples", [])):
            click.echo(f"{_cell(m['consumer'])} / {_cell(m['detail_type'])}: {orders:,} "
                       "affected orders, the first shown; every one: eventscope subscriptions "
                       "--orders (or --json)")


@click.command()
@db_option
@catalog_option
@click.option("--resends/--no-resends", default=False,
              help="Also look for producer re-sends (reads every payload).")
@output_options
def duplicates(db_url: str | None, catalog_path: str | None, resends: bool,
               output: str) -> None:
    """Events delivered or processed more than once per consumer; producer re-sends.

    --nl and --csv print the per-consumer rows."""
    from eventscope.findings import load, summaries
    from eventscope.findings.duplicates import producer_resends
    store, catalog = _store(db_url), load_catalog_file(catalog_path)
    found = summaries.duplicates(store.engine, catalog)
    notes = read.retention_notes(store.engine, None, read.RAW + read.rollup_needs(None))
    resent = (producer_resends(load.load_events(store.engine, with_detail=True))
              if resends else None)
    result = {"consumers": found, "producer_resends": resent, "retention": notes}
    columns = ["consumer", "events", "delivered_more_than_once", "processed_twice", "examples"]
    if output == "json":
        echo_json(result)
        return
    _retention_notes(notes, output)
    if output != "table":
        emit_rows(output, found, columns)
        return
    print_table(found, columns)
    if resends:
        click.echo("\nproducer re-sends:")
        print_table(resent or [], ["source", "detail_type",
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
@output_options
def check(db_url: str | None, catalog_path: str | None, thresholds_path: str | None,
          notify: bool, sns_topic: str | None, webhook: str | None, notify_min: str,
          profile: str | None, region: str | None, endpoint_url: str | None,
          output: str) -> None:
    """Run every finding against thresholds; exit 1 when any is at or above `fail_on`.

    --nl and --csv print the findings (one per row); skipped kinds go to stderr."""
    from eventscope.findings import load
    from eventscope.findings.check import at_or_above, read_thresholds
    from eventscope.findings.triage import store_check
    thresholds = read_thresholds(thresholds_path)
    store, catalog = _store(db_url), load_catalog_file(catalog_path)
    found, skipped = store_check(  # the dashboard's overview runs the same over its window
        store.engine, catalog, _bus_subscriptions(store, catalog),
        load.load_contract_results(store), _latency(store, catalog, None, None), thresholds,
        date.today())
    aws = aws_settings(profile, region or _topic_region(sns_topic), endpoint_url)
    notified = (_notify(store, found, catalog, sns_topic, webhook, notify_min, aws)
                if notify else None)
    notes = read.retention_notes(store.engine, None, read.RAW + read.rollup_needs(None))
    if output == "json":
        echo_json({"findings": [f.as_dict() for f in found], "skipped": skipped,
                   "notified": notified, "retention": notes})
    else:
        _retention_notes(notes, output)
        rows = [f.as_dict() for f in found]
        if output == "table":
            print_table(rows, ["severity", "kind", "summary"])
        else:
            emit_rows(output, rows, ["severity", "kind", "summary", "subject", "evidence"])
        for item in skipped:
            click.echo(f"skipped {item['kind']}: {item['reason']}", err=output != "table")
        if notified is not None:
            click.echo(f"notified {notified['sent']} new finding(s), "
                       f"{notified['already_sent']} already sent", err=output != "table")
    if notified and notified["errors"]:
        for line in notified["errors"]:
            click.echo(f"error: {line}", err=True)
    if any(at_or_above(f.severity, thresholds.fail_on) for f in found):
        raise SystemExit(1)
    if notified and notified["errors"]:
        raise SystemExit(1)


@click.command()
@db_option
@catalog_option
@click.option("--since", "since_ms", type=TIME, default=None,
              help="Only events first handled from then: an age (15m, 2h, 1d, 1w) or ISO time.")
@click.option("--until", "until_ms", type=TIME, default=None,
              help="Only events first handled before then: an age or an ISO time.")
@output_options
def latency(db_url: str | None, catalog_path: str | None, since_ms: int | None,
            until_ms: int | None, output: str) -> None:
    """Event -> consumer latency per (detail-type, consumer): p50/p95/max to the first
    invocation and to the first success."""
    from eventscope.findings.frames import records
    from eventscope.findings.latency import APPROXIMATE
    from eventscope.findings.latency import PAIR_COLUMNS as LATENCY_PAIR_COLUMNS
    store, catalog = _store(db_url), load_catalog_file(catalog_path)
    rows = records(_latency(store, catalog, since_ms, until_ms))
    notes = read.retention_notes(store.engine, since_ms, read.RAW)
    if output == "json":
        echo_json({"latency": rows, "retention": notes})
        return
    _retention_notes(notes, output)
    if output != "table":
        emit_rows(output, rows, list(LATENCY_PAIR_COLUMNS))
    else:
        print_table(rows, ["detail_type", "consumer", "events", "skewed", "first_p50_ms",
                           "first_p95_ms", "first_max_ms", "success_p50_ms", "success_p95_ms"])
        if rows:
            click.echo(f"\nnote: {APPROXIMATE}")


def _retention_notes(notes: list[str], output: str) -> None:
    """A finding's retention notes: before a table, on stderr beside --nl/--csv rows."""
    for note in notes:
        click.echo(f"note: {note}", err=output != "table")


def _latency(store: Store, catalog: Catalog | None, since_ms: int | None,
             until_ms: int | None) -> pd.DataFrame:
    """Per (detail-type, consumer) latency of the events first handled in [since, until),
    from the latency rollup (`read.latency`)."""
    return read.latency(store.engine, catalog, since_ms, until_ms)


def _bus_subscriptions(store: Store, catalog: Catalog | None = None) -> pd.DataFrame | None:
    """The latest bus-rules snapshot (`read.bus_subscriptions`; None when never collected)."""
    return read.bus_subscriptions(store.engine, catalog)


def _topic_region(sns_topic: str | None) -> str | None:
    """The region named in an SNS topic ARN (arn:aws:sns:REGION:account:name)."""
    return sns_topic.split(":")[3] if sns_topic and sns_topic.count(":") >= 5 else None


def _notify(store: Store, found: list[Finding], catalog: Catalog | None, sns_topic: str | None,
            webhook: str | None, min_severity: str, aws: Any) -> dict[str, Any]:
    from eventscope import alerts  # boto3 is imported only when notifying
    from eventscope.findings.check import at_or_above
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


