"""The column contracts of the findings' inputs, and naming a function's owner: plain Python.

Kept free of pandas so the paths that answer from a few rows (the order lifecycle, the CLI's
start-up) never import it; `eventscope.findings.frames` builds DataFrames of these shapes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eventscope.catalog.model import Catalog

EVENT_COLUMNS = ["id", "source", "detail_type", "time_ms", "version", "correlation_key",
                 "size_bytes"]
ATTEMPT_COLUMNS = ["request_id", "start_ms", "consumer", "function", "event_id", "outcome",
                   "duration_ms", "error_type", "error_message", "source", "detail_type",
                   "version", "event_time_ms"]
SUBSCRIPTION_COLUMNS = ["rule", "source", "detail_type", "target", "consumer"]
DELIVERY_COLUMNS = ["time_ms", "rule", "target", "event_id", "outcome", "error_code"]
CONFORMANCE_COLUMNS = ["event_id", "source", "detail_type", "version", "valid", "error"]
FAILED = ("error", "timeout")
BUS_EVENT_LIMIT_BYTES = 256 * 1024
DEFAULT_CANCELLATIONS = ("OrderCancelled", "OrderReturned")


def owner_name(function: str, catalog: Catalog | None) -> str:
    """The catalog consumer owning a function, else the function's own name."""
    owner = catalog.consumer_for_function(function) if catalog is not None else None
    return owner.name if owner else function
