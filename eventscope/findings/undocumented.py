"""Undocumented events (seen on the bus, absent from the catalog) and schema drift.

An event kind is (source, detail-type, version). It is undocumented when the catalog has no
such type for that source, or the type declares versions and not this one. Schema drift is a
catalogued version whose payloads fail its schema: computed from conformance rows (the
catalog's live conformance, or `validate_samples` over sampled payloads). Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pandas as pd

from eventscope.catalog.model import Catalog
from eventscope.catalog.schemas import catalog_registry, validator, version_uri
from eventscope.findings.frames import CONFORMANCE_COLUMNS, clean
from eventscope.findings.payloads import redact


def summarise_types(events: pd.DataFrame) -> pd.DataFrame:
    """The per-kind summary `load.load_type_summary` computes in SQL, from an events frame."""
    return events.groupby(["source", "detail_type", "version"], dropna=False).agg(
        count=("id", "size"), first_ms=("time_ms", "min"), last_ms=("time_ms", "max"),
        max_size_bytes=("size_bytes", "max")).reset_index()


def why_undocumented(catalog: Catalog, source: str, detail_type: str,
                     version: str | None) -> str | None:
    """'unknown_type', 'unknown_version', or None when the catalog documents the kind."""
    declared = catalog.event_type(detail_type, source)
    if declared is None:
        return "unknown_type"
    if declared.versions and declared.version(version or "") is None:
        return "unknown_version"
    return None


def undocumented_events(summary: pd.DataFrame, catalog: Catalog, attempts: pd.DataFrame,
                        samples: pd.DataFrame) -> list[dict[str, Any]]:
    """Every undocumented kind with counts, first/last seen, consumers and a redacted sample."""
    found = []
    for row in summary.to_dict("records"):
        row = {k: clean(v) for k, v in row.items()}
        reason = why_undocumented(catalog, row["source"], row["detail_type"], row["version"])
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


def _sample(samples: pd.DataFrame, kind: dict[str, Any]) -> dict[str, Any] | None:
    matching = samples[_same_kind(samples, kind)].sort_values("time_ms")
    if matching.empty:
        return None
    last = matching.iloc[-1]
    return {"event_id": last["id"], "detail": redact(orjson.loads(last["detail"]))}


def validate_samples(samples: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Conformance rows for sampled events of catalogued versions that have a schema."""
    rows = []
    validators: dict[tuple[str, str, str], Any] = {}
    registry = None
    for event in samples.to_dict("records"):
        declared = catalog.event_type(event["detail_type"], event["source"])
        schema_version = declared.version(event["version"] or "") if declared else None
        if schema_version is None or not schema_version.schema:
            continue
        key = (event["source"], event["detail_type"], schema_version.version)
        if key not in validators:
            if registry is None:  # offline: `$ref`s resolve to the catalog's own schemas
                registry = catalog_registry(catalog)
            validators[key] = validator(version_uri(key[1], key[2]), registry)
        error = jsonschema.exceptions.best_match(
            validators[key].iter_errors(orjson.loads(event["detail"])))
        rows.append({"event_id": event["id"], "source": key[0], "detail_type": key[1],
                     "version": key[2], "valid": error is None,
                     "error": None if error is None else f"{error.json_path}: {error.message}"})
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
