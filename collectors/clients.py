"""The one boto3 client factory: profile, region, endpoint URL, retries and timeouts.

Every collector receives clients built here. botocore's `standard` retry mode backs off
throttling and 5xx errors with a bounded number of attempts; the read timeout stays above the
SQS long-poll wait so a long poll is never cut short by the client itself. Credentials are
resolved by boto3 and never printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eventscope.errors import EventscopeError
from eventscope.extras import require

if TYPE_CHECKING:  # boto3 comes with the aws extra: imported where a client is built
    import botocore.exceptions
    from botocore.config import Config

LONG_POLL_SECONDS = 20  # SQS's maximum WaitTimeSeconds
MAX_ATTEMPTS = 5  # in total, the first attempt included
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = LONG_POLL_SECONDS + 20


class AwsSetupError(EventscopeError):
    """AWS clients cannot be built: unknown profile, no region, bad endpoint URL."""


@dataclass(frozen=True)
class AwsSettings:
    """Where and as whom to talk to AWS; None means boto3's own default chain."""

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None


def client_config(max_attempts: int = MAX_ATTEMPTS,
                  read_timeout: int = READ_TIMEOUT_SECONDS) -> Config:
    """The botocore config shared by every eventscope client."""
    from botocore.config import Config

    return Config(retries={"mode": "standard", "total_max_attempts": max_attempts},
                  connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=read_timeout,
                  user_agent_extra="eventscope")


def make_client(service: str, settings: AwsSettings = AwsSettings(),
                config: Config | None = None) -> Any:
    """A boto3 client for one service, or `AwsSetupError` saying what is missing."""
    require("aws", "boto3", feature="an AWS client")
    import boto3
    import botocore.exceptions

    try:
        session = boto3.Session(profile_name=settings.profile, region_name=settings.region)
        return session.client(service, endpoint_url=settings.endpoint_url,
                              config=config or client_config())
    except botocore.exceptions.ProfileNotFound:
        raise AwsSetupError(f"AWS profile {settings.profile!r} not found") from None
    except botocore.exceptions.NoRegionError:
        raise AwsSetupError("no AWS region: pass --region or set AWS_REGION") from None
    except ValueError as exc:  # botocore rejects a malformed endpoint URL with ValueError
        raise AwsSetupError(f"invalid --endpoint-url {settings.endpoint_url!r}: {exc}") from None


def aws_error_text(exc: botocore.exceptions.ClientError) -> str:
    """One line for an AWS error: its code and message, never the request's credentials."""
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".strip()
