"""`eventscope logs subscribe|unsubscribe`: CloudWatch Logs pushed to eventscope's handler.

A thin Click layer over `eventscope.collectors.logs_push`: build the logs and Lambda clients
from the shared AWS options, install or remove the subscription filters, print what changed
(or, with --dry-run, what would). Exit 1 when some groups could not be subscribed (already
holding two filters that are not eventscope's).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from eventscope.cli.aws import aws_clients, aws_errors, aws_options, aws_settings
from eventscope.cli.options import echo_json, json_option
from eventscope.errors import EventscopeError


@click.group()
def logs() -> None:
    """Push Lambda logs to eventscope: subscription filters towards its handler."""


@logs.command("subscribe")
@click.option("--prefix", required=True, help="Subscribe every log group whose name starts "
              "with this (e.g. /aws/lambda/).")
@click.option("--destination-arn", required=True, metavar="ARN",
              help="Where the records go: the Lambda function running "
                   "eventscope.collectors.logs_lambda_handler (or a Firehose/Kinesis ARN).")
@click.option("--filter-pattern", default="", show_default=True,
              help="CloudWatch Logs filter pattern ('' sends every record).")
@click.option("--role-arn", default=None, metavar="ARN",
              help="Role CloudWatch Logs assumes (Firehose and Kinesis destinations only).")
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@aws_options
@json_option
def subscribe_cmd(prefix: str, destination_arn: str, filter_pattern: str, role_arn: str | None,
                  dry_run: bool, profile: str | None, region: str | None,
                  endpoint_url: str | None, as_json: bool) -> None:
    """Put the `eventscope-logs` subscription filter on every group under --prefix."""
    from eventscope.collectors.logs_push import SubscriptionError, subscribe

    logs_client, lambda_client = aws_clients(aws_settings(profile, region, endpoint_url),
                                             "logs", "lambda")
    with aws_errors():
        try:
            report = subscribe(logs_client, lambda_client, prefix, destination_arn,
                               filter_pattern, role_arn, dry_run)
        except SubscriptionError as exc:
            raise EventscopeError(str(exc)) from None
    _print(report.as_dict(), report.changed, as_json)
    if report.full:
        click.echo(f"error: {len(report.full)} log group(s) already hold two subscription "
                   "filters that are not eventscope's: remove one to subscribe them", err=True)
        sys.exit(1)


@logs.command("unsubscribe")
@click.option("--prefix", required=True, help="Remove eventscope's filter from every log "
              "group whose name starts with this.")
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@aws_options
@json_option
def unsubscribe_cmd(prefix: str, dry_run: bool, profile: str | None, region: str | None,
                    endpoint_url: str | None, as_json: bool) -> None:
    """Delete the `eventscope-logs` filters under --prefix and the prefix's Lambda permission."""
    from eventscope.collectors.logs_push import unsubscribe

    logs_client, lambda_client = aws_clients(aws_settings(profile, region, endpoint_url),
                                             "logs", "lambda")
    with aws_errors():
        report = unsubscribe(logs_client, lambda_client, prefix, dry_run)
    _print(report.as_dict(), report.changed, as_json)


def _print(report: dict[str, Any], changed: bool, as_json: bool) -> None:
    if as_json:
        echo_json({**report, "changed": changed})
        return
    would = "would be " if report["dry_run"] else ""
    click.echo(f"prefix {report['prefix']}"
               + (f" -> {report['destination_arn']}" if report["destination_arn"] else ""))
    labels = {"created": "subscribed", "updated": "updated", "unchanged": "unchanged",
              "removed": "unsubscribed", "absent": "not subscribed",
              "full": "full (two filters not eventscope's)"}
    for key, label in labels.items():
        for group in report[key]:
            shown = label if key in ("unchanged", "absent", "full") else would + label
            click.echo(f"  {shown}: {group}")
    if report["permission"]:
        click.echo(f"  lambda permission: {report['permission']}"
                   + (" (dry run)" if report["dry_run"] else ""))
    if not changed:
        click.echo("nothing to change")
