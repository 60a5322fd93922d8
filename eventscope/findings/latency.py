"""Latency from an event's time to each consumer's first invocation and first success.

EventBridge's `time` has second precision and log clocks drift, so an invocation can appear
to start before its event: such latencies are clipped to 0 and counted as `skewed`.
Per consumer by default, or per any grouping of attempts' columns (`latency_by_pair`: the
detail-type x consumer the CLI, `check` and the dashboard use). Invocations without a stored
event carry no event time and are left out. Pure; an empty or unattributed input gives an
empty table with these columns.

Two ways to the same table: `latency` exactly from attempts (drill-downs, samples, tests),
and `latency_from_histograms` from the store's latency rollup (whole store or a window):
counts and maxima exact, p50/p95 approximate, within 5 % of the exact ones (latencies under
30 days; see `eventscope.tables.LATENCY_EDGES_MS`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from eventscope.tables import LATENCY_EDGES_MS

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


APPROXIMATE = "p50/p95 from the latency rollup's histograms: within 5 % of the exact values"


def bucket_estimate(bucket: int, max_ms: float) -> float:
    """A latency in `bucket` (index into LATENCY_EDGES_MS' buckets) whose largest value is
    `max_ms`: the bucket's middle, within 5 % of any latency in it, kept inside [its lower
    edge, max_ms]; the open-ended last bucket gives `max_ms`."""
    if bucket >= len(LATENCY_EDGES_MS):
        return float(max_ms)
    low = 0 if bucket == 0 else LATENCY_EDGES_MS[bucket - 1]
    middle = (low + LATENCY_EDGES_MS[bucket] - 1) / 2
    return float(max(low, min(middle, max_ms)))


def histogram_quantile(histogram: Sequence[tuple[int, int, float]], q: float) -> float:
    """The `q` quantile (linear between ranks, as pandas) of a histogram of
    (bucket, count, max in bucket) rows sorted by bucket; NaN when it is empty."""
    total = sum(count for _, count, _ in histogram)
    if total == 0:
        return math.nan
    position = q * (total - 1)
    rank = math.floor(position)

    def at(wanted: int) -> float:
        seen = 0
        for bucket, count, max_ms in histogram:
            seen += count
            if wanted < seen:
                return bucket_estimate(bucket, max_ms)
        raise AssertionError("rank beyond the histogram")  # pragma: no cover

    low = at(rank)
    return low + (position - rank) * (at(min(rank + 1, total - 1)) - low)


def latency_from_histograms(rows: pd.DataFrame, by: Sequence[str] = PAIR) -> pd.DataFrame:
    """`latency`'s table per group of `by` from latency-rollup rows (`by` columns, `measure`,
    `bucket`, `events`, `skewed`, `latency_max_ms`; `consumer` already the catalog consumer
    when one owns the function): events, skewed and maxima exact, p50/p95 approximate. An
    event handled by two functions of one consumer counts once per function."""
    keys = list(by)
    if rows.empty:
        return pd.DataFrame(columns=keys + MEASURES)
    merged = rows.groupby(keys + ["measure", "bucket"], as_index=False).agg(
        events=("events", "sum"), skewed=("skewed", "sum"),
        latency_max_ms=("latency_max_ms", "max")).sort_values(keys + ["measure", "bucket"])
    # one pass over the merged rows in plain Python (a pandas filter per group and measure
    # was most of `check`'s latency read: ~100 groups on the bench store)
    histograms: dict[tuple[object, ...], dict[str, list[tuple[int, int, float]]]] = {}
    skewed: dict[tuple[object, ...], int] = {}
    width = len(keys)
    for values in merged[keys + ["measure", "bucket", "events", "skewed", "latency_max_ms"]]\
            .itertuples(index=False, name=None):
        key, (measure, bucket, events, skew, max_ms) = values[:width], values[width:]
        histograms.setdefault(key, {}).setdefault(measure, []).append(
            (int(bucket), int(events), float(max_ms)))
        if measure == "first":
            skewed[key] = skewed.get(key, 0) + int(skew)
    table = []
    for key, measures in histograms.items():
        row: dict[str, object] = dict(zip(keys, key))
        for measure in ("first", "success"):
            histogram = measures.get(measure, [])
            row[f"{measure}_p50_ms"] = histogram_quantile(histogram, 0.5)
            row[f"{measure}_p95_ms"] = histogram_quantile(histogram, 0.95)
            row[f"{measure}_max_ms"] = max((m for _, _, m in histogram), default=math.nan)
            row["events" if measure == "first" else "success_events"] = sum(
                n for _, n, _ in histogram)
        row["skewed"] = skewed.get(key, 0)
        if row["events"]:
            table.append(row)
    return pd.DataFrame(table, columns=keys + MEASURES).sort_values(keys).reset_index(drop=True)
