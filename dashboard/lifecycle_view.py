"""What the Lifecycle and Subscriptions pages show, from the findings' answers: pure, no Streamlit.

Owns the wording of where an order's gaps come from, the missed handlings as a table, and the
paging of the affected orders of a missing subscription (all of them, a page at a time).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from eventscope.dashboard.views import lifecycle_link
from eventscope.findings.lifecycle import missed_handling

PAGE_SIZES = (25, 50, 100, 500)
AFFECTED_COLUMNS = ["order", "cancelled", "event_id", "lifecycle"]


def gaps_basis(life: Mapping[str, Any]) -> str:
    """Where the order's expected steps come from, as a sentence for people."""
    basis = life.get("gaps_basis") or "no lifecycle known"
    return f"Expected steps: {basis}."


def missed_table(life: Mapping[str, Any]) -> pd.DataFrame:
    """Every missed handling of the order (consumer, step, when, why), as on the timeline."""
    rows = [{"consumer": m["consumer"], "detail_type": m["detail_type"],
             "time": pd.to_datetime(m["time_ms"], unit="ms", utc=True),
             "event_id": m["event_id"], "why": m["why"]} for m in missed_handling(life)]
    return pd.DataFrame(rows, columns=["consumer", "detail_type", "time", "event_id", "why"])


def affected_table(finding: Mapping[str, Any],
                   carried: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Every order a missing-subscription finding affected (latest cancellation first), each
    with a link to its lifecycle in the same environment and window."""
    orders = (finding.get("observed") or {}).get("affected", [])
    rows = [{"order": o["order"], "cancelled": pd.to_datetime(o["time_ms"], unit="ms", utc=True),
             "event_id": o["event_id"], "lifecycle": lifecycle_link(o["order"], carried)}
            for o in orders]
    return pd.DataFrame(rows, columns=AFFECTED_COLUMNS)


def page_count(total: int, size: int) -> int:
    """How many pages of `size` rows `total` rows fill (at least one)."""
    return max(1, math.ceil(total / max(size, 1)))


def page_of(table: pd.DataFrame, size: int, number: int) -> tuple[pd.DataFrame, str]:
    """Page `number` (from 1; clamped to the pages there are) of `size` rows, and what it
    shows in words: "orders 26–50 of 140"."""
    pages = page_count(len(table), size)
    number = min(max(number, 1), pages)
    start = (number - 1) * size
    shown = table.iloc[start:start + size]
    if shown.empty:
        return shown, "no orders"
    return shown, f"orders {start + 1:,}–{start + len(shown):,} of {len(table):,}"


def finding_label(finding: Mapping[str, Any]) -> str:
    """A missing-subscription finding as a choice: consumer / type (N orders)."""
    orders = (finding.get("observed") or {}).get("orders", 0)
    return f"{finding['consumer']} / {finding['detail_type']} ({orders:,} orders)"
