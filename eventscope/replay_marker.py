"""The replay marker: how a replayed event says, inside its detail, that it is an echo.

`eventscope replay` adds `REPLAY_MARKER` to the detail of every event it re-sends; the tap
collector recognises it and does not count the echo as new traffic. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REPLAY_MARKER = "_eventscopeReplay"


def mark(detail: Mapping[str, Any], request_id: str, original_id: str) -> dict[str, Any]:
    """A copy of `detail` carrying the replay marker (request id and the original event id)."""
    return {**detail, REPLAY_MARKER: {"request": request_id, "originalId": original_id}}


def is_echo(envelope: Mapping[str, Any]) -> bool:
    """Whether a decoded envelope is a replay: eventscope's marker, or an archive replay's name."""
    if "replay-name" in envelope:
        return True
    detail = envelope.get("detail")
    # Decoded JSON: a dict, tested first (an ABC's isinstance costs more than the rest).
    return (type(detail) is dict or isinstance(detail, Mapping)) and REPLAY_MARKER in detail
