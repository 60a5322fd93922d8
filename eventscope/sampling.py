"""Deterministic sampling by event id: every collector instance keeps the same events.

Pure: a keyed-free hash of the id mapped to [0, 1) compared with the rate, so the decision
depends on nothing but the id and the rate.

The tap samples bus events by their id; the invocations of a consumer are sampled by the
same hash of the event id they handled, so the join between the two survives: an invocation
is kept exactly when its event is. Invocations without an event id are always kept (nothing
says which event they belong to). A store records the rate it was sampled at
(`Store.sample_rate`): counts of events, and of invocations that carry an event id, stand
for ``1 / rate`` as many (`scaled`); rates (failures per invocation) need no scaling.
"""

from __future__ import annotations

import hashlib

from eventscope.records import Invocation

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


def keep_invocation(invocation: Invocation, rate: float) -> bool:
    """Whether an invocation is in the sample: its event's decision; kept without an event id."""
    return invocation.event_id is None or keep(invocation.event_id, rate)


def sample_invocations(invocations: list[Invocation], rate: float
                       ) -> tuple[list[Invocation], int]:
    """The invocations kept at `rate` and how many were dropped (the input itself at 1)."""
    if rate >= 1:
        return invocations, 0
    kept = [inv for inv in invocations if keep_invocation(inv, rate)]
    return kept, len(invocations) - len(kept)


def scaled(count: int, rate: float) -> float:
    """An estimate of the count before sampling of `count` sampled items."""
    return count / rate if 0 < rate < 1 else float(count)


def check_rate(rate: float) -> float:
    """The rate itself when it is between 0 and 1, else ValueError."""
    if not 0 <= rate <= 1:
        raise ValueError(f"sample rate {rate} is not between 0 and 1")
    return rate
