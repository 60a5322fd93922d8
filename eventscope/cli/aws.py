"""Options and helpers shared by every command that talks to AWS.

`--profile`, `--region` and `--endpoint-url` on each such command; clients built by the one
factory in `eventscope.collectors.clients` (standard retries, timeouts); AWS errors turned into
one line without credentials or tracebacks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from eventscope.errors import EventscopeError

F = TypeVar("F", bound=Callable[..., Any])


def aws_options(function: F) -> F:
    """--profile, --region, --endpoint-url (all optional: boto3's default chain otherwise)."""
    for option in reversed([
        click.option("--profile", default=None, help="AWS profile (default: boto3's chain)."),
        click.option("--region", default=None, help="AWS region (default: boto3's chain)."),
        click.option("--endpoint-url", default=None, metavar="URL",
                     help="Talk to this endpoint instead of AWS (e.g. a local emulator)."),
    ]):
        function = option(function)
    return function


def aws_settings(profile: str | None, region: str | None, endpoint_url: str | None) -> Any:
    """The `eventscope.collectors.clients.AwsSettings` for the AWS options' values."""
    from eventscope.collectors.clients import AwsSettings

    return AwsSettings(profile=profile, region=region, endpoint_url=endpoint_url)


def aws_clients(settings: Any, *services: str) -> list[Any]:
    """One boto3 client per service, from the shared factory (which checks the aws extra)."""
    from eventscope.collectors.clients import make_client

    return [make_client(service, settings) for service in services]


@contextmanager
def aws_errors() -> Iterator[None]:
    """AWS errors that reach the CLI become one line, without credentials or tracebacks."""
    import botocore.exceptions

    from eventscope.collectors.clients import aws_error_text

    try:
        yield
    except botocore.exceptions.ClientError as exc:
        raise EventscopeError(f"AWS refused the request: {aws_error_text(exc)}") from None
    except botocore.exceptions.NoCredentialsError:
        raise EventscopeError(
            "no AWS credentials found (set a profile or the environment)") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise EventscopeError(f"cannot reach AWS: {exc}") from None
