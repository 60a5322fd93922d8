"""What the Overview, Failures and Contracts pages show, as tables and words for people: pure
functions over the findings layer's results (`eventscope.findings.triage`, `.failures`,
contract results), no Streamlit.

Owns number formatting (1,234 / 12.3k / 66.3 % / "3 min ago"), the overview's banner, tiles
and ranked findings table, the failures page's rate and error-group tables, and the contract
results table with its totals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from eventscope.alerts import team_of
from eventscope.catalog.model import Catalog
from eventscope.findings.triage import Trend, trend, trend_words
from eventscope.findings.failures import UNNAMED_ERRORS
from eventscope.findings.frames import FAILED

from eventscope.dashboard.views import only, page_url

# --- numbers for people ----------------------------------------------------------------

def count(value: Any) -> str:
    """A whole number with thousands separators: 1,234 ("—" when unknown)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    return f"{int(value):,}"


def compact(value: Any) -> str:
    """A number short enough for a tile: 987, 12.3k, 4.5M ("—" when unknown)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    number = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= limit:
            shown = f"{number / limit:.1f}".rstrip("0").rstrip(".")
            return f"{shown}{suffix}"
    return f"{int(number):,}" if number == int(number) else f"{number:.1f}"


def percent(share: Any, digits: int = 1) -> str:
    """A share as a percentage: 0.6625 -> "66.3 %" ("—" when unknown)."""
    if share is None or pd.isna(share):
        return "—"
    return f"{float(share) * 100:.{digits}f} %"


def ago(ms: Any, now_ms: int) -> str:
    """How long before `now_ms` a time was: "just now", "3 min ago", "2 h ago", "5 d ago"."""
    if ms is None or pd.isna(ms):
        return "—"
    seconds = max((now_ms - int(ms)) / 1000, 0)
    if seconds < 60:
        return "just now"
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"  # unreachable: kept for the type checker


def when(ms: Any) -> str:
    """An epoch-millisecond time as UTC text: 2026-11-30 14:05:09 UTC ("—" when unknown)."""
    if ms is None or pd.isna(ms):
        return "—"
    return str(pd.to_datetime(int(ms), unit="ms", utc=True).strftime("%Y-%m-%d %H:%M:%S UTC"))


# --- the overview ------------------------------------------------------------------------

LOG_KINDS = ("failure_rate", "final_failures", "processed_twice", "latency_p95")
"""Finding kinds graded from the consumers' invocations (their CloudWatch Logs)."""
STATE_WORDS = {"bad": ("problem", "red"), "warn": ("warning", "orange"),
               "ok": ("ok", "green"), "skipped": ("not checked", "gray")}
SEVERITY_WORDS = {"error": "error", "warning": "warning", "info": "note"}


def banner(found: list[Any], skipped: list[dict[str, str]]) -> tuple[str, str]:
    """(kind, words): the overview's one-line verdict. kind is `bad` (an error), `warn`
    (warnings only) or `ok` (nothing found; the kinds not checked are named)."""
    errors = sum(f.severity == "error" for f in found)
    warnings = sum(f.severity == "warning" for f in found)
    if errors or warnings:
        parts = [f"{count(n)} {word}{'' if n == 1 else 's'}"
                 for n, word in ((errors, "error"), (warnings, "warning")) if n]
        return ("bad" if errors else "warn"), (
            f"{' and '.join(parts)} in this window, most severe first below.")
    unchecked = sorted({s["kind"] for s in skipped})
    return "ok", ("Nothing wrong in this window: every check passed"
                  + (f" (not checked: {', '.join(unchecked)})." if unchecked else "."))


def with_missing_data(skipped: list[dict[str, str]], invocations: int, events: int,
                      has_catalog: bool, queues_sampled: int = 1) -> list[dict[str, str]]:
    """The kinds `check` skipped plus those the window gives nothing to grade: no
    invocations (no consumer logs) or no events in it, no dead-letter queue ever sampled."""
    more = list(skipped)
    named = {s["kind"] for s in skipped}
    if not queues_sampled and "dead_letters" not in named:
        more.append({"kind": "dead_letters", "reason": "no dead-letter queue sampled"})
    if not invocations:
        more += [{"kind": k, "reason": "no consumer logs in this window"}
                 for k in LOG_KINDS if k not in named]
    if not events and has_catalog:
        more += [{"kind": k, "reason": "no events in this window"}
                 for k in ("undocumented_event", "deprecated_in_use") if k not in named]
    return more


def tile(state: Mapping[str, Any]) -> dict[str, str]:
    """A tile of `triage.kind_states`: label, value, caption (what the number counts or
    why it is not checked), badge word and colour."""
    word, colour = STATE_WORDS[state["state"]]
    skipped = state["state"] == "skipped"
    return {"label": state["name"], "value": "—" if skipped else compact(state["count"]),
            "caption": state["reason"] if skipped else state["unit"], "badge": word,
            "colour": colour}


FINDING_COLUMNS = ["severity", "finding", "reason", "explain", "trend", "change", "team",
                   "channel", "now", "before"]
"""Key columns first: what, why and where to look fit a laptop screen."""


def findings_table(rows: list[dict[str, Any]], carried: Mapping[str, str]) -> pd.DataFrame:
    """The ranked findings (`triage.ranked`) as shown: severity, what, the one-line reason,
    owner team and channel, the trend sparkline and its words, counts now and in the window
    before, and a link to the page and filter that explain it (environment and window
    carried)."""
    shown = [{"severity": SEVERITY_WORDS.get(r["severity"], r["severity"]),
              "finding": r["finding"], "reason": r["reason"], "team": r["team"] or "—",
              "channel": r["channel"] or "—", "trend": r["spark"], "change": r["trend"],
              "now": _trend_count(r["now"], r["trend_of"]),
              "before": _trend_count(r["before"], r["trend_of"]),
              "explain": page_url(r["page"], carried, **r["params"])} for r in rows]
    return pd.DataFrame(shown, columns=FINDING_COLUMNS)


def _trend_count(value: int | None, what: str | None) -> str:
    return "—" if value is None or what is None else f"{count(value)} {what}"


# --- failures ----------------------------------------------------------------------------

RATE_COLUMNS = ["consumer", "team", "detail_type", "version", "invocations", "failed", "rate",
                "final_failures", "retries", "p50_ms", "p95_ms", "events", "errors",
                "timeouts"]


def rates_table(rates: pd.DataFrame, catalog: Catalog | None = None) -> pd.DataFrame:
    """Failure rates with the key columns first (consumer, its team from the catalog, type,
    version, count, failed, rate) and the rate as a percentage, worst first."""
    if rates.empty:
        return pd.DataFrame(columns=RATE_COLUMNS)
    ordered = rates.sort_values(["rate", "failed"], ascending=[False, False])
    ordered = ordered.assign(team=[team_of({"consumer": c, "detail_type": t}, catalog) or "—"
                                   for c, t in zip(ordered["consumer"], ordered["detail_type"])])
    shown = ordered[[c for c in RATE_COLUMNS if c in ordered]].copy()
    shown["rate"] = shown["rate"].map(percent)
    return shown.reset_index(drop=True)


def matrix_cell(point: Mapping[str, Any]) -> tuple[str, str] | None:
    """(consumer, type) of a clicked heatmap cell: the point's customdata, else (y, x)."""
    custom = point.get("customdata")
    if isinstance(custom, (list, tuple)) and len(custom) >= 2 and all(
            isinstance(v, str) for v in custom[:2]):
        return custom[0], custom[1]
    y, x = point.get("y"), point.get("x")
    return (y, x) if isinstance(y, str) and isinstance(x, str) else None


def clicked_cell(selection: Any) -> tuple[str, str] | None:
    """The first clicked cell of a plotly_chart selection event, or None."""
    try:
        points = selection["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for point in points or []:
        cell = matrix_cell(point) if isinstance(point, Mapping) else None
        if cell:
            return cell
    return None


ERROR_COLUMNS = ["consumer", "detail_type", "error_type", "count", "first_seen", "last_seen",
                 "trend", "change", "message", "example_event_id"]


def error_groups(groups: pd.DataFrame, calls: pd.DataFrame, since_ms: int | None,
                 until_ms: int | None, now_ms: int, first_ms: int | None = None
                 ) -> pd.DataFrame:
    """Error groups (`top_errors`: consumer x type x error type, count, first/last time,
    first message, example event) as Lumigo and Dashbird show issues: count, first seen and
    last seen ("3 min ago"), a sparkline of the group's failures over this window and the
    one before (bucketed counts), and the change."""
    rows = []
    for group in groups.to_dict("records"):
        series = _error_series(calls, group)
        shown: Trend = trend(series, since_ms, until_ms, first_ms)
        rows.append({"consumer": group["consumer"], "detail_type": group["detail_type"],
                     "error_type": group["error_type"], "count": count(group["count"]),
                     "first_seen": ago(group["first_ms"], now_ms),
                     "last_seen": ago(group["last_ms"], now_ms), "trend": shown.spark,
                     "change": trend_words(shown), "message": group.get("first_message"),
                     "example_event_id": group.get("example_event_id")})
    return pd.DataFrame(rows, columns=ERROR_COLUMNS)


def _error_series(calls: pd.DataFrame, group: Mapping[str, Any]) -> pd.Series:
    failed = calls[calls["outcome"].isin(FAILED) & (calls["consumer"] == group["consumer"])]
    failed = failed[failed["detail_type"] == group["detail_type"]] \
        if isinstance(group["detail_type"], str) else failed[failed["detail_type"].isna()]
    named = failed["error_type"].where(failed["error_type"].notna(),
                                       failed["outcome"].map(UNNAMED_ERRORS))
    return failed[named == group["error_type"]].groupby("bucket_ms")["invocations"].sum()


def whens(ms: pd.Series) -> pd.Series:
    """`when` of a column at once (a table's worth of times)."""
    stamps = pd.to_datetime(pd.to_numeric(ms, errors="coerce"), unit="ms", utc=True)
    return stamps.dt.strftime("%Y-%m-%d %H:%M:%S UTC").where(stamps.notna(), "—")


FINAL_COLUMNS = ["consumer", "detail_type", "version", "last_error_type", "last_error_message",
                 "attempts", "last_ms", "event_id"]


def final_failures_table(finals: pd.DataFrame, error_type: str = "") -> pd.DataFrame:
    """Final failures (of one last error type when given), key columns first, times as
    UTC text."""
    chosen = finals if not error_type else finals[finals["last_error_type"] == error_type]
    shown = chosen[[c for c in FINAL_COLUMNS if c in chosen]].copy()
    shown["last_ms"] = whens(shown["last_ms"])
    return shown.rename(columns={"last_ms": "last_attempt"}).reset_index(drop=True)


def failed_error_types(calls: pd.DataFrame, consumer: str = "",
                       detail_type: str = "") -> list[str]:
    """The error types of the selection's failed invocations (error or timeout), most
    invocations first, from invocation counts (consumer, detail_type, outcome, error_type,
    invocations): every last error type a final failure of the selection can have, read
    from the rollup instead of from every final failure."""
    if calls.empty:
        return []
    chosen = only(calls, consumer, detail_type)
    failed = chosen[chosen["outcome"].isin(FAILED) & chosen["error_type"].notna()]
    totals = failed.groupby(failed["error_type"].astype(str))["invocations"].sum()
    return sorted(totals.index, key=lambda name: (-int(totals[name]), name))


# --- contracts ---------------------------------------------------------------------------

CONTRACT_STATUSES = ("fail", "not checked", "pass")
CONTRACT_SHOWN = ["status", "consumer", "detail_type", "version", "check_kind", "reason",
                  "checked"]


def contract_counts(results: pd.DataFrame) -> dict[str, int]:
    """How many contract checks passed, failed and checked nothing."""
    counts = results["status"].value_counts() if "status" in results else pd.Series(dtype=int)
    return {status: int(counts.get(status, 0)) for status in CONTRACT_STATUSES}


def contract_table(results: pd.DataFrame, statuses: list[str], now_ms: int) -> pd.DataFrame:
    """One row per (consumer, type, version, check) of the chosen statuses (all when none):
    status, check, the first violation as text, when it ran ("3 min ago"); failures first."""
    chosen = results if not statuses else results[results["status"].isin(statuses)]
    order = {s: i for i, s in enumerate(CONTRACT_STATUSES)}
    chosen = chosen.assign(rank=chosen["status"].map(order)).sort_values(
        ["rank", "consumer", "detail_type", "check_kind"], kind="stable")
    shown = chosen.assign(checked=chosen["checked_ms"].map(lambda ms: ago(ms, now_ms)),
                          reason=chosen["reason"].fillna("").astype(str))
    return shown[CONTRACT_SHOWN].reset_index(drop=True)


def insights_query(request_ids: list[str]) -> str:
    """A CloudWatch Logs Insights query for these invocations' log lines (by request id)."""
    quoted = ", ".join('"' + r.replace("\\", "\\\\").replace('"', '\\"') + '"'
                       for r in request_ids)
    return (f"fields @timestamp, @requestId, @message\n| filter @requestId in [{quoted}]\n"
            "| sort @timestamp asc")
