"""`check`: every finding turned into graded `Finding`s against a small thresholds config.

Owns the `Finding` record (kind, severity, subject, summary, evidence), the thresholds file
format, and the rules that grade each analysis' output. Pure apart from `read_thresholds`,
which reads the YAML file it is given.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import yaml

from eventscope.catalog.model import Catalog
from eventscope.errors import EventscopeError
from eventscope.findings import (deprecated, duplicates, failures, lifecycle, payloads,
                                 subscriptions, undocumented)
from eventscope.findings.frames import clean, records

SEVERITIES = ("info", "warning", "error")
EXAMPLES = 5  # a final-failures finding's example events (its evidence)
LATENCY_BY = ("detail_type", "consumer")  # the grouping `latency_p95` grades
KINDS = ("undocumented_event", "schema_drift", "failure_rate", "final_failures",
         "missing_subscription", "processed_twice", "deprecated_in_use", "pii_exposure",
         "contract_failure", "latency_p95", "dead_letters")


class ConfigError(EventscopeError):
    """The thresholds file cannot be read or has a wrong key or value."""


@dataclass(frozen=True)
class Finding:
    """One graded finding; `subject` identifies it, so the same problem keeps its fingerprint."""

    kind: str
    severity: str
    subject: dict[str, Any]
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha1(self.kind.encode() + b"\0" + orjson.dumps(
            self.subject, option=orjson.OPT_SORT_KEYS)).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "subject": self.subject,
                "summary": self.summary, "evidence": self.evidence}


@dataclass(frozen=True)
class Thresholds:
    """What counts as a finding and how severe; see docs/findings.md for the YAML file."""

    fail_on: str = "error"
    failure_rate_warning: float = 0.05
    failure_rate_error: float = 0.25
    min_invocations: int = 20
    final_failures_warning: int = 1
    final_failures_error: int = 10
    undocumented_severity: str = "error"
    pii_allowed: bool = False
    sunset_grace_days: int = 30
    latency_p95_warning_ms: float = 60_000.0
    latency_p95_error_ms: float = 900_000.0
    latency_min_events: int = 20
    dead_letters_warning: int = 1  # messages in a watched dead-letter queue
    dead_letters_error: int = 100
    dead_letters_error_age_s: int = 3600  # or non-empty for this long


_YAML_KEYS = {
    ("fail_on",): "fail_on", ("failure_rate", "warning"): "failure_rate_warning",
    ("failure_rate", "error"): "failure_rate_error",
    ("failure_rate", "min_invocations"): "min_invocations",
    ("final_failures", "warning"): "final_failures_warning",
    ("final_failures", "error"): "final_failures_error",
    ("undocumented", "severity"): "undocumented_severity",
    ("pii_allowed",): "pii_allowed", ("sunset_grace_days",): "sunset_grace_days",
    ("latency_p95_ms", "warning"): "latency_p95_warning_ms",
    ("latency_p95_ms", "error"): "latency_p95_error_ms",
    ("latency_p95_ms", "min_events"): "latency_min_events",
    ("dead_letters", "warning"): "dead_letters_warning",
    ("dead_letters", "error"): "dead_letters_error",
    ("dead_letters", "error_age_s"): "dead_letters_error_age_s",
}


def parse_thresholds(document: Any, origin: str = "thresholds") -> Thresholds:
    """Thresholds from a decoded YAML document; unknown keys and wrong types are errors."""
    if document is None:
        return Thresholds()
    if not isinstance(document, dict):
        raise ConfigError(f"{origin}: expected a mapping at the top level")
    flat: dict[tuple[str, ...], Any] = {}
    for key, value in document.items():
        if isinstance(value, dict):
            flat.update({(key, inner): v for inner, v in value.items()})
        else:
            flat[(key,)] = value
    defaults = {f.name: f.default for f in fields(Thresholds)}
    values: dict[str, Any] = {}
    for path, value in flat.items():
        name = _YAML_KEYS.get(path)
        if name is None:
            raise ConfigError(f"{origin}: unknown setting {'.'.join(path)}")
        expected = type(defaults[name])
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{origin}: {'.'.join(path)} must be {expected.__name__}, "
                              f"got {value!r}")
        values[name] = value
    for name in ("fail_on", "undocumented_severity"):
        if values.get(name, "error") not in SEVERITIES:
            raise ConfigError(f"{origin}: {name} must be one of {', '.join(SEVERITIES)}")
    return Thresholds(**values)


def read_thresholds(path: str | None) -> Thresholds:
    """Thresholds from a YAML file, or the defaults when no path is given."""
    if path is None:
        return Thresholds()
    try:
        return parse_thresholds(yaml.safe_load(Path(path).read_text()), path)
    except OSError as exc:
        raise ConfigError(f"cannot read thresholds {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None


@dataclass
class CheckInputs:
    """Everything `check` grades; optional inputs left None are skipped and reported."""

    events: pd.DataFrame
    attempts: pd.DataFrame
    type_summary: pd.DataFrame
    samples: pd.DataFrame
    subscriptions: pd.DataFrame | None = None
    conformance: pd.DataFrame | None = None
    contract_results: pd.DataFrame | None = None  # consumer, detail_type, version, passed, reason
    latency: pd.DataFrame | None = None  # latency.latency(attempts, by=LATENCY_BY)


@dataclass
class CheckSummaries:
    """What `check` grades, already summarised: from raw frames (`summarise_inputs`) or from
    the store's rollups (`eventscope.findings.summaries.check_summaries`).

    `handled` is attempts-shaped (consumer, source, detail_type, version, start_ms) but may
    hold one row per consumer x event kind, `start_ms` the last start.
    """

    rates: pd.DataFrame  # failures.failure_rates
    # failures.final_failures; with `final_failure_counts` (consumer, detail_type, events),
    # only at least the EXAMPLES first tried last of every consumer x type counted there
    final_failures: pd.DataFrame
    duplicates: list[dict[str, Any]]  # duplicates.duplicates_by_consumer
    observed_missing: list[dict[str, Any]]  # subscriptions.observed_missing
    type_summary: pd.DataFrame
    handled: pd.DataFrame
    samples: pd.DataFrame
    subscriptions: pd.DataFrame | None = None
    conformance: pd.DataFrame | None = None
    contract_results: pd.DataFrame | None = None
    emitted: pd.DataFrame | None = None  # type summary for deprecated types; default above
    latency: pd.DataFrame | None = None  # latency.latency(attempts, by=LATENCY_BY)
    dead_letters: list[dict[str, Any]] | None = None  # load.load_dead_letters
    final_failure_counts: pd.DataFrame | None = None  # None: count `final_failures`' rows


def summarise_inputs(inputs: CheckInputs, catalog: Catalog | None) -> CheckSummaries:
    """The summaries `run_check_summaries` grades, computed from raw frames."""
    return CheckSummaries(
        rates=failures.failure_rates(inputs.attempts),
        final_failures=failures.final_failures(inputs.attempts),
        duplicates=duplicates.duplicates_by_consumer(inputs.attempts),
        observed_missing=subscriptions.observed_missing(
            inputs.events, inputs.attempts, lifecycle.cancellation_types(catalog)),
        type_summary=inputs.type_summary, emitted=undocumented.summarise_types(inputs.events),
        handled=inputs.attempts, samples=inputs.samples, subscriptions=inputs.subscriptions,
        conformance=inputs.conformance, contract_results=inputs.contract_results,
        latency=inputs.latency)


def at_or_above(severity: str, threshold: str) -> bool:
    return SEVERITIES.index(severity) >= SEVERITIES.index(threshold)


def run_check(inputs: CheckInputs, catalog: Catalog | None, thresholds: Thresholds,
              today: date) -> tuple[list[Finding], list[dict[str, str]]]:
    """All findings, most severe first, and the kinds skipped with the reason why."""
    return run_check_summaries(summarise_inputs(inputs, catalog), catalog, thresholds, today)


def run_check_summaries(s: CheckSummaries, catalog: Catalog | None, thresholds: Thresholds,
                        today: date) -> tuple[list[Finding], list[dict[str, str]]]:
    """`run_check` from summaries (raw or rollup): the same findings, same order."""
    found = failure_findings_from(s.rates, s.final_failures, thresholds,
                                  s.final_failure_counts)
    found += processed_twice_from(s.duplicates)
    found += missing_subscription_from(s.observed_missing, s.subscriptions, catalog)
    skipped = []
    if catalog is None:
        skipped = [{"kind": k, "reason": "no catalog given (--catalog PATH)"} for k in (
            "undocumented_event", "schema_drift", "deprecated_in_use")]
    else:
        found += _undocumented(s.type_summary, s.handled, s.samples, catalog, thresholds)
        conformance = s.conformance if s.conformance is not None \
            else undocumented.validate_samples(s.samples, catalog)
        found += drift_findings(conformance)
        found += _deprecated(deprecated.deprecated_from_summary(
            catalog, s.type_summary if s.emitted is None else s.emitted, s.handled, today),
            thresholds)
    found += _pii(s.samples, s.handled, catalog, thresholds)
    if s.contract_results is None:
        skipped.append({"kind": "contract_failure", "reason": "no contract results available"})
    else:
        found += contract_findings(s.contract_results)
    if s.latency is None:
        skipped.append({"kind": "latency_p95", "reason": "no event -> invocation latency given"})
    else:
        found += latency_findings(s.latency, thresholds)
    found += dead_letter_findings(s.dead_letters or [], thresholds)
    order = {sev: i for i, sev in enumerate(reversed(SEVERITIES))}
    found.sort(key=lambda f: (order[f.severity], f.kind, orjson.dumps(
        f.subject, option=orjson.OPT_SORT_KEYS)))
    return found, skipped


def dead_letter_findings(queues: list[dict[str, Any]], th: Thresholds) -> list[Finding]:
    """dead_letters: a watched dead-letter queue holding messages (events the tap could not
    store): a warning from `dead_letters.warning` messages, an error from
    `dead_letters.error` or once non-empty for `dead_letters.error_age_s`."""
    found = []
    for row in queues:
        count = int(row["messages"])
        severity = _grade(count, th.dead_letters_warning, th.dead_letters_error)
        stale = row.get("nonempty_for_s") or 0
        if severity and stale >= th.dead_letters_error_age_s:
            severity = "error"
        if severity:
            found.append(Finding(
                "dead_letters", severity, {"queue": row["queue"]},
                f"{count} message(s) in dead-letter queue {row['queue'].rsplit('/', 1)[-1]}"
                f" (non-empty for {stale}s): `eventscope tap redrive` moves them back",
                {k: row.get(k) for k in ("source_queue", "messages", "oldest_age_s",
                                         "nonempty_for_s", "observed_ms")}))
    return found


def _grade(value: float, warning: float, error: float) -> str | None:
    if value >= error:
        return "error"
    return "warning" if value >= warning else None


def failure_findings_from(rates: pd.DataFrame, finals: pd.DataFrame, th: Thresholds,
                          counts_given: pd.DataFrame | None = None) -> list[Finding]:
    """failure_rate per rates row; final_failures per consumer x type (counted in
    `counts_given` when given, else in `finals`), with the EXAMPLES first tried last."""
    found = []
    for row in records(rates):
        subject = {k: row[k] for k in ("consumer", "detail_type", "version")}
        severity = _grade(row["rate"], th.failure_rate_warning, th.failure_rate_error)
        if severity and row["invocations"] >= th.min_invocations:
            found.append(Finding("failure_rate", severity, subject,
                                 f"{row['consumer']} failed {row['failed']} of "
                                 f"{row['invocations']} invocations of "
                                 f"{_type_version(row['detail_type'], row['version'])} "
                                 f"({row['rate']:.1%})", row))
    newest = finals[finals["consumer"].notna() & finals["detail_type"].notna()].sort_values(
        ["first_ms", "consumer", "event_id"], ascending=[False, True, True])
    examples: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    seen: dict[tuple[Any, Any], int] = {}
    for row in records(newest):  # one conversion, not one per consumer x type
        key = (row["consumer"], row["detail_type"])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= EXAMPLES:
            examples.setdefault(key, []).append(row)
    counts = (dict(sorted(seen.items())) if counts_given is None
              else {(row.consumer, row.detail_type): int(row.events)
                    for row in counts_given.itertuples(index=False)})
    for (consumer, detail_type), count in counts.items():
        severity = _grade(count, th.final_failures_warning, th.final_failures_error)
        if severity:
            found.append(Finding(
                "final_failures", severity, {"consumer": consumer, "detail_type": detail_type},
                f"{count} {detail_type} event(s) failed every attempt in {consumer}",
                {"events": count, "examples": examples.get((consumer, detail_type), [])}))
    return found


def _type_version(detail_type: Any, version: Any) -> str:
    """`OrderPaid v2`; the type alone when the version is unknown, "no event type" without."""
    name = "no event type" if detail_type is None else str(detail_type)
    return name if version is None or detail_type is None else f"{name} v{version}"


def latency_findings(table: pd.DataFrame, th: Thresholds) -> list[Finding]:
    """latency_p95 per detail-type x consumer: p95 of event time -> first invocation, graded
    when at least `latency_min_events` events were handled."""
    found = []
    for row in records(table):
        p95 = row.get("first_p95_ms")
        if p95 is None or row["events"] < th.latency_min_events:
            continue
        severity = _grade(p95, th.latency_p95_warning_ms, th.latency_p95_error_ms)
        if severity:
            found.append(Finding(
                "latency_p95", severity,
                {"consumer": row["consumer"], "detail_type": row["detail_type"]},
                f"{row['consumer']} starts on {row['detail_type']} {p95 / 1000:.1f} s after "
                f"the event at p95 (p50 {(row['first_p50_ms'] or 0) / 1000:.1f} s, "
                f"{row['events']} events)", row))
    return found


def processed_twice_from(found: list[dict[str, Any]]) -> list[Finding]:
    return [Finding("processed_twice", "warning", {"consumer": d["consumer"]},
                    f"{d['consumer']} processed {d['processed_twice']} event(s) successfully "
                    "more than once (idempotency?)", d)
            for d in found if d["processed_twice"]]


def missing_subscription_from(observed: list[dict[str, Any]], rules: pd.DataFrame | None,
                              catalog: Catalog | None) -> list[Finding]:
    static = subscriptions.static_missing(catalog, rules) if catalog else []
    found = []
    for item in subscriptions.missing_subscriptions(static, observed):
        strong = item["evidence"] == "declarations_and_data"
        orders = item["observed"]["orders"] if item["observed"] else 0
        summary = (f"{item['consumer']} does not handle {item['detail_type']}"
                   + (f": {orders} order(s) cancelled after it handled them" if orders else "")
                   + (" (declarations and data agree)" if strong else ""))
        if item["observed"]:  # the count and examples: every order would not fit an alert
            item = {**item, "observed": {k: v for k, v in item["observed"].items()
                                         if k != "affected"}}
        found.append(Finding("missing_subscription", "error" if strong else "warning",
                             {"consumer": item["consumer"], "detail_type": item["detail_type"]},
                             summary, item))
    return found


def _undocumented(type_summary: pd.DataFrame, handled: pd.DataFrame, samples: pd.DataFrame,
                  catalog: Catalog, th: Thresholds) -> list[Finding]:
    return [Finding("undocumented_event", th.undocumented_severity,
                    {k: u[k] for k in ("source", "detail_type", "version")},
                    f"{u['detail_type']} (version {u['version']}) from {u['source']} is not in "
                    f"the catalog ({u['reason']}): {u['count']} seen", u)
            for u in undocumented.undocumented_events(type_summary, catalog, handled, samples)]


def drift_findings(conformance: pd.DataFrame) -> list[Finding]:
    return [Finding("schema_drift", "error", {k: d[k] for k in ("source", "detail_type",
                                                                "version")},
                    f"{d['failed']} of {d['checked']} checked {d['detail_type']} v{d['version']}"
                    f" payloads break their schema: {d['error']}", d)
            for d in undocumented.schema_drift(conformance)]


def _deprecated(in_use: list[dict[str, Any]], th: Thresholds) -> list[Finding]:
    found = []
    for d in in_use:
        days = d["days_to_sunset"]
        severity = "info" if days is None or days >= 0 else (
            "warning" if -days <= th.sunset_grace_days else "error")
        when = "no sunset date" if days is None else (
            f"sunset in {days} day(s)" if days >= 0 else f"{-days} day(s) past sunset")
        found.append(Finding("deprecated_in_use", severity,
                             {"source": d["source"], "detail_type": d["detail_type"]},
                             f"deprecated {d['detail_type']} still in use ({when}): "
                             f"{d['emitted']} emitted, consumers {d['consumers']}", d))
    return found


def _pii(samples: pd.DataFrame, handled: pd.DataFrame, catalog: Catalog | None,
         th: Thresholds) -> list[Finding]:
    found = []
    for row in records(payloads.pii_fields(samples, handled, catalog)):
        if row["kind"] == "declared" and not row["consumers"]:
            continue
        severity = "info" if th.pii_allowed else ("warning" if row["declared"] else "error")
        found.append(Finding("pii_exposure", severity,
                             {"detail_type": row["detail_type"], "path": row["path"]},
                             f"{row['path']} of {row['detail_type']} holds "
                             f"{'declared PII' if row['declared'] else 'undeclared ' + row['kind']}"
                             f", received by {row['consumers']}", row))
    return found


def contract_findings(results: pd.DataFrame) -> list[Finding]:
    failed = results[~results["passed"].astype(bool)]
    return [Finding("contract_failure", "error",
                    {k: clean(r[k]) for k in ("consumer", "detail_type", "version")},
                    f"{r['consumer']}'s contract for {r['detail_type']} fails: {r['reason']}",
                    {k: clean(v) for k, v in r.items()})
            for r in failed.to_dict("records")]
