"""Reading `--since` values: a relative duration (`90s`, `15m`, `1h`, `2d`) or an ISO time.

Pure: the caller passes "now".
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")


def duration_ms(text: str) -> int:
    """Milliseconds in a duration such as `15m`, or ValueError."""
    match = _RELATIVE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 90s, 15m, 1h or 2d")
    return int(match.group(1)) * _UNITS[match.group(2)]


def since_ms(text: str, now_ms: int) -> int:
    """Epoch milliseconds for `--since`: now minus a duration, or an ISO 8601 time (UTC default)."""
    if _RELATIVE.match(text):
        return now_ms - duration_ms(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (1h, 30m) nor an ISO 8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp() * 1000)
