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
from typing import TYPE_CHECKING, Any

from eventscope.records import BusEvent, Quarantined
from eventscope.redaction import (RedactionSettings, redact_events, redaction_rows,
                                  scrub_quarantined)
from eventscope.store import Store, redactions

if TYPE_CHECKING:
    from eventscope.catalog.model import Catalog

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

    return pii_fields_of(load_catalog(catalog_path))


def pii_fields_of(catalog: Catalog) -> dict[str, tuple[str, ...]]:
    """The PII fields a loaded catalog declares, per detail-type."""
    return {t.detail_type: t.pii_fields for t in catalog.event_types if t.pii_fields}


class Redactor:
    """The collectors' hook: called with a batch's events, their redacted form and their
    `redactions` rows; `quarantined` scrubs the batch's quarantined inputs the same way."""

    def __init__(self, settings: RedactionSettings) -> None:
        self.settings = settings

    def __call__(self, events: Sequence[BusEvent]) -> tuple[list[BusEvent], Any]:
        clean, found = redact_events(events, self.settings)
        return clean, ({redactions: redaction_rows(found, int(time.time() * 1000))}
                       if found else None)

    def quarantined(self, items: list[Quarantined]) -> list[Quarantined]:
        return scrub_quarantined(items, self.settings)


def redaction_filter(settings: RedactionSettings) -> Redactor:
    """The tap collector's hook (see `Redactor`)."""
    return Redactor(settings)
