"""Failure rates of consumers per event type (and version), over a window and in buckets.

An attempt is one invocation; it failed when its outcome is error or timeout. Retries are the
attempts beyond the first a consumer made for one event; a final failure is an event whose
every attempt by that consumer failed. Unattributed invocations (no known event) are counted
under detail_type None. Also the top error types, the final failures themselves, and
per-target delivery failures from the bus's own logs. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from eventscope.findings.frames import FAILED, as_keys
from eventscope.store import DURATION_BUCKETS, DURATION_EDGES_MS

GROUP_KEYS = ["consumer", "detail_type", "version"]
RATE_COLUMNS = GROUP_KEYS + ["invocations", "failed", "errors", "timeouts", "rate", "events",
                             "retries", "retried_then_ok", "final_failures", "p50_ms", "p95_ms"]


def per_event(attempts: pd.DataFrame) -> pd.DataFrame:
    """One row per (consumer, event): attempts, failed attempts, first start, last outcome."""
    attributed = attempts[attempts["detail_type"].notna()].sort_values(["start_ms",
                                                                         "request_id"])
    flagged = attributed.assign(is_failed=attributed["outcome"].isin(FAILED))
    return flagged.groupby(["consumer", "event_id"], as_index=False).agg(
        detail_type=("detail_type", "first"), version=("version", "first"),
        attempts=("request_id", "size"), failed=("is_failed", "sum"),
        first_ms=("start_ms", "min"), last_ms=("start_ms", "max"),
        last_error_type=("error_type", "last"), last_error_message=("error_message", "last"))


def failure_rates(attempts: pd.DataFrame, bucket_ms: int | None = None) -> pd.DataFrame:
    """Per consumer x type x version (x bucket of start time): counts, rate, retries, p50/p95.

    Invocation counts fall in the bucket of their start; event counts (events, retries, final
    failures) in the bucket of the event's first attempt.
    """
    keys = GROUP_KEYS + (["bucket_ms"] if bucket_ms else [])
    calls = attempts.assign(
        is_failed=attempts["outcome"].isin(FAILED), is_error=attempts["outcome"] == "error",
        is_timeout=attempts["outcome"] == "timeout")
    if bucket_ms:
        calls["bucket_ms"] = calls["start_ms"] // bucket_ms * bucket_ms
    by_call = calls.groupby(keys, dropna=False).agg(
        invocations=("request_id", "size"), failed=("is_failed", "sum"),
        errors=("is_error", "sum"), timeouts=("is_timeout", "sum"),
        p50_ms=("duration_ms", lambda s: s.quantile(0.5)),
        p95_ms=("duration_ms", lambda s: s.quantile(0.95))).reset_index()
    by_call["rate"] = by_call["failed"] / by_call["invocations"]
    events = per_event(attempts)
    if bucket_ms:
        events["bucket_ms"] = events["first_ms"] // bucket_ms * bucket_ms
    events = events.assign(retries=events["attempts"] - 1,
                           final=events["failed"] == events["attempts"],
                           recovered=(events["failed"] > 0)
                           & (events["failed"] < events["attempts"]))
    by_event = events.groupby(keys, dropna=False).agg(
        events=("event_id", "size"), retries=("retries", "sum"),
        retried_then_ok=("recovered", "sum"), final_failures=("final", "sum")).reset_index()
    return _rates_table(by_call, by_event, keys, bucket_ms)


def _rates_table(by_call: pd.DataFrame, by_event: pd.DataFrame, keys: list[str],
                 bucket_ms: int | None) -> pd.DataFrame:
    """Per-call and per-event counts joined into the failure-rates table, sorted."""
    merged = as_keys(by_call, keys).merge(as_keys(by_event, keys), on=keys, how="outer")
    for column in ("invocations", "failed", "errors", "timeouts", "events", "retries",
                   "retried_then_ok", "final_failures"):
        merged[column] = merged[column].fillna(0).astype(int)
    if bucket_ms:
        merged = merged.sort_values(["bucket_ms"] + GROUP_KEYS, na_position="last")
    else:
        merged = merged.sort_values(["rate"] + keys, ascending=[False] + [True] * len(keys),
                                    na_position="last")
    return merged[RATE_COLUMNS[:3] + (["bucket_ms"] if bucket_ms else []) + RATE_COLUMNS[3:]]\
        .reset_index(drop=True)


FINAL_COLUMNS = ["consumer", "event_id", "detail_type", "version", "attempts", "first_ms",
                 "last_ms", "last_error_type", "last_error_message"]


def final_failures(attempts: pd.DataFrame) -> pd.DataFrame:
    """The events every attempt of a consumer failed on, newest last attempt first, with
    their first and last attempt's start (the last error type and message: the last
    non-null ones in start order)."""
    events = per_event(attempts)
    return newest_first(events[events["failed"] == events["attempts"]])


def newest_first(finals: pd.DataFrame) -> pd.DataFrame:
    """Final failures (`per_event`'s rows, or `load.load_final_failures`') in FINAL_COLUMNS,
    newest last attempt first, then by consumer and event id."""
    return finals.sort_values(["last_ms", "consumer", "event_id"],
                              ascending=[False, True, True])[FINAL_COLUMNS]\
        .reset_index(drop=True)


def top_errors(attempts: pd.DataFrame, limit: int = 10) -> pd.DataFrame:
    """The most frequent error types per consumer x type, with their first message and example."""
    failed = attempts[attempts["outcome"].isin(FAILED)].sort_values("start_ms")
    failed = failed.assign(error_type=failed["error_type"].where(
        failed["error_type"].notna(), failed["outcome"].map({"timeout": "Timeout",
                                                             "error": "UnknownError"})))
    grouped = failed.groupby(["consumer", "detail_type", "error_type"], dropna=False).agg(
        count=("request_id", "size"), first_message=("error_message", "first"),
        example_event_id=("event_id", "first"), first_ms=("start_ms", "min"),
        last_ms=("start_ms", "max")).reset_index()
    return grouped.sort_values(["count", "consumer", "error_type"],
                               ascending=[False, True, True]).head(limit).reset_index(drop=True)


def delivery_failures(deliveries: pd.DataFrame) -> pd.DataFrame:
    """Per rule x target, from the bus's delivery logs: attempts, failed, rate, top error code."""
    flagged = deliveries.assign(is_failed=deliveries["outcome"] != "ok")
    grouped = flagged.groupby(["rule", "target"]).agg(
        attempts=("event_id", "size"), failed=("is_failed", "sum"),
        events=("event_id", "nunique")).reset_index()
    grouped["rate"] = grouped["failed"] / grouped["attempts"]
    codes = flagged[flagged["is_failed"]].groupby(["rule", "target"])["error_code"].agg(
        lambda s: s.value_counts().index[0] if s.notna().any() else None)
    grouped["top_error_code"] = [codes.get((r, t)) for r, t in zip(grouped["rule"],
                                                                  grouped["target"])]
    return grouped.sort_values(["rate", "rule"], ascending=[False, True]).reset_index(drop=True)


# --- from rollups (counts exact; p50/p95 are duration-bucket estimates) ---

def bucket_percentile(counts: Sequence[int], q: float, max_ms: float | None) -> float | None:
    """The q-quantile estimated from duration-bucket counts: linear within the bucket holding
    it (the open last bucket ends at the largest duration seen). Resolution: one bucket."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * (total - 1)
    seen = 0
    for index, count in enumerate(counts):
        if count and rank < seen + count:
            lo = DURATION_EDGES_MS[index - 1] if index else 0.0
            hi = DURATION_EDGES_MS[index] if index < len(DURATION_EDGES_MS) else (max_ms or lo)
            hi = min(hi, max_ms) if max_ms is not None else hi
            lo = min(lo, hi)
            return float(lo + (hi - lo) * min(1.0, (rank - seen + 0.5) / count))
        seen += count
    return float(max_ms) if max_ms is not None else None


def rates_from_totals(calls: pd.DataFrame, handling: pd.DataFrame,
                      bucket_ms: int | None = None) -> pd.DataFrame:
    """`failure_rates`' shape from rollup totals (`load.load_call_totals`,
    `load.load_handling_totals`, consumers already resolved). Per-event counts (events,
    retries, retried_then_ok, final_failures) count each (function, event) pair once, in the
    bucket of its first attempt, with all its attempts."""
    keys = GROUP_KEYS + (["bucket_ms"] if bucket_ms else [])
    flagged = calls.assign(
        failed=calls["invocations"].where(calls["outcome"].isin(FAILED), 0),
        errors=calls["invocations"].where(calls["outcome"] == "error", 0),
        timeouts=calls["invocations"].where(calls["outcome"] == "timeout", 0))
    by_call = flagged.groupby(keys, dropna=False).agg(
        invocations=("invocations", "sum"), failed=("failed", "sum"), errors=("errors", "sum"),
        timeouts=("timeouts", "sum"), duration_max_ms=("duration_max_ms", "max"),
        **{b: (b, "sum") for b in DURATION_BUCKETS}).reset_index()
    counts = by_call[DURATION_BUCKETS].to_numpy()
    by_call["p50_ms"] = [bucket_percentile(c, 0.5, m) for c, m in
                         zip(counts, by_call["duration_max_ms"])]
    by_call["p95_ms"] = [bucket_percentile(c, 0.95, m) for c, m in
                         zip(counts, by_call["duration_max_ms"])]
    by_call["rate"] = by_call["failed"] / by_call["invocations"]
    known = handling[handling["detail_type"].notna()]
    by_event = known.groupby(keys, dropna=False).agg(
        events=("events", "sum"), attempts=("attempts", "sum"),
        retried_then_ok=("retried_then_ok", "sum"),
        final_failures=("final_failures", "sum")).reset_index()
    by_event["retries"] = by_event["attempts"] - by_event["events"]
    return _rates_table(by_call, by_event, keys, bucket_ms)


UNNAMED_ERRORS = {"timeout": "Timeout", "error": "UnknownError"}


def top_error_groups(calls: pd.DataFrame, limit: int = 10) -> pd.DataFrame:
    """`top_errors`' groups and counts from rollup totals; `first_message` and
    `example_event_id` are left None for the caller to drill down."""
    failed = calls[calls["outcome"].isin(FAILED)]
    failed = failed.assign(error_type=failed["error_type"].where(
        failed["error_type"].notna(), failed["outcome"].map(UNNAMED_ERRORS)))
    grouped = failed.groupby(["consumer", "detail_type", "error_type"], dropna=False).agg(
        count=("invocations", "sum"), first_ms=("first_ms", "min"),
        last_ms=("last_ms", "max")).reset_index()
    grouped = grouped.sort_values(["count", "consumer", "error_type"],
                                  ascending=[False, True, True]).head(limit)
    grouped.insert(4, "first_message", None)
    grouped.insert(5, "example_event_id", None)
    return grouped.reset_index(drop=True)
