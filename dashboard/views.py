"""What a dashboard page shows, derived from findings results: pure functions, no Streamlit.

Owns the time windows, the headline numbers, the small reshapes a page needs (coverage
matrix, lifecycle tables), and the safety transforms every view goes through: PII masking of
payloads and free text, size caps, and CSV cells that a spreadsheet cannot run as formulas.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import pandas as pd

from eventscope.catalog.model import Catalog
from eventscope.findings.frames import FAILED
from eventscope.findings.payloads import REDACTED, redact
from eventscope.findings.read import PRUNED_DETAIL
from eventscope.redaction import mask_pii

WINDOWS: dict[str, int | None] = {
    "all": None, "15m": 15 * 60_000, "1h": 3_600_000, "6h": 6 * 3_600_000,
    "24h": 24 * 3_600_000, "7d": 7 * 24 * 3_600_000, "30d": 30 * 24 * 3_600_000,
}
WINDOW_LABELS = {"all": "All data", "15m": "Last 15 minutes", "1h": "Last hour",
                 "6h": "Last 6 hours", "24h": "Last 24 hours", "7d": "Last 7 days",
                 "30d": "Last 30 days"}
PAYLOAD_CAP_BYTES = 64 * 1024
TEXT_CAP_CHARS = 2_000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")



@dataclass(frozen=True)
class Window:
    """A half-open time window [since_ms, until_ms) of event / invocation time, or all data."""

    since_ms: int | None
    until_ms: int | None

    @property
    def minutes(self) -> float | None:
        if self.since_ms is None or self.until_ms is None:
            return None
        return max((self.until_ms - self.since_ms) / 60_000, 1 / 60)


def window_for(name: str, latest_ms: int | None) -> Window:
    """The window called `name`, ending just after the newest event in the store."""
    span = WINDOWS.get(name)
    if span is None or latest_ms is None:
        return Window(None, None)
    until = latest_ms + 1
    return Window(until - span, until)


# --- safety -----------------------------------------------------------------------------

def csv_safe(df: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot start a spreadsheet formula (prefixed with a quote)."""
    def neutral(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(FORMULA_STARTS):
            return "'" + value
        return value
    safe = df.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(neutral)
    return safe


def csv_bytes(df: pd.DataFrame) -> bytes:
    """The table as UTF-8 CSV with formula-like cells neutralised."""
    text: str = csv_safe(df).to_csv(index=False)
    return text.encode()


def mask_text(text: Any) -> Any:
    """Free text (an error message) with what the store's redaction would replace blanked
    (e-mail addresses, Luhn-valid card numbers, phone numbers, AWS access key ids; the same
    detector, `eventscope.redaction.mask_pii`), then capped. Plain ids and timestamps stay."""
    if not isinstance(text, str):
        return text
    return mask_pii(text, REDACTED)[:TEXT_CAP_CHARS]


def mask_columns(df: pd.DataFrame, columns: tuple[str, ...], reveal: bool) -> pd.DataFrame:
    """A copy with free-text columns masked (unless revealed) and capped in length."""
    shown = df.copy()
    for column in columns:
        if column in shown:
            shown[column] = shown[column].map(
                (lambda v: v[:TEXT_CAP_CHARS] if isinstance(v, str) else v) if reveal
                else mask_text)
    return shown


def declared_pii(catalog: Catalog | None, detail_type: str) -> tuple[str, ...]:
    """The PII paths the catalog declares for a type (dotted paths from `detail`)."""
    if catalog is None:
        return ()
    declared = catalog.event_type(detail_type)
    return declared.pii_fields if declared else ()


def shown_payload(detail: str | None, declared: tuple[str, ...], reveal: bool,
                  cap: int = PAYLOAD_CAP_BYTES) -> tuple[str, Any]:
    """("json", value) to show with st.json, or ("text", str) when not JSON.

    Masked first (unless `reveal`), whatever the size: declared fields whole, detected values
    where they stand (`payloads.redact`, the store's detector). Then cut per field
    (`cut_fields`: long strings, long lists, objects with many members, each with a marker) so
    one huge field never hides the rest; a payload still over `cap` after that, or text that
    is not JSON, is shown as its first `cap` characters, marked truncated.
    """
    if detail is None:
        return "text", "(payload not stored)"
    if detail == PRUNED_DETAIL:
        return "text", "(payload pruned: older than the payloads this store keeps)"
    try:
        value = orjson.loads(detail)
    except orjson.JSONDecodeError:
        return "text", _truncated(detail if reveal else mask_pii(detail, REDACTED), cap)
    if not reveal:
        value = (redact(value, declared) if isinstance(value, dict)
                 else payloads_masked(value))
    value = cut_fields(value)
    if len(detail) > cap and len(shown := orjson.dumps(value).decode()) > cap:
        return "text", _truncated(shown, cap)
    return "json", value


FIELD_CAP_CHARS = 2_000
ITEMS_CAP = 100


def payloads_masked(value: Any) -> Any:
    """A JSON value that is not an object (a list, a scalar) masked as `redact` masks one."""
    masked: dict[str, Any] = redact({"value": value})
    return masked["value"]


def cut_fields(value: Any, field_cap: int = FIELD_CAP_CHARS, items_cap: int = ITEMS_CAP) -> Any:
    """A JSON value with each long string cut to `field_cap` characters and each list or
    object cut to `items_cap` members, every cut saying what it left out; the rest intact."""
    if isinstance(value, str):
        if len(value) <= field_cap:
            return value
        return f"{value[:field_cap]}… [cut: {len(value):,} characters, first {field_cap:,} shown]"
    if isinstance(value, list):
        kept = [cut_fields(v, field_cap, items_cap) for v in value[:items_cap]]
        more = len(value) - items_cap
        return kept + [f"… [cut: {more:,} more items]"] if more > 0 else kept
    if isinstance(value, dict):
        members = list(value.items())
        shown = {k: cut_fields(v, field_cap, items_cap) for k, v in members[:items_cap]}
        if len(members) > items_cap:
            shown["…"] = f"[cut: {len(members) - items_cap:,} more fields]"
        return shown
    return value


def _truncated(text: str, cap: int) -> str:
    if len(text) <= cap:
        return text
    return f"{text[:cap]}\n… truncated: {len(text):,} bytes, first {cap:,} shown"


# --- headline numbers and reshapes --------------------------------------------------------

def headline(totals: pd.DataFrame, calls: pd.DataFrame, handling: pd.DataFrame,
             window: Window, undocumented: int | None, missing: int,
             contract_failures: int | None) -> dict[str, Any]:
    """The overview's numbers for one window, from the event totals per kind and the
    invocation counts and handling totals (`data.call_counts`): the sums `failure_rates`
    would give, without its duration percentiles."""
    events = int(totals["count"].sum()) if not totals.empty else 0
    counted = failure_counts(calls)
    invocations, failed = int(counted["invocations"].sum()), int(counted["failed"].sum())
    attributed = handling[handling["detail_type"].notna()]
    minutes = window.minutes
    if minutes is None and events:
        minutes = max((totals["last_ms"].max() - totals["first_ms"].min()) / 60_000, 1.0)
    return {
        "events": events,
        "events_per_min": round(events / minutes, 2) if minutes else 0.0,
        "consumers": int(calls["consumer"].nunique()),
        "invocations": invocations,
        "failure_rate": failed / invocations if invocations else 0.0,
        "final_failures": int(attributed["final_failures"].sum()),
        "undocumented_types": undocumented,
        "missing_subscriptions": missing,
        "contract_failures": contract_failures,
    }


def failure_counts(calls: pd.DataFrame) -> pd.DataFrame:
    """Invocation counts (`data.call_counts`) with `failed`: the invocations that failed."""
    return calls.assign(failed=calls["invocations"].where(calls["outcome"].isin(FAILED), 0))


def events_per_minute(series: pd.DataFrame) -> pd.DataFrame:
    """Events per minute x detail-type, averaged over each bucket of a bucketed event-totals
    frame (`bucket_ms`, `bucket_minutes`, `detail_type`, `count`): minute (the bucket's start,
    datetime), detail_type, events (per minute)."""
    if series.empty:
        return pd.DataFrame(columns=["minute", "detail_type", "events"])
    summed = series.groupby(["bucket_ms", "detail_type"], dropna=False)["count"].sum()\
        .reset_index()
    summed["events"] = (summed["count"] / series["bucket_minutes"].iloc[0]).round(2)
    summed["minute"] = pd.to_datetime(summed["bucket_ms"], unit="ms", utc=True)
    return summed[["minute", "detail_type", "events"]]


def failure_matrix(rates: pd.DataFrame) -> pd.DataFrame:
    """Consumer x event type failure rate over all versions (rows consumers, columns types)."""
    attributed = rates[rates["detail_type"].notna()]
    if attributed.empty:
        return pd.DataFrame()
    summed = attributed.groupby(["consumer", "detail_type"])[["failed", "invocations"]].sum()
    summed["rate"] = summed["failed"] / summed["invocations"]
    return summed["rate"].unstack("detail_type").sort_index()


def selection_rates(bucketed: pd.DataFrame, consumer: str | None,
                    detail_type: str | None) -> pd.DataFrame:
    """Failures per time bucket for a consumer and/or type: bucket (datetime), invocations,
    failed."""
    chosen = bucketed
    if consumer:
        chosen = chosen[chosen["consumer"] == consumer]
    if detail_type:
        chosen = chosen[chosen["detail_type"] == detail_type]
    summed = chosen.groupby("bucket_ms")[["invocations", "failed"]].sum().reset_index()
    summed["bucket"] = pd.to_datetime(summed["bucket_ms"], unit="ms", utc=True)
    return summed[["bucket", "invocations", "failed"]]


def lifecycle_table(lifecycle: dict[str, Any]) -> pd.DataFrame:
    """One row per event of an order, one column per consumer holding its outcome."""
    rows = []
    for step in lifecycle["events"]:
        row = {"time": pd.to_datetime(step["time_ms"], unit="ms", utc=True), "event_id": step["id"],
               "source": step["source"], "detail_type": step["detail_type"],
               "version": step["version"]}
        row.update({c["consumer"]: c["outcome"] for c in step["consumers"]})
        rows.append(row)
    return pd.DataFrame(rows)


def lifecycle_attempts(lifecycle: dict[str, Any]) -> pd.DataFrame:
    """Every invocation of the order's events: event, consumer, attempt number, outcome, error."""
    rows = []
    for step in lifecycle["events"]:
        for consumer in step["consumers"]:
            for number, attempt in enumerate(consumer["attempts"], start=1):
                rows.append({"event_id": step["id"], "detail_type": step["detail_type"],
                             "consumer": consumer["consumer"], "attempt": number,
                             "start": pd.to_datetime(attempt["start_ms"], unit="ms", utc=True),
                             "outcome": attempt["outcome"],
                             "duration_ms": attempt["duration_ms"],
                             "error_type": attempt["error_type"],
                             "error_message": attempt["error_message"],
                             "request_id": attempt["request_id"]})
    return pd.DataFrame(rows, columns=["event_id", "detail_type", "consumer", "attempt", "start",
                                       "outcome", "duration_ms", "error_type", "error_message",
                                       "request_id"])


def coverage_matrix(catalog: Catalog | None, attempts: pd.DataFrame,
                    missing: list[dict[str, Any]]) -> pd.DataFrame:
    """Consumers x lifecycle event types: 'subscribed+handled', 'subscribed', 'handled',
    'missing' (a cancellation it should listen to) or '' (not its business)."""
    if catalog is None or not catalog.lifecycles:
        return pd.DataFrame()
    types = list(dict.fromkeys(t for lc in catalog.lifecycles for t in lc.all_types))
    handled = attempts[attempts["detail_type"].isin(types)].groupby("consumer")["detail_type"]\
        .agg(set).to_dict()
    declared = {c.name: {s.detail_type for s in c.subscriptions} for c in catalog.consumers}
    gaps = {(m["consumer"], m["detail_type"]) for m in missing}
    names = sorted(set(declared) | set(handled) | {c for c, _ in gaps})
    rows = {}
    for name in names:
        cells = {}
        for detail_type in types:
            sub = detail_type in declared.get(name, set())
            seen = detail_type in handled.get(name, set())
            cells[detail_type] = ("missing" if (name, detail_type) in gaps else
                                  "subscribed+handled" if sub and seen else
                                  "subscribed" if sub else "handled" if seen else "")
        rows[name] = cells
    return pd.DataFrame.from_dict(rows, orient="index", columns=types)


MISSING_COLUMNS = ["consumer", "team", "channel", "detail_type", "lifecycle", "evidence",
                   "declared_gap_in", "orders_affected", "example_orders", "subscribed_to"]


def missing_table(missing: list[dict[str, Any]], catalog: Catalog | None = None
                  ) -> pd.DataFrame:
    """Missing-subscription findings flattened: consumer, its team and channel (from the
    catalog), type, lifecycle, evidence, where the declarations lack it (catalog, bus_rules),
    orders affected, what it does subscribe to."""
    from eventscope.findings.triage import contact_of
    contacts = [contact_of(m, catalog) for m in missing]
    rows = [{"consumer": m["consumer"], "team": team, "channel": channel,
             "detail_type": m["detail_type"],
             "lifecycle": m["lifecycle"], "evidence": m["evidence"],
             "declared_gap_in": ", ".join((m["static"] or {}).get("views", [])),
             "orders_affected": (m["observed"] or {}).get("orders", 0),
             "example_orders": ", ".join((m["observed"] or {}).get("examples", [])),
             "subscribed_to": ", ".join((m["static"] or {}).get("subscribed_to", []))}
            for m, (team, channel) in zip(missing, contacts)]
    return pd.DataFrame(rows, columns=MISSING_COLUMNS)


LATENCY_SHOWN = ["detail_type", "consumer", "events", "first_p50_ms", "first_p95_ms",
                 "success_p50_ms", "success_p95_ms", "skewed"]


def latency_table(latency: pd.DataFrame, consumer: str | None = None,
                  detail_type: str | None = None) -> pd.DataFrame:
    """Latency per (event type, consumer) pair (`latency.latency_by_pair`) as shown: event
    time -> first invocation and -> first success, p50 / p95 in ms, of one consumer / type
    when chosen."""
    return only(latency, consumer, detail_type)[LATENCY_SHOWN].reset_index(drop=True)


def failed_share(attempts: pd.DataFrame) -> float:
    """Failed invocations as a share of all (0 when there are none)."""
    return float(attempts["outcome"].isin(FAILED).mean()) if len(attempts) else 0.0


CARRIED = ("env", "window")
"""The query parameters every link carries: the environment and time window the user chose."""


def carried_state(params: Mapping[str, str]) -> dict[str, str]:
    """The carried parameters (environment, window) among a page's query parameters."""
    return {name: params[name] for name in CARRIED if params.get(name)}


def page_url(page: str, carried: Mapping[str, str] | None = None, **params: str | None) -> str:
    """A relative link to a dashboard page: the carried state (environment, window) plus the
    page's own parameters, URL-encoded; empty parameters are left out."""
    from urllib.parse import urlencode
    values = {**carried_state(carried or {}),
              **{name: str(value) for name, value in params.items() if value}}
    return page + ("?" + urlencode(values) if values else "")


def lifecycle_link(key: str, carried: Mapping[str, str] | None = None) -> str:
    """A relative link to the order lifecycle page for a correlation key or event id."""
    return page_url("lifecycle", carried, order=str(key))


def contract_totals(results: pd.DataFrame) -> str:
    """One line of totals: how many checks passed, failed, and checked nothing."""
    counts = results["status"].value_counts() if "status" in results else pd.Series(dtype=int)
    return ", ".join(f"{int(counts.get(status, 0)):,} {label}" for status, label in
                     (("pass", "passed"), ("fail", "failed"), ("not checked", "not checked")))


DEAD_LETTER_COLUMNS = {"queue": "dead-letter queue", "source_queue": "tap queue",
                       "messages": "messages", "oldest_age_s": "oldest message (s)",
                       "nonempty_for_s": "not empty for (s)", "sample_age_s": "sampled (s ago)"}


def dead_letter_state(rows: list[dict[str, Any]]) -> tuple[str, str]:
    """What the overview says of the dead-letter queues: (kind, message), kind one of
    `none` (never sampled), `waiting` (messages not in the store) and `empty`."""
    if not rows:
        return "none", ("No dead-letter queue sampled yet: `eventscope collect tap` (and "
                        "`collect all`) record the tap's dead-letter queue depth every minute.")
    waiting = sum(int(row["messages"]) for row in rows)
    if waiting:
        return "waiting", (f"{waiting:,} messages wait in dead-letter queues: these events are "
                           "not in the store. Move them back with `eventscope tap redrive "
                           "--bus BUS`.")
    return "empty", "Dead-letter queues are empty."


def dead_letter_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The dead-letter queues' latest samples (`read.dead_letters`), named for people."""
    return pd.DataFrame(rows, columns=list(DEAD_LETTER_COLUMNS)).rename(
        columns=DEAD_LETTER_COLUMNS)


def contract_failures(results: pd.DataFrame | None) -> int | None:
    """Failed contract checks in a contract results table (None without results)."""
    if results is None:
        return None
    if "passed" in results:
        return int((~results["passed"].astype(bool)).sum())
    if "status" in results:
        return int((results["status"].astype(str).str.lower().isin(["fail", "failed"])).sum())
    return None


# --- page-specific reshapes ---------------------------------------------------------------

def selected_point(selection: Any) -> str | None:
    """The customdata (a node id) of the first selected point of a plotly_chart event."""
    try:
        points = selection["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for point in points:
        value = point.get("customdata")
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, str):
            return value
    return None


def node_details(graph: dict[str, Any], node_id: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """A node's attributes and its edges (neighbour, direction, status, volume, failures)."""
    node = next((n for n in graph["nodes"] if n["id"] == node_id), None)
    rows = []
    for edge in graph["edges"]:
        if node_id not in (edge["source"], edge["target"]):
            continue
        outgoing = edge["source"] == node_id
        count, failed = edge.get("count") or 0, edge.get("failed") or 0
        rows.append({"direction": "to" if outgoing else "from",
                     "neighbour": edge["target"] if outgoing else edge["source"],
                     "status": edge["status"], "count": count, "failed": failed,
                     "failure_rate": failed / count if count else None,
                     "last_seen": None if edge.get("last_seen_ms") is None else
                     pd.to_datetime(edge["last_seen_ms"], unit="ms", utc=True),
                     "rules": ", ".join(edge.get("rules") or [])})
    return (node or {}), pd.DataFrame(rows, columns=["direction", "neighbour", "status", "count",
                                                     "failed", "failure_rate", "last_seen",
                                                     "rules"])


def type_versions(catalog: Catalog | None, detail_type: str) -> list[dict[str, Any]]:
    """The catalog's versions of a type with their schemas (empty without a catalog)."""
    declared = catalog.event_type(detail_type) if catalog else None
    if declared is None:
        return []
    return [{"version": v.version, "schema": v.schema, "examples": list(v.examples)}
            for v in declared.versions]


def only(df: pd.DataFrame, consumer: str | None = None,
         detail_type: str | None = None) -> pd.DataFrame:
    """Rows of one consumer and/or one detail-type."""
    if consumer:
        df = df[df["consumer"] == consumer]
    if detail_type:
        df = df[df["detail_type"] == detail_type]
    return df


def bucket_ms_for(window: Window, first_ms: int | None = None,
                  last_ms: int | None = None) -> int:
    """A whole-minute time bucket giving at most ~300 points over the window (or, for all
    data, over the data's span from `first_ms` to `last_ms`)."""
    if window.since_ms is not None and window.until_ms is not None:
        span = window.until_ms - window.since_ms
    else:
        span = int(last_ms - first_ms) if first_ms is not None and last_ms is not None \
            and not pd.isna(first_ms) and not pd.isna(last_ms) else 0
    for bucket in (60_000, 300_000, 900_000, 3_600_000, 6 * 3_600_000, 86_400_000):
        if span <= bucket * 300:
            return bucket
    return 7 * 86_400_000


def with_lifecycle_links(df: pd.DataFrame, column: str,
                         carried: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The table with a `lifecycle` column linking each row's id to the order lifecycle page
    (in the same environment and window)."""
    return df.assign(lifecycle=[lifecycle_link(v, carried) if isinstance(v, str) else None
                                for v in df[column]])


def times(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Millisecond columns shown as UTC datetimes."""
    shown = df.copy()
    for column in columns:
        if column in shown:
            shown[column] = pd.to_datetime(shown[column], unit="ms", utc=True)
    return shown


def owner_to_notify(catalog: Catalog, source: str, detail_type: str) -> str | None:
    """The owner of the type, else the owner of another type the same source emits."""
    declared = catalog.event_type(detail_type, source)
    if declared is not None:
        return declared.owner
    return next((t.owner for t in catalog.event_types if t.source == source), None)


def undocumented_table(found: list[dict[str, Any]], catalog: Catalog) -> pd.DataFrame:
    """Undocumented kinds as rows, with the owner to notify and first/last seen."""
    rows = [{"source": f["source"], "detail_type": f["detail_type"], "version": f["version"],
             "reason": f["reason"], "count": f["count"],
             "owner_to_notify": owner_to_notify(catalog, f["source"], f["detail_type"]),
             "first_seen": f["first_ms"], "last_seen": f["last_ms"],
             "consumers": ", ".join(f["consumers"]),
             "sample_event_id": (f["sample"] or {}).get("event_id")} for f in found]
    table = pd.DataFrame(rows, columns=["source", "detail_type", "version", "reason", "count",
                                        "owner_to_notify", "first_seen", "last_seen",
                                        "consumers", "sample_event_id"])
    return times(table, "first_seen", "last_seen")


def kinds_table(totals: pd.DataFrame) -> pd.DataFrame:
    """Event totals per kind as shown: source, type, version, count, first/last, max size."""
    return totals[["source", "detail_type", "version", "count", "first_ms", "last_ms",
                   "max_size_bytes"]]


def example_kinds(table: pd.DataFrame, column: str) -> dict[str, str]:
    """{example event id: its detail-type} for the rows of a findings table that have one."""
    return {i: t for i, t in zip(table[column], table["detail_type"]) if isinstance(i, str)}


def recent_keys(events: pd.DataFrame, limit: int = 20) -> pd.DataFrame:
    """The most recently active correlation keys: key, events, last event time."""
    keyed = events[events["correlation_key"].notna()]
    summary = keyed.groupby("correlation_key").agg(events=("id", "size"),
                                                   last_ms=("time_ms", "max")).reset_index()
    summary = summary.sort_values("last_ms", ascending=False).head(limit)
    return times(summary, "last_ms").rename(columns={"last_ms": "last_event"})


def catalog_table(catalog: Catalog, today: Any) -> pd.DataFrame:
    """Every catalogued event type: owner, status, compatibility, versions, sunset countdown."""
    rows = [{"detail_type": t.detail_type, "source": t.source, "owner": t.owner,
             "status": t.status, "compatibility": t.compatibility,
             "versions": ", ".join(v.version for v in t.versions),
             "pii_fields": ", ".join(t.pii_fields),
             "sunset": t.sunset.isoformat() if t.sunset else None,
             "days_to_sunset": (t.sunset - today).days if t.sunset else None,
             "replacement": t.replacement} for t in catalog.event_types]
    return pd.DataFrame(rows)


def listed(items: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """Findings (list of dicts) as a table; list cells joined into text."""
    rows = [{c: _cell(item.get(c)) for c in columns} for item in items]
    return pd.DataFrame(rows, columns=columns)


def _cell(value: Any) -> Any:
    return ", ".join(map(str, value)) if isinstance(value, list) else value


def pii_table(pii: pd.DataFrame) -> pd.DataFrame:
    """PII field findings with the receiving consumers as text."""
    return pii.assign(consumers=[", ".join(c) for c in pii["consumers"]])


def gaps_table(lifecycle: dict[str, Any]) -> pd.DataFrame:
    """The order's gaps: missing lifecycle steps and missed cancellations."""
    return pd.DataFrame(lifecycle["gaps"], columns=["kind", "lifecycle", "detail_type",
                                                    "consumer", "event_id"])
