"""Redaction settings for the collectors, and the hook that redacts a batch before its write.

Configuration (environment, so the Lambda handler reads the same): `EVENTSCOPE_PII_KEY` is
the HMAC key (any string; when unset, a random key made once and kept in the store's `meta`
table is used, which lets anyone holding the store test guesses, so set it in production);
`EVENTSCOPE_PII=keep` keeps original values (they are still recorded in `redactions`) for
teams that need replay of full payloads; the default is `redact`; `EVENTSCOPE_CATALOG` names
the catalog whose declared PII fields (`pii-fields` per event type) are redacted whatever their
values look like.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from eventscope.records import BusEvent
from eventscope.redaction import RedactionSettings, redact_events, redaction_rows
from eventscope.store import Store, redactions

EventFilter = Callable[[Sequence[BusEvent]], tuple[list[BusEvent], Any]]


def settings_from_env(store: Store, catalog_fields: Mapping[str, Sequence[str]] | None = None
                      ) -> RedactionSettings:
    """Redaction settings from the environment (see the module docstring)."""
    configured = os.environ.get("EVENTSCOPE_PII_KEY")
    key = configured.encode() if configured else store.pii_key()
    keep = os.environ.get("EVENTSCOPE_PII", "redact").strip().lower() == "keep"
    if catalog_fields is None and os.environ.get("EVENTSCOPE_CATALOG"):
        catalog_fields = declared_pii_fields(os.environ["EVENTSCOPE_CATALOG"])
    return RedactionSettings(key=key, keep_originals=keep, catalog_fields=catalog_fields or {})


def declared_pii_fields(catalog_path: str) -> dict[str, tuple[str, ...]]:
    """The PII fields the catalog at `catalog_path` declares, per detail-type."""
    from eventscope.catalog.loader import load_catalog

    return {t.detail_type: t.pii_fields for t in load_catalog(catalog_path).event_types
            if t.pii_fields}


def redaction_filter(settings: RedactionSettings) -> EventFilter:
    """The tap collector's hook: a batch's events redacted, and their `redactions` rows."""
    def apply(events: Sequence[BusEvent]) -> tuple[list[BusEvent], Any]:
        clean, found = redact_events(events, settings)
        return clean, ({redactions: redaction_rows(found, int(time.time() * 1000))}
                       if found else None)
    return apply
