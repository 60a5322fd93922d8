"""Deprecated event types still emitted or consumed, with days to (or past) their sunset. Pure."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

import pandas as pd

from eventscope.catalog.model import Catalog


def deprecated_from_summary(catalog: Catalog, type_summary: pd.DataFrame,
                            handled: pd.DataFrame, today: date) -> list[dict[str, Any]]:
    """`deprecated_in_use` from a type summary (count, last_ms per source x type x version)
    and attempts-shaped `handled` rows (consumer, detail_type, start_ms)."""
    found = []
    for event_type in catalog.event_types:
        if event_type.status != "deprecated":
            continue
        emitted = type_summary[(type_summary["detail_type"] == event_type.detail_type)
                               & (type_summary["source"] == event_type.source)]
        handled_type = handled[handled["detail_type"] == event_type.detail_type]
        if emitted.empty and handled_type.empty:
            continue
        last = max(emitted["last_ms"].max() if not emitted.empty else 0,
                   handled_type["start_ms"].max() if not handled_type.empty else 0)
        found.append(_entry(event_type, int(emitted["count"].sum()),
                            sorted(set(handled_type["consumer"])), int(last), today))
    return found


def _entry(event_type: Any, emitted: int, consumers: list[str], last: int,
           today: date) -> dict[str, Any]:
    return {
        "source": event_type.source, "detail_type": event_type.detail_type,
        "owner": event_type.owner, "emitted": emitted, "consumers": consumers,
        "last_seen": datetime.fromtimestamp(last / 1000, tz=timezone.utc).isoformat(),
        "sunset": event_type.sunset.isoformat() if event_type.sunset else None,
        "days_to_sunset": (event_type.sunset - today).days if event_type.sunset else None,
        "replacement": event_type.replacement,
    }


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
