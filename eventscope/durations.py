"""The one grammar for durations and points in time on the command line.

A duration is a whole number and a unit: `90s`, `15m`, `2h`, `1d`, `1w` (used by `--overlap`,
`--bucket`, `--heartbeat` ...). A point in time (`--since`, `--until`) is either a duration,
meaning that long ago, or an ISO 8601 date or date-time (UTC unless it names an offset).
Pure: the caller passes "now". The Click parameter types over these live in
`eventscope.cli.options`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_RELATIVE = re.compile(r"^\s*(\d{1,12})\s*([smhdw])\s*$")
_EXAMPLES = "15m, 2h, 1d or 1w"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def is_duration(text: str) -> bool:
    """True when TEXT is written as a duration (`15m`), whatever its size."""
    return _RELATIVE.match(text) is not None


def duration_ms(text: str) -> int:
    """Milliseconds in a duration such as `15m`, or ValueError."""
    match = _RELATIVE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like {_EXAMPLES}")
    return int(match.group(1)) * UNIT_MS[match.group(2)]


def since_ms(text: str, now_ms: int) -> int:
    """Epoch milliseconds for a point in time: now minus a duration, or an ISO 8601 time
    (UTC when it names no offset). ValueError for anything else."""
    if _RELATIVE.match(text):
        return now_ms - duration_ms(text)
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration like {_EXAMPLES} nor an ISO 8601 "
                         "time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return (parsed - _EPOCH) // timedelta(milliseconds=1)  # exact, no float rounding
    except OverflowError:
        raise ValueError(f"{text!r} is out of range") from None
