"""Live conformance throughput: eventscope's checker against a floor doing the same work plainly.

Data: simulated bus events (`eventscope.simulator`) of the types the example catalog documents,
from two companies, each measured: `demo`, the company the example catalog describes (its
drift planted, details of ~230 B), which gives the RESULT line; and `bench`, the ingest
bench's company (details of ~1 KB, padded with fields the example catalog's closed schemas
refuse, so most fail early: shown for the cost of large details). Each event is validated
against its version's schema by
  - eventscope: `ConformanceChecker.feed` (type lookup, version rule, orjson parse,
    jsonschema-rs compiled once per version, drift bookkeeping and the first failure's
    explanation);
  - the floor: orjson parse + the same compiled jsonschema-rs validator's `is_valid`, the
    validator picked by a dict lookup: the same work without eventscope's bookkeeping;
  - for information, the reference `jsonschema` (pure Python, compiled once) on a slice.
Figures are events per CPU second of this process (one core), which survive a shared
machine; one `RESULT` line gives the target.

    python bench/conformance_bench.py [--events 200000] [--peer-events 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

import orjson

from eventscope import simulator
from eventscope.catalog.loader import load_catalog
from eventscope.catalog.schemas import catalog_registry, validator, version_uri
from eventscope.contracts.conformance import ConformanceChecker

EXAMPLE = simulator.DEMO_CATALOG
TARGET_PER_CPU_S = 50_000


COMPANIES = {"demo": simulator.CompanyConfig.demo, "bench": simulator.CompanyConfig.bench}


def generate(catalog: Any, count: int, company: str = "demo",
             seed: int = 7) -> list[tuple[Any, ...]]:
    """Rows (id, source, detail-type, time_ms, detail JSON) of the first `count` simulated
    bus events whose type the catalog documents."""
    known = {(t.source, t.detail_type) for t in catalog.event_types}
    rows: list[tuple[Any, ...]] = []
    for item in simulator.simulate(COMPANIES[company](), seed=seed,
                                   n_events=count * 4):
        record = item.record
        if item.kind == "event" and (record["source"], record["detail-type"]) in known:
            rows.append((record["id"], record["source"], record["detail-type"], 0,
                         orjson.dumps(record["detail"]).decode()))
            if len(rows) == count:
                break
    return rows


def run_checker(catalog: Any, rows: list[tuple[Any, ...]]) -> tuple[float, int]:
    checker = ConformanceChecker(catalog)
    start = time.process_time()
    for row in rows:
        checker.feed(*row)
    elapsed = time.process_time() - start
    return elapsed, sum(d.failing for d in checker.results())


def run_floor(catalog: Any, rows: list[tuple[Any, ...]]) -> tuple[float, int]:
    """orjson + the checker's own compiled validators, looked up by (type, version)."""
    checker = ConformanceChecker(catalog)
    compiled: dict[tuple[str, str, str], Any] = {}
    for _, source, detail_type, _, detail in rows:  # resolved before timing, as ours caches
        instance = orjson.loads(detail)
        key = (source, detail_type, str(instance.get("version", "")))
        if key not in compiled:
            event_type, override = checker._type_of(source, detail_type)
            version = override or checker._rule(event_type).version(instance, detail_type)
            compiled[key] = checker.compiled(event_type, version or "")
    failing = 0
    loads, get = orjson.loads, compiled.get
    start = time.process_time()
    for _, source, detail_type, _, detail in rows:
        instance = loads(detail)
        check = get((source, detail_type, str(instance.get("version", ""))))
        failing += check is None or not check.is_valid(instance)
    return time.process_time() - start, failing


def run_peer(catalog: Any, rows: list[tuple[Any, ...]]) -> tuple[float, int]:
    registry = catalog_registry(catalog)
    compiled: dict[tuple[str, str], Any] = {}
    failing = 0
    start = time.process_time()
    for _, _source, detail_type, _, detail in rows:
        instance = json.loads(detail)
        key = (detail_type, str(instance.get("version", "1")))
        check = compiled.get(key)
        if check is None:
            check = compiled[key] = validator(version_uri(*key), registry)
        failing += not check.is_valid(instance)
    return time.process_time() - start, failing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--peer-events", type=int, default=5_000)
    args = parser.parse_args()
    catalog = load_catalog(EXAMPLE)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor()) \
        if os.path.exists("/proc/cpuinfo") else platform.processor()
    print(f"cpu: {cpu}, nproc {os.cpu_count()}, one core used, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for company in ("demo", "bench"):
        rows = generate(catalog, args.events, company)
        ours, our_failing = run_checker(catalog, rows)
        floor, _ = run_floor(catalog, rows)
        peer, _ = run_peer(catalog, rows[: args.peer_events])
        n = len(rows)
        ours_rate, floor_rate = n / ours, n / floor
        peer_rate = min(args.peer_events, n) / peer
        print(f"{company} company: {n:,} events of catalogued types ({our_failing:,} failing "
              f"their schema), mean detail {sum(len(r[4]) for r in rows) // max(n, 1):,} bytes")
        print(f"  eventscope ConformanceChecker:            {ours_rate:>9,.0f} events/CPU s")
        print(f"  floor (orjson + compiled jsonschema-rs):  {floor_rate:>9,.0f} events/CPU s")
        print(f"  jsonschema, pure Python ({min(args.peer_events, n):,} events):   "
              f"{peer_rate:>9,.0f} events/CPU s (for information)")
        met = "met" if ours_rate >= TARGET_PER_CPU_S else "MISSED"
        print(f"RESULT conformance, {company} company, one core: {ours_rate:,.0f} events per "
              f"CPU second; floor {floor_rate:,.0f}/CPU s; ratio {ours_rate / floor_rate:.2f}; "
              f"target >= {TARGET_PER_CPU_S:,}/CPU s; "
              f"{met if company == 'demo' else 'n/a (mostly failing details)'}")

if __name__ == "__main__":
    main()
