"""What is wrong now: `check`'s findings over a window, ranked, each with the team that owns
it (and its channel), the page and filter that explain it, and its trend against the window
just before; and one state per finding kind (the overview's tiles).

Owns the store-level check both faces run (`store_check`: `eventscope check` over the whole
store, the dashboard's overview over its window), who owns a finding (`owner`), where it is
explained (`explained_by`), what its trend counts (`trend_series`, `trend`) and each kind's
state (`kind_states`). Pure apart from `store_check`, which reads the store's rollups.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from eventscope.alerts import team_of
from eventscope.catalog.model import Catalog
from eventscope.findings import summaries
from eventscope.findings.check import KINDS, Finding, Thresholds, run_check_summaries
from eventscope.findings.frames import FAILED

KIND_NAMES = {
    "failure_rate": "Failing consumers", "final_failures": "Final failures",
    "undocumented_event": "Undocumented types", "schema_drift": "Schema drift",
    "missing_subscription": "Missing subscriptions", "processed_twice": "Duplicates",
    "deprecated_in_use": "Deprecated in use", "pii_exposure": "PII exposure",
    "contract_failure": "Contract failures", "latency_p95": "Slow consumers",
    "dead_letters": "Dead letters",
}
"""A short name per finding kind (a tile's label), in `check.KINDS` order."""

KIND_UNITS = {
    "failure_rate": "pairs failing too often",
    "final_failures": "events never processed",
    "undocumented_event": "kinds not in catalog",
    "schema_drift": "versions off schema",
    "missing_subscription": "types not listened to",
    "processed_twice": "events processed twice",
    "deprecated_in_use": "deprecated, still in use",
    "pii_exposure": "fields holding PII",
    "contract_failure": "failing contract checks",
    "latency_p95": "pairs slow at p95",
    "dead_letters": "messages not stored",
}
"""What a tile's number counts (its caption), short enough for a tile: the findings, or for
the kinds in `KIND_TOTALS` the sum of that evidence field over them."""
KIND_TOTALS = {"final_failures": "events", "processed_twice": "processed_twice",
               "dead_letters": "messages"}

TREND_OF = {
    "failure_rate": "failed invocations", "final_failures": "failed invocations",
    "latency_p95": "invocations", "processed_twice": "invocations",
    "undocumented_event": "events of the type", "schema_drift": "events of the type",
    "deprecated_in_use": "events of the type", "pii_exposure": "events of the type",
    "missing_subscription": "events of the type",
}
"""What a finding's trend counts per time bucket; kinds not named have no time series."""

RANK = {"error": 0, "warning": 1, "info": 2}
STATE_OF = {"error": "bad", "warning": "warn", "info": "ok"}
SPARK_POINTS = 24  # points per window in a sparkline


def store_check(engine: Engine, catalog: Catalog | None, subscriptions: pd.DataFrame | None,
                contract_results: pd.DataFrame | None, latency: pd.DataFrame | None,
                thresholds: Thresholds, today: date, since_ms: int | None = None,
                until_ms: int | None = None, latest_cancellations: int | None = None
                ) -> tuple[list[Finding], list[dict[str, str]]]:
    """`check`'s findings (most severe first) and the kinds skipped with their reason, over
    the store or the window [since_ms, until_ms), read from the rollups: what `eventscope
    check` prints and the dashboard's overview ranks (missing subscriptions seen in the
    data: among the latest `latest_cancellations` cancellations when given)."""
    inputs = replace(summaries.check_summaries(engine, catalog, subscriptions, since_ms,
                                               until_ms, latest_cancellations),
                     contract_results=contract_results, latency=latency)
    return run_check_summaries(inputs, catalog, thresholds, today)


def owner(finding: Finding, catalog: Catalog | None) -> tuple[str | None, str | None]:
    """(team, channel): the team a finding is addressed to (`alerts.team_of`: the
    consumer's team, else the type's owner) and its Slack channel, else its e-mail, when the
    catalog's `teams` has one."""
    return contact_of(finding.subject, catalog)


def contact_of(subject: Mapping[str, Any], catalog: Catalog | None
               ) -> tuple[str | None, str | None]:
    """(team, channel) of a finding's subject (consumer, detail_type, source): see `owner`."""
    team = team_of(subject, catalog)
    if team is None or catalog is None:
        return team, None
    contact = catalog.teams.get(team) or {}
    channel = contact.get("slack") or contact.get("channel") or contact.get("email")
    return team, None if channel is None else str(channel)


def explained_by(finding: Finding) -> tuple[str, dict[str, str]]:
    """(page, query parameters): the dashboard page and filter that explain a finding."""
    subject = {k: "" if v is None else str(v) for k, v in finding.subject.items()}
    consumer, detail_type = subject.get("consumer", ""), subject.get("detail_type", "")
    kind = finding.kind
    if kind in ("failure_rate", "final_failures", "latency_p95"):
        return "failures", {"consumer": consumer, "type": detail_type}
    if kind == "missing_subscription":
        return "subscriptions", {"consumer": consumer, "type": detail_type}
    if kind in ("undocumented_event", "schema_drift"):
        return "undocumented", {"type": detail_type}
    if kind == "processed_twice":
        return "contracts", {"view": "duplicates", "consumer": consumer}
    if kind == "deprecated_in_use":
        return "contracts", {"view": "deprecations", "type": detail_type}
    if kind == "pii_exposure":
        return "contracts", {"view": "pii", "type": detail_type}
    if kind == "contract_failure":
        return "contracts", {"view": "results", "status": "fail", "consumer": consumer}
    return "overview", {}


def trend_series(finding: Finding, calls: pd.DataFrame, events: pd.DataFrame
                 ) -> pd.Series | None:
    """What the finding's trend counts, per time bucket (index `bucket_ms`): from bucketed
    invocation counts (`consumer` mapped to catalog consumers; consumer, detail_type,
    outcome, invocations, bucket_ms) or bucketed event totals (detail_type, count,
    bucket_ms); None for kinds that are no time series (contracts, dead letters)."""
    what = TREND_OF.get(finding.kind)
    if what is None:
        return None
    subject = finding.subject
    if what == "events of the type":
        chosen = events[events["detail_type"] == subject.get("detail_type")]
        return chosen.groupby("bucket_ms")["count"].sum()
    chosen = calls[calls["consumer"] == subject.get("consumer")]
    if "detail_type" in subject:
        chosen = chosen[chosen["detail_type"] == subject["detail_type"]]
    if what == "failed invocations":
        chosen = chosen[chosen["outcome"].isin(FAILED)]
    return chosen.groupby("bucket_ms")["invocations"].sum()


@dataclass(frozen=True)
class Trend:
    """A finding's counts in the window and in the window just before (None: no previous
    window, i.e. all data), and a sparkline over both (`SPARK_POINTS` points each)."""

    current: int
    previous: int | None
    spark: list[float]


def trend(series: pd.Series, since_ms: int | None, until_ms: int | None,
          first_ms: int | None = None) -> Trend:
    """The series summed over [since_ms, until_ms) and over the window of the same length just
    before, with a sparkline across both; for all data (no window), the whole series from
    `first_ms` (its first bucket when not given), with no previous window."""
    values = series.astype("int64")
    stamps = values.index.to_numpy(dtype="int64")
    if since_ms is None or until_ms is None:
        start = int(first_ms if first_ms is not None else (stamps.min() if len(stamps) else 0))
        end = int(stamps.max()) + 1 if len(stamps) else start + 1
        return Trend(int(values.sum()), None, _spark(values, start, end, SPARK_POINTS))
    span = until_ms - since_ms
    now = values[(stamps >= since_ms) & (stamps < until_ms)]
    before = values[(stamps >= since_ms - span) & (stamps < since_ms)]
    return Trend(int(now.sum()), int(before.sum()),
                 _spark(values, since_ms - span, until_ms, 2 * SPARK_POINTS))


def _spark(values: pd.Series, start: int, end: int, points: int) -> list[float]:
    """The series summed into `points` equal slices of [start, end)."""
    stamps = values.index.to_numpy(dtype="int64")
    inside = (stamps >= start) & (stamps < end)
    slots = ((stamps[inside] - start) * points // max(end - start, 1)).astype("int64")
    summed = np.bincount(slots, weights=values.to_numpy()[inside].astype(float),
                         minlength=points)
    return [float(v) for v in summed[:points]]


def trend_words(found: Trend) -> str:
    """The trend in a few words: "new", "gone quiet", "+35 % vs before", "steady"."""
    if found.previous is None:
        return "all data"
    now, before = found.current, found.previous
    if now == before:
        return "steady" if now else "none in either window"
    if before == 0:
        return "new in this window"
    if now == 0:
        return "quiet in this window"
    change = (now - before) / before
    if abs(change) < 0.05:
        return "steady"
    return f"{'+' if change > 0 else '−'}{abs(change):.0%} vs before".replace("%", " %")


def ranked(found: list[Finding], catalog: Catalog | None, calls: pd.DataFrame,
           events: pd.DataFrame, since_ms: int | None, until_ms: int | None,
           first_ms: int | None = None) -> list[dict[str, Any]]:
    """One row per finding, in `check`'s order (most severe first): severity, kind, subject,
    reason (the finding's summary), team, channel, the page and filter that explain it, and
    its trend (counted in the window, in the window before, sparkline, words)."""
    rows = []
    for finding in sorted(found, key=lambda f: RANK[f.severity]):
        team, channel = owner(finding, catalog)
        page, params = explained_by(finding)
        series = trend_series(finding, calls, events)
        shown = None if series is None else trend(series, since_ms, until_ms, first_ms)
        rows.append({"severity": finding.severity, "kind": finding.kind,
                     "finding": KIND_NAMES.get(finding.kind, finding.kind),
                     "subject": finding.subject, "reason": finding.summary,
                     "team": team, "channel": channel, "page": page, "params": params,
                     "trend_of": TREND_OF.get(finding.kind),
                     "now": None if shown is None else shown.current,
                     "before": None if shown is None else shown.previous,
                     "spark": None if shown is None else shown.spark,
                     "trend": "no time series" if shown is None else trend_words(shown),
                     "fingerprint": finding.fingerprint})
    return rows


def kind_states(found: list[Finding], skipped: list[dict[str, str]]
                ) -> list[dict[str, Any]]:
    """One entry per finding kind `check` grades (`check.KINDS`, in `KIND_NAMES` order): its
    name, its number (`KIND_TOTALS`' evidence sum, else the findings), its state (bad: an
    error; warn: a warning; ok: nothing, or notes only; skipped: not checked, with the
    reason) and what the number counts."""
    reasons = {s["kind"]: s["reason"] for s in skipped}
    states = []
    for kind in [*KIND_NAMES, *(k for k in KINDS if k not in KIND_NAMES)]:
        mine = [f for f in found if f.kind == kind]
        worst = min((RANK[f.severity] for f in mine), default=RANK["info"])
        state = ("skipped" if kind in reasons and not mine
                 else STATE_OF[next(s for s, r in RANK.items() if r == worst)])
        total = KIND_TOTALS.get(kind)
        number = (sum(int(f.evidence.get(total) or 0) for f in mine) if total
                  else len(mine))
        states.append({"kind": kind, "name": KIND_NAMES.get(kind, kind), "count": number,
                       "findings": len(mine), "state": state,
                       "unit": KIND_UNITS.get(kind, "findings"),
                       "reason": reasons.get(kind)})
    return states


_VARIABLE_PARTS = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
     "<uuid>"),
    (re.compile(r"\b(?:0x)?[0-9a-f]*\d[0-9a-f]*\b(?<=\w{8})", re.I), "<hex>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
)


def message_fingerprint(message: object) -> str:
    """An error message with its variable parts (uuids, long hex ids, numbers) replaced, so
    messages that differ only by an id or a count fall in one group ("(no message)" for
    none: None, NaN or empty)."""
    if not isinstance(message, str) or not message:
        return "(no message)"
    text = message[:500]
    for pattern, placeholder in _VARIABLE_PARTS:
        text = pattern.sub(placeholder, text)
    return text


def message_groups(invocations: pd.DataFrame) -> pd.DataFrame:
    """Failed invocations (error_message, start_ms) grouped by message fingerprint: the
    fingerprint, how many, first and last start, the newest message as an example; most
    frequent first."""
    columns = ["fingerprint", "count", "first_ms", "last_ms", "example"]
    if invocations.empty:
        return pd.DataFrame(columns=columns)
    keyed = invocations.assign(
        fingerprint=invocations["error_message"].map(message_fingerprint)
    ).sort_values("start_ms", ascending=False)
    grouped = keyed.groupby("fingerprint", sort=False).agg(
        count=("start_ms", "size"), first_ms=("start_ms", "min"), last_ms=("start_ms", "max"),
        example=("error_message", "first")).reset_index()
    return grouped.sort_values(["count", "last_ms"], ascending=False)[columns]\
        .reset_index(drop=True)
