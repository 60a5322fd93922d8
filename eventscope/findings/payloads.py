"""Fat vs thin events and PII: payload sizes per type, PII-looking fields, who receives them.

PII is detected in sample payloads by value, with the detectors of `eventscope.redaction`
(e-mail addresses, phone numbers, card numbers that pass the Luhn check, AWS keys, and the
tokens that replaced them before the store) and by declaration (the catalog's `pii_fields`).
`redact` blanks such values before a payload is shown anywhere, with the store's own walk
(`eventscope.redaction.mask_document`): one detector and one rule for what is PII. Pure: no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import orjson
import pandas as pd

from eventscope.catalog.model import Catalog
from eventscope.findings.frames import BUS_EVENT_LIMIT_BYTES
from eventscope.redaction import detect, mask_document

REDACTED = "[redacted]"


def pii_kind(value: Any) -> str | None:
    """'email', 'card', 'phone', 'aws_key' when a scalar holds one (or a token of one), else None.

    The detectors are those that redact payloads before the store (`eventscope.redaction`),
    so a stored token (`pii:email:...`) counts as the PII it replaced.
    """
    return detect(value)


def walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every (dotted path, scalar) in a JSON value; list items share their list's path."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from walk(item, path)
    else:
        yield path, value


def redact(detail: dict[str, Any], declared: tuple[str, ...] = ()) -> dict[str, Any]:
    """A copy of a detail object as a page may show it: the store's detectors and rule
    (`eventscope.redaction.mask_document`), with `[redacted]` in place of each value a
    detector recognises and of each declared field, whole (an object or a list included)."""
    paths = {"$." + path.removeprefix("$.") for path in declared}
    masked: dict[str, Any] = mask_document(copy.deepcopy(detail), "$.detail", paths, REDACTED)
    return masked


def payload_sizes(events: pd.DataFrame, limit_bytes: int = BUS_EVENT_LIMIT_BYTES) -> pd.DataFrame:
    """Per detail-type: count, p50/p95/max envelope size, and the max as a share of the limit."""
    sizes = events.assign(size_bytes=pd.to_numeric(events["size_bytes"], errors="coerce"))\
        .groupby("detail_type")["size_bytes"]  # numeric also when no row gives it a dtype
    table = pd.DataFrame({
        "count": sizes.size(), "p50_bytes": sizes.quantile(0.5), "p95_bytes": sizes.quantile(0.95),
        "max_bytes": sizes.max()}).reset_index()
    table["max_share_of_limit"] = table["max_bytes"] / limit_bytes
    return table.sort_values(["max_bytes", "detail_type"], ascending=[False, True]
                             ).reset_index(drop=True)


def payload_sizes_from_totals(totals: pd.DataFrame,
                              limit_bytes: int = BUS_EVENT_LIMIT_BYTES) -> pd.DataFrame:
    """Per detail-type from event totals (`load.load_event_totals`: count, bytes_sum,
    max_size_bytes per kind): count, mean and max envelope size, the max as a share of the
    limit. Exact, with no raw rows read; percentiles need the raw sizes (`payload_sizes`)."""
    summed = totals.groupby("detail_type").agg(count=("count", "sum"),
                                               bytes_sum=("bytes_sum", "sum"),
                                               max_bytes=("max_size_bytes", "max")).reset_index()
    summed["mean_bytes"] = (summed["bytes_sum"] / summed["count"]).round(1)
    summed["max_share_of_limit"] = summed["max_bytes"] / limit_bytes
    return summed[["detail_type", "count", "mean_bytes", "max_bytes", "max_share_of_limit"]]\
        .sort_values(["max_bytes", "detail_type"], ascending=[False, True]).reset_index(drop=True)


def pii_fields(samples: pd.DataFrame, attempts: pd.DataFrame,
               catalog: Catalog | None = None) -> pd.DataFrame:
    """Per detail-type and field path: the PII kind, whether declared, how seen, receivers."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in samples.itertuples(index=False):
        for path, value in walk(orjson.loads(row.detail), "detail"):
            kind = pii_kind(value)
            if kind:
                entry = found.setdefault((row.detail_type, path),
                                         {"kind": kind, "events": 0, "example_event_id": row.id})
                entry["events"] += 1
    declared = {(t.detail_type, p) for t in (catalog.event_types if catalog else ())
                for p in t.pii_fields}
    for key in declared:
        found.setdefault(key, {"kind": "declared", "events": 0, "example_event_id": None})
    receivers = attempts[attempts["detail_type"].notna()].groupby("detail_type")["consumer"]\
        .agg(lambda s: sorted(set(s)))
    rows = [{"detail_type": t, "path": p, **entry, "declared": (t, p) in declared,
             "consumers": receivers.get(t, [])} for (t, p), entry in sorted(found.items())]
    return pd.DataFrame(rows, columns=["detail_type", "path", "kind", "events",
                                       "example_event_id", "declared", "consumers"])
