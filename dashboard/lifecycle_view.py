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


def finding_index(missing: list[dict[str, Any]], consumer: str, detail_type: str) -> int:
    """The finding a link names (`?consumer=&type=`, as the overview links them), else the
    first one with affected orders, else the first."""
    for index, finding in enumerate(missing):
        if (finding["consumer"], finding["detail_type"]) == (consumer, detail_type):
            return index
    return next((i for i, f in enumerate(missing) if (f.get("observed") or {}).get("orders")),
                0)


def bound_note(totals: pd.DataFrame, cancellations: set[str], latest: int) -> str | None:
    """What the listing leaves out when the window holds more cancellations than the page
    looks at (its latest `latest`), and how to get every one; None when it looks at all."""
    if totals.empty:
        return None
    count = int(totals.loc[totals["detail_type"].isin(cancellations), "count"].sum())
    if count <= latest:
        return None
    return (f"This window holds {count:,} cancellations; the orders of its latest {latest:,} "
            "are listed. Choose a shorter window, or list every affected order of the store "
            "with: eventscope subscriptions --orders --csv")
