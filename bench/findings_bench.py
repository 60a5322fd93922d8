"""Benchmark of the findings on a synthetic SQLite store; prints times and ratios.

Builds a store of N events (orders of 3-4 events, three consumers each, ~5% failed attempts
with retries, ~3 invocations per event) and the same events as NDJSON, then times: the
lifecycle lookup (median of 50 orders) against `jq` selecting one order from the NDJSON file
(what an engineer would do without us), failure rates over the whole store, the graph, and
`check` end to end. Usage:

    PYTHONPATH=. python bench/findings_bench.py --events 1000000 --dir /tmp/fbench
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import time
from datetime import date
from pathlib import Path

import orjson

from eventscope.events import envelope_of
from eventscope.findings import load
from eventscope.findings.check import CheckInputs, Thresholds, run_check
from eventscope.findings.failures import failure_rates
from eventscope.findings.frames import resolve_consumers
from eventscope.findings.graph import build_graph
from eventscope.findings.lifecycle import order_lifecycle
from eventscope.records import BusEvent, Invocation
from eventscope.store import open_store

T0 = 1_700_000_000_000
STEPS = [("shop", "OrderPlaced"), ("payments", "OrderPaid"), ("shop", "OrderShipped")]
CONSUMERS = ["billing-fn", "warranty-fn", "email-fn"]


def generate(n_events: int, seed: int = 7):
    rng = random.Random(seed)
    made = 0
    order = 0
    while made < n_events:
        order += 1
        key = f"o-{order:08d}"
        steps = STEPS + ([("shop", "OrderCancelled")] if rng.random() < 0.1 else [])
        events, calls = [], []
        t = T0 + order * 1000
        for source, kind in steps:
            t += rng.randint(1000, 60_000)
            detail = orjson.dumps({"orderId": key, "version": "1", "amount": rng.randint(1, 999),
                                   "items": [{"sku": f"S-{rng.randint(1, 5000)}"}] * 3}).decode()
            event = BusEvent(id=f"{key}-{kind}", source=source, detail_type=kind, time_ms=t,
                             detail=detail, size_bytes=len(detail) + 200, version="1",
                             correlation_key=key)
            events.append(event)
            for fn in CONSUMERS:
                if kind == "OrderCancelled" and fn == "warranty-fn":
                    continue
                start = t + rng.randint(50, 500)
                request = f"{key}-{kind}-{fn}"
                while rng.random() < 0.05:
                    calls.append(Invocation(request, fn, f"/aws/lambda/{fn}", "s", start, "error",
                                            event.id, duration_ms=12.0, error_type="ValueError",
                                            error_message="boom", complete=True))
                    start += 60_000
                calls.append(Invocation(request, fn, f"/aws/lambda/{fn}", "s", start, "ok",
                                        event.id, duration_ms=float(rng.randint(5, 400)),
                                        complete=True))
        made += len(events)
        yield key, events, calls


def build(directory: Path, n_events: int) -> tuple[str, Path, list[str]]:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    url = f"sqlite:///{directory / 'store.db'}"
    store = open_store(url)
    ndjson = directory / "events.ndjson"
    keys: list[str] = []
    batch_e: list[BusEvent] = []
    batch_i: list[Invocation] = []
    with ndjson.open("wb") as out:
        for key, events, calls in generate(n_events):
            keys.append(key)
            batch_e += events
            batch_i += calls
            for event in events:
                out.write(orjson.dumps(envelope_of(event)) + b"\n")
            if len(batch_e) >= 50_000:
                store.write_batch(batch_e, batch_i)
                batch_e, batch_i = [], []
    store.write_batch(batch_e, batch_i)
    store.engine.dispose()
    return url, ndjson, keys


def timed(fn, repeat: int = 1) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--dir", default="/tmp/eventscope-findings-bench")
    args = parser.parse_args()
    start = time.perf_counter()
    url, ndjson, keys = build(Path(args.dir), args.events)
    print(f"built store: {args.events} events in {time.perf_counter() - start:.1f} s")
    engine = open_store(url).engine
    counts = open_store(url).counts()
    print(f"store: {counts['events']} events, {counts['invocations']} invocations")
    sample = random.Random(1).sample(keys, 50)

    def lookup(key: str) -> None:
        found = load.find_correlation_keys(engine, key)
        events, attempts = load.load_lifecycle(engine, found[0])
        order_lifecycle(found[0], events, attempts)

    lifecycle_s = statistics.median(timed(lambda k=k: lookup(k)) for k in sample)
    print(f"lifecycle lookup (median of 50): {lifecycle_s * 1000:.2f} ms "
          f"(target 100 ms: {lifecycle_s / 0.1:.3f}x of target)")
    if shutil.which("jq"):
        key = sample[0]
        jq_s = timed(lambda: subprocess.run(
            ["jq", "-c", f'select(.detail.orderId == "{key}")', str(ndjson)],
            check=True, capture_output=True))
        print(f"jq selecting one order from the NDJSON file: {jq_s:.2f} s; "
              f"eventscope is {jq_s / lifecycle_s:,.0f}x faster")
    else:
        print("jq not installed: no jq comparison")

    def failures() -> None:
        failure_rates(load.load_attempts(engine))

    def graph() -> None:
        build_graph(load.load_events(engine), load.load_attempts(engine))

    def check() -> None:
        inputs = CheckInputs(events=load.load_events(engine),
                             attempts=resolve_consumers(load.load_attempts(engine), None),
                             type_summary=load.load_type_summary(engine),
                             samples=load.load_samples(engine))
        run_check(inputs, None, Thresholds(), date.today())

    for name, fn, target in (("failure rates, whole store", failures, 2.0),
                             ("graph", graph, 2.0), ("check end to end", check, 30.0)):
        seconds = timed(fn)
        print(f"{name}: {seconds:.2f} s (target {target:.0f} s: {seconds / target:.2f}x of target)")


if __name__ == "__main__":
    main()
