"""eventscope's AWS collectors: everything that talks to AWS through boto3 clients.

Each collector takes its clients and the store as parameters (built by
`eventscope.collectors.clients`), so the same code runs against AWS, a local emulator, or a
wrapped client in a test. The pure pieces they rely on (envelope parsing, sampling, event
patterns, redaction, bus delivery logs) live in `eventscope/` and never import boto3.

`eventscope.collectors.lambda_handler` is the entry point for an SQS event-source mapping on the tap
queue (see `eventscope.collectors.handler`).
"""

from __future__ import annotations

from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Store a batch of tap-queue messages from an SQS event-source mapping."""
    from eventscope.collectors.handler import handle

    return handle(event, context)
