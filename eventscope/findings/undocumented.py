"""Undocumented events (seen on the bus, absent from the catalog) and schema drift.

An event kind is (source, detail-type, version). It is undocumented when the catalog has no
such type for that source, or the type declares versions and not this one (the version read
by the type's `version-from`; an event without one is the type's default or only version,
never undocumented for lacking one). Schema drift is a
catalogued version whose payloads fail its schema: computed from conformance rows (the
catalog's live conformance, or `validate_samples` over sampled payloads). Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd

from eventscope.catalog.model import Catalog, EventType
from eventscope.events import DEFAULT_VERSION_FROM, VERSION_FROM_NONE, VERSION_FROM_SUFFIX
from eventscope.findings.frames import CONFORMANCE_COLUMNS, clean
from eventscope.findings.payloads import redact


def summarise_types(events: pd.DataFrame) -> pd.DataFrame:
    """The per-kind summary `load.load_type_summary` computes in SQL, from an events frame."""
    return events.groupby(["source", "detail_type", "version"], dropna=False).agg(
        count=("id", "size"), first_ms=("time_ms", "min"), last_ms=("time_ms", "max"),
        max_size_bytes=("size_bytes", "max")).reset_index()


def why_undocumented(catalog: Catalog, source: str, detail_type: str,
                     version: str | None, detail: Any = None) -> str | None:
    """'unknown_type', 'unknown_version', or None when the catalog documents the kind.

    `version` is the stored one; `detail` (a sample's, when known) lets a type whose
    `version-from` is not `detail.version` read its own. An event without a version is the
    type's default or only version.
    """
    declared, _ = catalog.event_type_of(source, detail_type)
    if declared is None:
        return "unknown_type"
    if not declared.versions:
        return None
    return None if declared.version(catalog_version(declared, detail_type, version, detail)
                                    or "") else "unknown_version"


def catalog_version(declared: EventType, detail_type: str, stored: str | None,
                    detail: Any = None) -> str | None:
    """The catalog version of an event of a declared type, from its stored version or detail.

    Events stored without the catalog carry `detail.version` (an ECS task's revision, say), so
    a type reading its version elsewhere reads it again, from the detail when it is known.
    """
    rule = declared.version_rule
    if rule.version_from in (VERSION_FROM_NONE, VERSION_FROM_SUFFIX):
        return rule.version(None, detail_type)
    if rule.version_from == DEFAULT_VERSION_FROM:
        return stored or rule.default
    if detail is not None:
        return rule.version(detail, detail_type)
    return stored if stored is not None and declared.version(stored) else rule.default


def undocumented_events(summary: pd.DataFrame, catalog: Catalog, attempts: pd.DataFrame,
                        samples: pd.DataFrame) -> list[dict[str, Any]]:
    """Every undocumented kind with counts, first/last seen, consumers and a redacted sample."""
    found = []
    for row in summary.to_dict("records"):
        row = {k: clean(v) for k, v in row.items()}
        reason = why_undocumented(catalog, row["source"], row["detail_type"], row["version"],
                                  _sample_detail(samples, row) if _reads_detail(catalog, row)
                                  else None)
        if reason is None:
            continue
        found.append({**row, "reason": reason,
                      "consumers": _consumers(attempts, row),
                      "sample": _sample(samples, row)})
    return sorted(found, key=lambda r: (-r["count"], r["source"], r["detail_type"]))


def _same_kind(frame: pd.DataFrame, kind: dict[str, Any]) -> pd.Series:
    version = frame["version"].isna() if kind["version"] is None \
        else frame["version"] == kind["version"]
    return (frame["source"] == kind["source"]) & (frame["detail_type"] == kind["detail_type"]) \
        & version


def _consumers(attempts: pd.DataFrame, kind: dict[str, Any]) -> list[str]:
    return sorted(set(attempts[_same_kind(attempts, kind)]["consumer"]))


def _reads_detail(catalog: Catalog, kind: dict[str, Any]) -> bool:
    """Whether the kind's type reads its version from a path other than `detail.version`."""
    declared, _ = catalog.event_type_of(kind["source"], kind["detail_type"])
    return declared is not None and declared.version_from not in (
        DEFAULT_VERSION_FROM, VERSION_FROM_NONE, VERSION_FROM_SUFFIX)


def _sample_detail(samples: pd.DataFrame, kind: dict[str, Any]) -> Any:
    """The detail of the kind's latest sampled event (to read its version), or None."""
    if samples.empty:
        return None
    matching = samples[_same_kind(samples, kind)]
    if matching.empty:
        return None
    try:
        return orjson.loads(matching.sort_values("time_ms").iloc[-1]["detail"])
    except orjson.JSONDecodeError:
        return None


def _sample(samples: pd.DataFrame, kind: dict[str, Any]) -> dict[str, Any] | None:
    matching = samples[_same_kind(samples, kind)].sort_values("time_ms")
    if matching.empty:
        return None
    last = matching.iloc[-1]
    return {"event_id": last["id"], "detail": redact(orjson.loads(last["detail"]))}


def validate_samples(samples: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Conformance rows for sampled events of catalogued versions that have a schema, checked
    and explained by the live conformance's checker (`contracts.conformance`): the same
    verdict and error for an event whichever of the two looks at it."""
    from eventscope.contracts.conformance import ConformanceChecker  # jsonschema: on demand
    rows = []
    checker = ConformanceChecker(catalog)
    for event in samples.to_dict("records"):
        declared, _ = catalog.event_type_of(event["source"], event["detail_type"])
        if declared is None:
            continue
        try:
            detail = orjson.loads(event["detail"])
        except orjson.JSONDecodeError:
            detail = None
        schema_version = declared.version(catalog_version(
            declared, event["detail_type"], event["version"], detail) or "")
        if schema_version is None or not schema_version.schema:
            continue
        valid = checker.conforms(declared, schema_version.version, detail)
        rows.append({"event_id": event["id"], "source": event["source"],
                     "detail_type": declared.detail_type, "version": schema_version.version,
                     "valid": valid, "error": None if valid else checker.explain(
                         declared, schema_version.version, detail)})
    return pd.DataFrame(rows, columns=CONFORMANCE_COLUMNS)


def schema_drift(conformance: pd.DataFrame) -> list[dict[str, Any]]:
    """Per catalogued kind with failing payloads: checked, failed, an example and its error."""
    found = []
    for (source, detail_type, version), group in conformance.groupby(
            ["source", "detail_type", "version"]):
        failing = group[~group["valid"].astype(bool)]
        if failing.empty:
            continue
        found.append({"source": source, "detail_type": detail_type, "version": version,
                      "checked": int(len(group)), "failed": int(len(failing)),
                      "example_event_id": failing.iloc[0]["event_id"],
                      "error": failing.iloc[0]["error"]})
    return found
