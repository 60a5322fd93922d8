"""Latency from an event's time to each consumer's first invocation and first success.

EventBridge's `time` has second precision and log clocks drift, so an invocation can appear
to start before its event: such latencies are clipped to 0 and counted as `skewed`. Pure.
"""

from __future__ import annotations

import pandas as pd

COLUMNS = ["consumer", "events", "skewed", "first_p50_ms", "first_p95_ms", "first_max_ms",
           "success_events", "success_p50_ms", "success_p95_ms", "success_max_ms"]


def latency(attempts: pd.DataFrame) -> pd.DataFrame:
    """Per consumer: percentiles of event time -> first invocation and -> first success."""
    attributed = attempts[attempts["event_time_ms"].notna()]
    first = attributed.groupby(["consumer", "event_id"]).agg(
        start=("start_ms", "min"), time=("event_time_ms", "first")).reset_index()
    ok = attributed[attributed["outcome"] == "ok"].groupby(["consumer", "event_id"]).agg(
        success=("start_ms", "min")).reset_index()
    first = first.merge(ok, on=["consumer", "event_id"], how="left")
    first["raw"] = first["start"] - first["time"]
    first["first"] = first["raw"].clip(lower=0)
    first["to_success"] = (first["success"] - first["time"]).clip(lower=0)
    table = first.groupby("consumer").agg(
        events=("event_id", "size"), skewed=("raw", lambda s: int((s < 0).sum())),
        first_p50_ms=("first", lambda s: s.quantile(0.5)),
        first_p95_ms=("first", lambda s: s.quantile(0.95)), first_max_ms=("first", "max"),
        success_events=("to_success", "count"),
        success_p50_ms=("to_success", lambda s: s.quantile(0.5)),
        success_p95_ms=("to_success", lambda s: s.quantile(0.95)),
        success_max_ms=("to_success", "max")).reset_index()
    return table[COLUMNS].sort_values("consumer").reset_index(drop=True)
