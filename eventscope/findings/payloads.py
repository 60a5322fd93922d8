"""Fat vs thin events and PII: payload sizes per type, PII-looking fields, who receives them.

PII is detected in sample payloads by value (e-mail addresses, phone numbers, card numbers
that pass the Luhn check) and by declaration (the catalog's `pii_fields`). `redact` blanks
such values before a payload is shown anywhere. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import orjson
import pandas as pd

from eventscope.catalog.model import Catalog
from eventscope.findings.frames import BUS_EVENT_LIMIT_BYTES

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
PHONE = re.compile(r"^\+?[\d][\d ()./-]{7,18}\d$")
CARD = re.compile(r"^\d[\d -]{11,21}\d$")
REDACTED = "[redacted]"


def luhn_ok(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def pii_kind(value: Any) -> str | None:
    """'email', 'card' or 'phone' when a scalar looks like one, else None."""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        return None
    text = str(value).strip()
    if EMAIL.match(text):
        return "email"
    digits = re.sub(r"[ -]", "", text)
    if CARD.match(text) and 13 <= len(digits) <= 19 and luhn_ok(digits):
        return "card"
    if isinstance(value, str) and PHONE.match(text) and _looks_dialled(text):
        return "phone"
    return None


def _looks_dialled(text: str) -> bool:
    """9 to 15 digits (E.164) written with a + or separators, unlike a bare id number."""
    digits = sum(c.isdigit() for c in text)
    return 9 <= digits <= 15 and (text.startswith("+") or any(c in text for c in " ()./-"))


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
    """A copy of a detail object with PII-looking and declared-PII values replaced."""
    def visit(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            return {k: visit(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [visit(v, path) for v in value]
        return REDACTED if path in declared or pii_kind(value) else value
    return visit(detail, "detail")


def payload_sizes(events: pd.DataFrame, limit_bytes: int = BUS_EVENT_LIMIT_BYTES) -> pd.DataFrame:
    """Per detail-type: count, p50/p95/max envelope size, and the max as a share of the limit."""
    sizes = events.groupby("detail_type")["size_bytes"]
    table = pd.DataFrame({
        "count": sizes.size(), "p50_bytes": sizes.quantile(0.5), "p95_bytes": sizes.quantile(0.95),
        "max_bytes": sizes.max()}).reset_index()
    table["max_share_of_limit"] = table["max_bytes"] / limit_bytes
    return table.sort_values(["max_bytes", "detail_type"], ascending=[False, True]
                             ).reset_index(drop=True)


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
