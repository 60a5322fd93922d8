"""Exponential back-off for collector loops: how long to wait after the n-th failure in a row.

Owns one small state machine (`Backoff`): each failure doubles the pause from `first` up to
`cap`, a success resets it. The tap uses it to stop receiving while the store refuses writes
(messages stay in the queue instead of burning their receive count towards the dead-letter
queue), and `collect all` to restart a failing loop without spinning.
"""

from __future__ import annotations

from dataclasses import dataclass

# The longest pause: the tap queue's visibility timeout (`tap.VISIBILITY_TIMEOUT_SECONDS`).
# A collector paused this long receives a message at most 720 times a day, under the queue's
# redrive limit (`tap.MAX_RECEIVE_COUNT`), so a day's store outage sends nothing to the DLQ.
MAX_PAUSE_SECONDS = 120.0


@dataclass
class Backoff:
    """The pause after each failure in a row: first, 2×first, 4×first … up to cap."""

    first: float = 1.0
    cap: float = MAX_PAUSE_SECONDS
    failures: int = 0

    def next_pause(self) -> float:
        """Record one more failure and return how long to wait before the next attempt."""
        pause = float(min(self.cap, self.first * 2 ** min(self.failures, 32)))
        self.failures += 1
        return pause

    def reset(self) -> None:
        """A success: the next failure starts again from `first`."""
        self.failures = 0
