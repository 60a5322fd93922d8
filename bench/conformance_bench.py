"""Live conformance throughput: eventscope's checker vs plain `jsonschema` compiled once.

Generates events of the example catalog's types (realistic details built from the catalog's
examples, ~2% invalid), then validates every event against its version's schema:
  - eventscope: `ConformanceChecker` (orjson parse + jsonschema-rs, compiled once per version)
  - peer: the reference `jsonschema` Draft202012Validator, compiled once per version, is_valid
The peer is slow, so it runs on a slice of the same events. Prints events/s and the ratio.

    python bench/conformance_bench.py [--events 1000000] [--peer-events 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from pathlib import Path

import orjson

from eventscope.catalog.loader import load_catalog
from eventscope.catalog.schemas import catalog_registry, validator, version_uri
from eventscope.contracts.conformance import ConformanceChecker

EXAMPLE = Path(__file__).parent.parent / "examples" / "catalog"


def generate(catalog, count: int, seed: int = 7) -> list[tuple]:
    """Rows (id, source, detail-type, time_ms, detail JSON) with varied ids and amounts."""
    rng = random.Random(seed)
    templates = [(t, v, ex) for t in catalog.event_types for v in t.versions for ex in v.examples]
    rows = []
    for index in range(count):
        event_type, version, example = templates[index % len(templates)]
        detail = dict(example)
        if "orderId" in detail:
            detail["orderId"] = f"ord-{rng.randrange(10**8)}"
        if rng.random() < 0.02:
            detail["orderId"] = rng.randrange(10**6)  # drift: wrong type
        rows.append((f"ev-{index}", event_type.source, event_type.detail_type,
                     1_700_000_000_000 + index, orjson.dumps(detail).decode()))
    return rows


def run_checker(catalog, rows) -> tuple[float, int]:
    checker = ConformanceChecker(catalog)
    start = time.perf_counter()
    for row in rows:
        checker.feed(*row)
    elapsed = time.perf_counter() - start
    return elapsed, sum(d.failing for d in checker.results())


def run_peer(catalog, rows) -> tuple[float, int]:
    registry = catalog_registry(catalog)
    compiled = {}
    failing = 0
    start = time.perf_counter()
    for _, _source, detail_type, _, detail in rows:
        instance = json.loads(detail)
        key = (detail_type, str(instance.get("version", "1")))
        check = compiled.get(key)
        if check is None:
            check = compiled[key] = validator(version_uri(*key), registry)
        failing += not check.is_valid(instance)
    return time.perf_counter() - start, failing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--peer-events", type=int, default=20_000)
    args = parser.parse_args()
    catalog = load_catalog(EXAMPLE)
    rows = generate(catalog, args.events)
    ours, our_failing = run_checker(catalog, rows)
    peer, _ = run_peer(catalog, rows[: args.peer_events])
    ours_rate, peer_rate = args.events / ours, args.peer_events / peer
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor()) \
        if os.path.exists("/proc/cpuinfo") else platform.processor()
    print(f"cpu: {cpu}, nproc {os.cpu_count()}, one core used")
    print(f"events: {args.events} ({our_failing} drifting), avg detail "
          f"{sum(len(r[4]) for r in rows) // len(rows)} bytes")
    print(f"eventscope (orjson + jsonschema-rs, compiled once): {ours_rate:,.0f} events/s")
    print(f"jsonschema {args.peer_events} events (compiled once):   {peer_rate:,.0f} events/s")
    print(f"ratio: {ours_rate / peer_rate:.1f}x the reference; target 50,000 events/s: "
          f"{'met' if ours_rate >= 50_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
