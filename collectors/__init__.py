"""eventscope's AWS collectors: everything that talks to AWS through boto3 clients.

Each collector takes its clients and the store as parameters (built by
`eventscope.collectors.clients`), so the same code runs against AWS, a local emulator, or a
wrapped client in a test. The pure pieces they rely on (envelope parsing, sampling, event
patterns, redaction, bus delivery logs) live in `eventscope/` and never import boto3.

`eventscope.collectors.lambda_handler` is the entry point for an SQS event-source mapping on the tap
queue, and `eventscope.collectors.logs_lambda_handler` the destination of the CloudWatch Logs
subscription filters `eventscope logs subscribe` installs (see `eventscope.collectors.handler`).
"""

from __future__ import annotations

from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Store a batch of tap-queue messages from an SQS event-source mapping."""
    from eventscope.collectors.handler import handle

    return handle(event, context)


def logs_lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Store a CloudWatch Logs subscription payload (`awslogs`); store errors raise (retry)."""
    from eventscope.collectors.handler import handle_logs

    return handle_logs(event, context)
