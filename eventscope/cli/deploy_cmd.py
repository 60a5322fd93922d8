"""`eventscope deploy template`: print the CloudFormation stack of the collectors.

A thin Click layer over `eventscope.deploy`, which builds and checks the template; a bad
option is its `DeployError`, one `error:` line and exit 2.
"""

from __future__ import annotations

import click


@click.group()
def deploy() -> None:
    """Deploy the collectors on AWS Lambda with CloudFormation."""


@deploy.command("template")
@click.option("--bus", default="default", show_default=True, help="Event bus to tap.")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True, help="Template format.")
@click.option("--sample-rate", type=float, default=1.0, show_default=True,
              help="Default of the SampleRate parameter: fraction of events stored.")
@click.option("--log-prefix", default="/aws/lambda/", show_default=True,
              help="Log groups CloudWatch Logs may push to the logs function.")
@click.option("--log-group", "log_groups", multiple=True, metavar="NAME",
              help="A log group to subscribe in the stack (repeatable); otherwise use "
                   "`eventscope logs subscribe`.")
@click.option("--payload-days", type=int, default=7, show_default=True,
              help="Default days raw payloads are kept.")
@click.option("--raw-days", type=int, default=30, show_default=True,
              help="Default days events, invocations and deliveries are kept.")
@click.option("--rollup-days", type=int, default=400, show_default=True,
              help="Default days rollups are kept.")
def deploy_template(bus: str, fmt: str, sample_rate: float, log_prefix: str,
                    log_groups: tuple[str, ...], payload_days: int, raw_days: int,
                    rollup_days: int) -> None:
    """Print an AWS CloudFormation template: tap queue + DLQ + rule, the tap and logs
    Lambda functions, their event-source mapping, permission and least-privilege roles."""
    from eventscope.deploy import StackOptions, build_template, render

    options = StackOptions(bus=bus, sample_rate=sample_rate, log_prefix=log_prefix,
                           log_groups=log_groups, payload_days=payload_days,
                           raw_days=raw_days, rollup_days=rollup_days)
    click.echo(render(build_template(options), fmt), nl=False)
