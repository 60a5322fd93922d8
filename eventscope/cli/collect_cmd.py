"""`eventscope tap install|remove`, `eventscope collect tap|logs|rules|all`, `eventscope replay`.

A thin Click layer: build AWS clients with `eventscope.collectors.clients.make_client` from the
shared AWS options, open the store, call the collector, print its counters (or `--json`).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from eventscope.cli.aws import F, aws_clients, aws_errors, aws_options, aws_settings
from eventscope.cli.options import DURATION, TIME, db_option, echo_json, json_option
from eventscope.store import open_store

def _sample_rate(_ctx: click.Context, _param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not 0 <= value <= 1:
        raise click.BadParameter(f"{value} is not between 0 and 1")
    return value


@click.group()
def tap() -> None:
    """Install or remove the bus tap (an SQS queue fed by a match-all rule)."""


@tap.command("install")
@click.option("--bus", required=True, help="Event bus name.")
@click.option("--sample", "sample_rate", type=float, default=1.0, callback=_sample_rate,
              show_default=True, help="Fraction of events the collector keeps (by event id).")
@aws_options
@json_option
def tap_install(bus: str, sample_rate: float, profile: str | None, region: str | None,
                endpoint_url: str | None, as_json: bool) -> None:
    """Create (idempotently) the tap queue, its DLQ, queue policy, rule and target."""
    from eventscope.collectors.tap import install_tap

    sqs, events = aws_clients(aws_settings(profile, region, endpoint_url), "sqs", "events")
    with aws_errors():
        report = install_tap(sqs, events, bus, sample_rate)
    _print_report(report.as_dict(), as_json)


@tap.command("remove")
@click.option("--bus", required=True, help="Event bus name.")
@aws_options
@json_option
def tap_remove(bus: str, profile: str | None, region: str | None, endpoint_url: str | None,
               as_json: bool) -> None:
    """Delete the tap's rule and queues (only resources tagged by `tap install`)."""
    from eventscope.collectors.tap import remove_tap

    sqs, events = aws_clients(aws_settings(profile, region, endpoint_url), "sqs", "events")
    with aws_errors():
        report = remove_tap(sqs, events, bus)
    _print_report(report.as_dict(), as_json)


@tap.command("redrive")
@click.option("--bus", default=None, help="Event bus whose tap DLQ to redrive.")
@click.option("--queue-url", default=None, help="Or: a queue whose DLQ (RedrivePolicy) to redrive.")
@click.option("--limit", type=click.IntRange(1, None), default=None,
              help="At most this many messages (default: all).")
@aws_options
@json_option
def tap_redrive(bus: str | None, queue_url: str | None, limit: int | None,
                profile: str | None, region: str | None, endpoint_url: str | None,
                as_json: bool) -> None:
    """Move the tap's dead-letter messages back to its queue (exit 1 if any could not be)."""
    from eventscope.collectors.dlq import dead_letter_queue, redrive
    from eventscope.collectors.tap import TapError, find_tap_queue

    if bool(bus) == bool(queue_url):
        raise click.UsageError("give exactly one of --bus or --queue-url")
    sqs, = aws_clients(aws_settings(profile, region, endpoint_url), "sqs")
    with aws_errors():
        if bus:
            queue_url, _ = find_tap_queue(sqs, bus)
        assert queue_url is not None
        dlq_url = dead_letter_queue(sqs, queue_url)
        if dlq_url is None:
            raise TapError(f"queue {queue_url} has no dead-letter queue (no RedrivePolicy)")
        report = redrive(sqs, dlq_url, queue_url, limit)
    if as_json:
        echo_json(report.as_dict())
    else:
        click.echo(f"moved {report.moved} message(s) from {dlq_url} to {queue_url}"
                   + (f"; {report.failed} refused, left in the DLQ" if report.failed else ""))
    if report.failed:
        sys.exit(1)


def _print_report(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(report)
        return
    click.echo(f"bus {report['bus']}"
               + (f" -> {report['queue_url']}" if report["queue_url"] else ""))
    for key in ("created", "updated", "removed", "absent", "not_ours"):
        for item in report[key]:
            click.echo(f"  {key.replace('_', ' ')}: {item}")


@click.group()
def collect() -> None:
    """Collect from AWS into the store: the bus tap, consumer logs, bus rules, or all."""


def tap_options(function: F) -> F:
    """--sample, --batch-size, --wait for the tap collector."""
    for option in reversed([
        click.option("--sample", "sample_rate", type=float, default=None, callback=_sample_rate,
                     help="Fraction kept (default: the rate recorded by `tap install`, else 1)."),
        click.option("--batch-size", type=click.IntRange(1, 10_000), default=100,
                     show_default=True, help="Tap messages per store transaction."),
        click.option("--wait", "wait_seconds", type=click.IntRange(0, 20), default=20,
                     show_default=True, help="SQS long-poll wait in seconds."),
    ]):
        function = option(function)
    return function


@collect.command("tap")
@click.option("--bus", default=None, help="Event bus whose tap queue to read.")
@click.option("--queue-url", default=None, help="Read this queue instead of the bus's tap queue.")
@tap_options
@click.option("--until-empty", is_flag=True, help="Stop when a receive comes back empty.")
@db_option
@aws_options
@json_option
def collect_tap(bus: str | None, queue_url: str | None, sample_rate: float | None,
                batch_size: int, wait_seconds: int, until_empty: bool, db_url: str | None,
                profile: str | None, region: str | None, endpoint_url: str | None,
                as_json: bool) -> None:
    """Long-poll the tap queue and store a sample of the bus's events."""
    from eventscope.collectors.tap_collector import TapCounters, run_tap

    sqs, = aws_clients(aws_settings(profile, region, endpoint_url), "sqs")
    store = open_store(db_url)
    with aws_errors():
        settings = _tap_settings(sqs, bus, queue_url, sample_rate, batch_size, wait_seconds)
        counters, stop = TapCounters(), threading.Event()
        with _stop_on_signals(stop):
            run_tap(sqs, store, settings, counters, stop, until_empty=until_empty,
                    event_filter=_redaction(store))
    if as_json:
        echo_json(counters.as_dict())
    else:
        click.echo(" ".join(f"{k}={v}" for k, v in counters.as_dict().items()))


def _tap_settings(sqs: Any, bus: str | None, queue_url: str | None, sample_rate: float | None,
                  batch_size: int, wait_seconds: int) -> Any:
    from eventscope.collectors.dlq import dead_letter_queue
    from eventscope.collectors.tap import find_tap_queue
    from eventscope.collectors.tap_collector import (TapSettings, queue_visibility,
                                                     version_rules_from_env)

    if bool(bus) == bool(queue_url):
        raise click.UsageError("give exactly one of --bus or --queue-url")
    recorded = 1.0
    if bus:
        queue_url, recorded = find_tap_queue(sqs, bus)
    assert queue_url is not None
    return TapSettings(queue_url=queue_url, batch_size=batch_size, wait_seconds=wait_seconds,
                       sample_rate=recorded if sample_rate is None else sample_rate,
                       visibility_seconds=queue_visibility(sqs, queue_url),
                       version_rules=version_rules_from_env(),
                       dlq_url=dead_letter_queue(sqs, queue_url))


def _redaction_settings(store: Any) -> Any:
    from eventscope.collectors.pii import settings_from_env

    return settings_from_env(store)


def _redaction(store: Any) -> Any:
    """The PII redaction hook every tap write goes through (see docs/collectors.md)."""
    from eventscope.collectors.pii import redaction_filter

    return redaction_filter(_redaction_settings(store))


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set `stop`: the running batch finishes and commits, then exit 0."""
    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def logs_options(function: F) -> F:
    """--prefix, --log-group, --since, --overlap for the consumer-logs collector."""
    for option in reversed([
        click.option("--prefix", default="/aws/lambda/", show_default=True,
                     help="Read every log group whose name starts with this."),
        click.option("--log-group", "log_groups", multiple=True,
                     help="Read this log group instead of discovering by prefix (repeatable)."),
        click.option("--since", "since", default="1h", show_default=True, type=TIME,
                     help="Where a log group without a checkpoint starts: 15m, 2h, 1d, 1w "
                          "ago or an ISO time."),
        click.option("--overlap", "overlap_ms", default="10s", show_default=True,
                     type=DURATION,
                     help="Margin re-read behind each checkpoint on top of the lateness the "
                          "group has shown."),
    ]):
        function = option(function)
    return function


@collect.command("logs")
@logs_options
@db_option
@aws_options
@json_option
def collect_logs_cmd(prefix: str, log_groups: tuple[str, ...], since: int, overlap_ms: int,
                     db_url: str | None, profile: str | None, region: str | None,
                     endpoint_url: str | None, as_json: bool) -> None:
    """Read Lambda consumers' CloudWatch Logs into invocations, once, from each checkpoint."""
    from eventscope.collectors.logs_collector import (LogGroupsFailed, LogsCounters, LogsSettings,
                                                      collect_logs)

    logs, = aws_clients(aws_settings(profile, region, endpoint_url), "logs")
    store = open_store(db_url)
    settings = LogsSettings(prefix=prefix, since_ms=since, overlap_ms=overlap_ms,
                            log_groups=log_groups, redaction=_redaction_settings(store))
    counters = LogsCounters()
    failed: LogGroupsFailed | None = None
    with aws_errors():
        try:
            collect_logs(logs, store, settings, counters)
        except LogGroupsFailed as exc:  # the other groups were stored: report, exit 1
            failed = exc
    _print_counters(counters.as_dict(), as_json)
    if failed is not None:
        click.echo(f"error: {failed}", err=True)
        sys.exit(1)


def _print_counters(counters: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(counters)
    else:
        click.echo(" ".join(f"{k}={v}" for k, v in counters.items()))


@collect.command("rules")
@click.option("--bus", required=True, help="Event bus whose rules to snapshot.")
@db_option
@aws_options
@json_option
def collect_rules_cmd(bus: str, db_url: str | None, profile: str | None, region: str | None,
                      endpoint_url: str | None, as_json: bool) -> None:
    """Snapshot the bus's rules and targets (pattern, state, DLQ, retry policy) with history."""
    from eventscope.collectors.rules_collector import snapshot_rules

    events, = aws_clients(aws_settings(profile, region, endpoint_url), "events")
    store = open_store(db_url)
    with aws_errors():
        summary = snapshot_rules(events, store, bus)
    _print_counters(summary.as_dict(), as_json)


@collect.command("all")
@click.option("--bus", required=True, help="Event bus to tap and whose rules to snapshot.")
@logs_options
@click.option("--bus-log-group", default=None,
              help="The bus's own log group (EventBridge bus logging), for delivery outcomes.")
@tap_options
@click.option("--logs-every", "logs_every", default="1m", show_default=True,
              type=DURATION, help="Pause between passes over the log groups.")
@click.option("--rules-every", "rules_every", default="5m", show_default=True,
              type=DURATION, help="Pause between rule snapshots.")
@click.option("--heartbeat", "heartbeat", default="30s", show_default=True,
              type=DURATION, help="Interval of the heartbeat line and status rows.")
@click.option("--prune/--no-prune", "prune", default=True, show_default=True,
              help="Apply the store's retention at start and then daily (see `prune`).")
@db_option
@aws_options
def collect_all(bus: str, prefix: str, log_groups: tuple[str, ...], since: int,
                overlap_ms: int, bus_log_group: str | None, sample_rate: float | None,
                batch_size: int, wait_seconds: int, logs_every: int, rules_every: int,
                heartbeat: int, prune: bool, db_url: str | None, profile: str | None,
                region: str | None, endpoint_url: str | None) -> None:
    """Run the tap, consumer-logs, rules (and bus-logs) collectors until SIGTERM/SIGINT.

    Each source runs in its own loop; a heartbeat line with the counters is printed and
    stored in `collector_status` every --heartbeat; a failing loop is reported `failing` and
    retried with back-off. With --prune (the default) the store's retention is applied at
    start and every 24 h in batches (`eventscope prune`). On SIGTERM or SIGINT every loop
    finishes its batch, commits, and the command exits 0, or 1 when a loop's last step had
    failed.
    """
    from eventscope.collectors.logs_collector import LogsSettings
    from eventscope.collectors.service import (collector_loops, failing_loops, prune_loop,
                                               run_service)

    settings = aws_settings(profile, region, endpoint_url)
    clients = dict(zip(("sqs", "logs", "events"),
                       aws_clients(settings, "sqs", "logs", "events")))
    store = open_store(db_url)
    with aws_errors():
        tap_settings = _tap_settings(clients["sqs"], bus, None, sample_rate, batch_size,
                                     wait_seconds)
    logs_settings = LogsSettings(prefix=prefix, since_ms=since, overlap_ms=overlap_ms,
                                 log_groups=log_groups, redaction=_redaction_settings(store))
    loops = collector_loops(clients, store, bus, tap_settings, logs_settings, _redaction(store),
                            logs_every_s=logs_every / 1000, rules_every_s=rules_every / 1000,
                            bus_log_group=bus_log_group)
    if prune:
        loops.append(prune_loop(store))
    stop = threading.Event()
    with _stop_on_signals(stop):
        run_service(loops, store, stop, heartbeat / 1000, echo=lambda line: click.echo(line))
    failing = failing_loops(loops)
    if failing:
        click.echo(f"collectors failing when stopped: {', '.join(failing)}", err=True)
        sys.exit(1)


@click.command()
@click.option("--bus", required=True, help="Event bus to replay onto (and whose rules to use).")
@click.option("--event-id", "event_ids", multiple=True, help="A stored event id (repeatable).")
@click.option("--type", "detail_type", default=None, help="Only events of this detail-type.")
@click.option("--correlation-key", default=None, help="Only events of this order/entity key.")
@click.option("--since", default=None, type=TIME,
              help="Only events from this time on: 15m, 2h, 1d, 1w ago or an ISO time.")
@click.option("--until", default=None, type=TIME,
              help="Only events before this time: a duration ago or an ISO time.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="At most this many events.")
@click.option("--consumer", default=None, metavar="RULE",
              help="Replay to one consumer (the rule's name) instead of the whole bus.")
@click.option("--request-key", default=None,
              help="Idempotency key (default: derived from bus, consumer and event ids).")
@click.option("--yes", is_flag=True, help="Send. Without it, only show what would be sent.")
@db_option
@aws_options
@json_option
def replay(bus: str, event_ids: tuple[str, ...], detail_type: str | None,
           correlation_key: str | None, since: int | None, until: int | None, limit: int,
           consumer: str | None, request_key: str | None, yes: bool, db_url: str | None,
           profile: str | None, region: str | None, endpoint_url: str | None,
           as_json: bool) -> None:
    """Re-trigger stored events on the bus, or for one consumer (dry run unless --yes).

    Whole bus: put_events of the stored envelopes in batches of 10, each detail marked so
    the tap ignores the echo. One consumer: an archive replay filtered to its rule when the
    bus has an archive, else the stored event sent to the rule's SQS/Lambda targets. Every
    sent replay is audited in `replay_audit`; the same request (same key) is never sent twice.
    """
    from eventscope.collectors.replay import Selection, execute_replay, plan_replay

    settings = aws_settings(profile, region, endpoint_url)
    clients = dict(zip(("events", "sqs", "lambda"),
                       aws_clients(settings, "events", "sqs", "lambda")))
    store = open_store(db_url, must_exist=True)
    selection = Selection(event_ids, detail_type, correlation_key, since, until, limit)
    with aws_errors():
        plan = plan_replay(clients["events"], store, bus, selection, consumer, request_key)
        result = execute_replay(clients, store, plan) if yes else None
    failed = int(result.get("failed") or 0) if result is not None else 0
    if as_json:
        echo_json({"dry_run": not yes, "plan": plan.describe(), "result": result})
    else:
        where = f"consumer {consumer} ({plan.mode})" if consumer else f"bus {bus}"
        what = (f"replayed {len(plan.events)} event(s) to {where}: {result.get('sent', 0)} "
                f"send(s) done, {failed} failed" if result is not None
                else f"would send {len(plan.events)} event(s) to {where}")
        click.echo(f"{what}, request key {plan.request_key}")
        for event in plan.events[:20]:
            click.echo(f"  {event.id}  {event.detail_type}")
        if result is not None:
            click.echo(" ".join(f"{k}={v}" for k, v in result.items()))
        elif not yes:
            click.echo("dry run: nothing sent; add --yes to send")
    if failed:  # a partial replay is a problem found, never a success
        click.echo(f"error: {failed} send(s) failed (replay {plan.request_key} is recorded as "
                   "partial)", err=True)
        raise SystemExit(1)
