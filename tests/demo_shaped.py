"""A demo-shaped store for the lifecycle, subscriptions and PII tests: the simulated demo
company (every planted problem), ingested as the demo collects it (its catalog's declared PII
redacted, its version rules), and what the simulation says about each order, to check the
findings against."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eventscope import simulator
from eventscope.catalog.loader import load_catalog
from eventscope.catalog.model import Catalog
from eventscope.collectors.demo import demo_pii_fields
from eventscope.ingest import ingest_paths
from eventscope.redaction import RedactionSettings
from eventscope.store import open_store

ORDERS = 400  # ~28 cancelled, ~20 returned: more than the five examples, a few pages of them
SEED = 16


@dataclass
class DemoStore:
    """The store's URL, the catalog, and the simulated orders' steps and customers."""

    url: str
    catalog: Catalog
    steps: dict[str, list[str]] = field(default_factory=dict)  # order -> detail-types in order
    names: set[str] = field(default_factory=set)  # customer names as sent (PII)
    streets: set[str] = field(default_factory=set)  # first address lines as sent (PII)

    def orders_with(self, *kinds: str, without: tuple[str, ...] = ()) -> list[str]:
        return sorted(o for o, s in self.steps.items()
                      if all(k in s for k in kinds) and not any(k in s for k in without))


def build(folder: Path) -> DemoStore:
    """Simulate, write NDJSON and ingest it into a SQLite store under `folder`."""
    items = list(simulator.simulate(simulator.CompanyConfig.demo(), seed=SEED,
                                    n_orders=ORDERS))
    catalog = load_catalog(simulator.DEMO_CATALOG)
    demo = DemoStore(f"sqlite:///{folder / 'demo.db'}", catalog)
    for item in items:
        if item.kind != "event":
            continue
        detail = item.record["detail"]
        demo.steps.setdefault(detail["orderId"], []).append(item.record["detail-type"])
        if item.record["detail-type"] == "OrderCreated" and "shippingAddress" in detail:
            demo.names.add(detail["customer"]["name"])
            demo.streets.add(detail["shippingAddress"]["line1"])
    files = simulator.write_ndjson(items, folder)
    store = open_store(demo.url)
    ingest_paths(store, [str(files.events_path), str(files.logs_path)], workers=0,
                 redaction=RedactionSettings(key=b"demo-test-key",
                                             catalog_fields=demo_pii_fields() or {}),
                 version_rules=catalog.version_rules())
    store.engine.dispose()
    return demo
