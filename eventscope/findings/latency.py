"""Latency from an event's time to each consumer's first invocation and first success.

EventBridge's `time` has second precision and log clocks drift, so an invocation can appear
to start before its event: such latencies are clipped to 0 and counted as `skewed`.
Per consumer by default, or per any grouping of attempts' columns (`latency_by_pair`: the
detail-type x consumer the CLI, `check` and the dashboard use). Invocations without a stored
event carry no event time and are left out. Pure; an empty or unattributed input gives an
empty table with these columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

MEASURES = ["events", "skewed", "first_p50_ms", "first_p95_ms", "first_max_ms",
            "success_events", "success_p50_ms", "success_p95_ms", "success_max_ms"]
COLUMNS = ["consumer", *MEASURES]
PAIR = ("detail_type", "consumer")
PAIR_COLUMNS = [*PAIR, *MEASURES]


def latency(attempts: pd.DataFrame, by: Sequence[str] = ("consumer",)) -> pd.DataFrame:
    """Per group of `by` (default: consumer): how many events, how many skewed, and the
    p50 / p95 / max of event time -> first invocation and -> first successful invocation,
    over the attempts joined to an event."""
    keys = list(by)
    timed = attempts.assign(  # straight from a driver, a column with NULLs can be `object`
        start_ms=pd.to_numeric(attempts["start_ms"], errors="coerce"),
        event_time_ms=pd.to_numeric(attempts["event_time_ms"], errors="coerce"))
    attributed = timed[timed["event_time_ms"].notna() & timed["start_ms"].notna()
                       & timed["event_id"].notna() & timed[keys].notna().all(axis=1)]
    if attributed.empty:
        return pd.DataFrame(columns=keys + MEASURES)
    per_event_keys = keys + ([] if "event_id" in keys else ["event_id"])
    per_event = attributed.groupby(per_event_keys).agg(
        start=("start_ms", "min"), time=("event_time_ms", "first"))
    ok = attributed[attributed["outcome"] == "ok"]
    per_event["success"] = ok.groupby(per_event_keys)["start_ms"].min()
    raw = per_event["start"] - per_event["time"]
    per_event["skewed"] = raw < 0
    per_event["first"] = raw.clip(lower=0)
    per_event["to_success"] = (per_event["success"] - per_event["time"]).clip(lower=0)
    groups = per_event.groupby(level=keys)
    table = pd.DataFrame({
        "events": groups.size(), "skewed": groups["skewed"].sum().astype(int),
        "first_p50_ms": groups["first"].quantile(0.5),
        "first_p95_ms": groups["first"].quantile(0.95), "first_max_ms": groups["first"].max(),
        "success_events": groups["to_success"].count(),
        "success_p50_ms": groups["to_success"].quantile(0.5),
        "success_p95_ms": groups["to_success"].quantile(0.95),
        "success_max_ms": groups["to_success"].max()}).reset_index()
    return table[keys + MEASURES].sort_values(keys).reset_index(drop=True)


def latency_by_pair(attempts: pd.DataFrame) -> pd.DataFrame:
    """`latency` per (detail-type, consumer): how long each consumer takes to see each event
    type after it is put on the bus (PAIR_COLUMNS)."""
    return latency(attempts, PAIR)
