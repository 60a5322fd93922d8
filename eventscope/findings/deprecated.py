"""Deprecated event types still emitted or consumed, with days to (or past) their sunset. Pure."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

import pandas as pd

from eventscope.catalog.model import Catalog


def deprecated_in_use(catalog: Catalog, events: pd.DataFrame, attempts: pd.DataFrame,
                      today: date) -> list[dict[str, Any]]:
    """Every deprecated type seen in the data: emitted count, last seen, consumers, sunset."""
    found = []
    for event_type in catalog.event_types:
        if event_type.status != "deprecated":
            continue
        emitted = events[(events["detail_type"] == event_type.detail_type)
                         & (events["source"] == event_type.source)]
        handled = attempts[attempts["detail_type"] == event_type.detail_type]
        if emitted.empty and handled.empty:
            continue
        last = max(emitted["time_ms"].max() if not emitted.empty else 0,
                   handled["start_ms"].max() if not handled.empty else 0)
        found.append({
            "source": event_type.source, "detail_type": event_type.detail_type,
            "owner": event_type.owner, "emitted": int(len(emitted)),
            "consumers": sorted(set(handled["consumer"])),
            "last_seen": datetime.fromtimestamp(int(last) / 1000, tz=timezone.utc).isoformat(),
            "sunset": event_type.sunset.isoformat() if event_type.sunset else None,
            "days_to_sunset": (event_type.sunset - today).days if event_type.sunset else None,
            "replacement": event_type.replacement,
        })
    return found
