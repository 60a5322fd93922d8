"""The DataFrame shapes findings take, and small helpers shared by several findings.

Column contracts (every loader in `eventscope.findings.load` returns exactly these):

- events: id, source, detail_type, time_ms, version, correlation_key, size_bytes
  (and `detail`, the compact JSON of the detail object, when loaded with details).
- attempts: one row per consumer invocation, joined to the event it handled:
  request_id, start_ms, consumer, function, event_id, outcome (ok/error/timeout), duration_ms,
  error_type, error_message, source, detail_type, version, event_time_ms. An unattributed
  invocation (no event id, or an id not in the store) has None in the event columns.
  `consumer` is the catalog consumer that owns the function when a catalog is given,
  otherwise the function name itself.
- subscriptions (optional, from the bus-rules snapshot): rule, source, detail_type, target,
  consumer. One row per rule x detail-type x target; `consumer` as in attempts.
- deliveries (optional, from the bus's own delivery logs): time_ms, rule, target, event_id,
  outcome ("ok" or "failed"), error_code.
- conformance (optional, from live schema checks): event_id, source, detail_type, version,
  valid (bool), error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from eventscope.catalog.model import Catalog
from eventscope.findings.columns import (ATTEMPT_COLUMNS, BUS_EVENT_LIMIT_BYTES,  # noqa: F401
                                         CONFORMANCE_COLUMNS, DEFAULT_CANCELLATIONS,
                                         DELIVERY_COLUMNS, EVENT_COLUMNS, FAILED,
                                         SUBSCRIPTION_COLUMNS, owner_name)


def frame(rows: Iterable[Any], columns: list[str]) -> pd.DataFrame:
    """A DataFrame with exactly these columns, also when there are no rows."""
    return pd.DataFrame.from_records(list(rows), columns=columns)


def as_keys(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The frame with its key columns as object dtype, so it merges with any other: a key
    column with only missing values (no event known) comes back from a groupby as float."""
    return df.astype({key: object for key in keys})


def resolve_consumers(attempts: pd.DataFrame, catalog: Catalog | None) -> pd.DataFrame:
    """Attempts with `consumer` set to the catalog consumer owning each function, if any."""
    result = attempts.copy()
    result["function"] = result["function"].where(result["function"].notna(), result["consumer"])
    if catalog is None or result.empty:
        return result
    names = {f: owner_name(f, catalog) for f in result["function"].unique()}
    result["consumer"] = result["function"].map(names)
    return result


def clean(value: Any) -> Any:
    """A JSON-ready scalar: NaN/NA become None, numpy numbers become Python numbers."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a DataFrame as JSON-ready dicts."""
    return [{k: clean(v) for k, v in row.items()} for row in df.to_dict("records")]


def percentile(values: pd.Series, q: float) -> float | None:
    """The q-quantile (linear interpolation) of the non-null values, or None when empty."""
    present = values.dropna()
    return None if present.empty else float(present.quantile(q))
