"""Deterministic sampling by event id: every collector instance keeps the same events.

Pure: a keyed-free hash of the id mapped to [0, 1) compared with the rate, so the decision
depends on nothing but the id and the rate.
"""

from __future__ import annotations

import hashlib

_SCALE = float(1 << 64)


def sample_point(event_id: str) -> float:
    """Where an event id falls in [0, 1), uniformly spread by BLAKE2b."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def keep(event_id: str, rate: float) -> bool:
    """Whether an event is in the sample at `rate` (1 keeps all, 0 keeps none)."""
    if rate >= 1:
        return True
    return rate > 0 and sample_point(event_id) < rate


def check_rate(rate: float) -> float:
    """The rate itself when it is between 0 and 1, else ValueError."""
    if not 0 <= rate <= 1:
        raise ValueError(f"sample rate {rate} is not between 0 and 1")
    return rate
