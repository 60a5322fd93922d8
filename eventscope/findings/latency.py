"""Latency from an event's time to each consumer's first invocation and first success.

EventBridge's `time` has second precision and log clocks drift, so an invocation can appear
to start before its event: such latencies are clipped to 0 and counted as `skewed`.
Per consumer by default, or per any grouping of attempts' columns (the CLI and `check` use
detail-type x consumer). Pure; an empty or unattributed input gives an empty table.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

MEASURES = ["events", "skewed", "first_p50_ms", "first_p95_ms", "first_max_ms",
            "success_events", "success_p50_ms", "success_p95_ms", "success_max_ms"]
COLUMNS = ["consumer", *MEASURES]
PAIR_COLUMNS = ["detail_type", "consumer", *MEASURES]


def latency(attempts: pd.DataFrame, by: Sequence[str] = ("consumer",)) -> pd.DataFrame:
    """Per group (default: consumer): percentiles of event time -> first invocation and ->
    first success, over the attempts joined to an event."""
    keys = list(by)
    attributed = attempts[attempts["event_time_ms"].notna() & attempts["event_id"].notna()
                          & attempts[keys].notna().all(axis=1)]
    if attributed.empty:
        return pd.DataFrame(columns=keys + MEASURES)
    per_event = keys + ([] if "event_id" in keys else ["event_id"])
    first = attributed.groupby(per_event).agg(
        start=("start_ms", "min"), time=("event_time_ms", "first")).reset_index()
    ok = attributed[attributed["outcome"] == "ok"].groupby(per_event).agg(
        success=("start_ms", "min")).reset_index()
    first = first.merge(ok, on=per_event, how="left")
    first["raw"] = first["start"] - first["time"]
    first["first"] = first["raw"].clip(lower=0)
    first["to_success"] = (first["success"] - first["time"]).clip(lower=0)
    table = first.groupby(keys).agg(
        events=("first", "size"), skewed=("raw", lambda s: int((s < 0).sum())),
        first_p50_ms=("first", lambda s: s.quantile(0.5)),
        first_p95_ms=("first", lambda s: s.quantile(0.95)), first_max_ms=("first", "max"),
        success_events=("to_success", "count"),
        success_p50_ms=("to_success", lambda s: s.quantile(0.5)),
        success_p95_ms=("to_success", lambda s: s.quantile(0.95)),
        success_max_ms=("to_success", "max")).reset_index()
    return table[keys + MEASURES].sort_values(keys).reset_index(drop=True)
