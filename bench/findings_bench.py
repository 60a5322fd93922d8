"""Benchmark of the findings on a synthetic SQLite store; prints times and ratios.

Builds a store of N events (orders of 3-4 events, three consumers each, ~5% failed attempts
with retries, ~3 invocations per event) and the same events as NDJSON, refreshes the rollups
(timed), then times: the lifecycle lookup (median of 50 orders) against `jq` selecting one
order from the NDJSON file (what an engineer would do without us), and, each with a fresh
engine (cold connection), failure rates over the whole store and over the last 24 hours, final
failures and top errors, the graph, and `check` end to end, all from the rollups; and the
incremental refresh after one more small batch. With `--raw`, also the same analyses from
every raw row (the path before rollups) for comparison. Usage:

    PYTHONPATH=. python bench/findings_bench.py --events 1000000 --dir /tmp/fbench [--raw]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import orjson

from eventscope.events import envelope_of
from eventscope.findings import load, summaries
from eventscope.findings.check import CheckInputs, Thresholds, run_check, run_check_summaries
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


def cold(url: str):
    """A fresh engine, as a new dashboard session or CLI process would have."""
    return open_store(url).engine


def time_rollups(url: str, span_ms: int) -> None:
    def failures() -> None:
        summaries.failure_rates(cold(url))

    def window() -> None:
        summaries.failure_rates(cold(url), since_ms=T0 + span_ms - 86_400_000)

    def drill() -> None:
        engine = cold(url)
        summaries.final_failures(engine)
        summaries.top_errors(engine)

    def graph() -> None:
        summaries.build_graph(cold(url))

    def check() -> None:
        run_check_summaries(summaries.check_summaries(cold(url)), None, Thresholds(),
                            date.today())

    for name, fn, target in (("failure rates, whole store (rollups)", failures, 2.0),
                             ("failure rates, last 24 h (rollups)", window, 2.0),
                             ("final failures + top errors (drill-down)", drill, 2.0),
                             ("graph (rollups)", graph, 2.0),
                             ("check end to end (rollups)", check, 30.0)):
        seconds = timed(fn)
        print(f"{name}: {seconds:.2f} s (target {target:.0f} s: {seconds / target:.2f}x of "
              "target)")


def time_raw(engine) -> None:
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

    for name, fn in (("failure rates, whole store (raw rows)", failures),
                     ("graph (raw rows)", graph), ("check end to end (raw rows)", check)):
        print(f"{name}: {timed(fn):.2f} s")


def time_incremental(url: str, n_events: int) -> None:
    """One more collector-sized batch (1,000 events and their invocations), then refresh."""
    store = open_store(url)
    shift = (n_events // 3 + 10) * 1000 + 600_000  # after every stored event and retry
    batch_e: list[BusEvent] = []
    batch_i: list[Invocation] = []
    for _key, events, calls in generate(1000, seed=99):
        batch_e += [replace(e, id="new-" + e.id, time_ms=e.time_ms + shift) for e in events]
        batch_i += [replace(c, request_id="new-" + c.request_id, event_id="new-" + c.event_id,
                            start_ms=c.start_ms + shift) for c in calls]
    write_s = timed(lambda: store.write_batch(batch_e, batch_i))
    refresh_s = timed(store.refresh_rollups)
    print(f"incremental: write of {len(batch_e)} events + {len(batch_i)} invocations "
          f"{write_s:.2f} s, then refresh_rollups {refresh_s:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--dir", default="/tmp/eventscope-findings-bench")
    parser.add_argument("--raw", action="store_true", help="also time the raw-row path")
    args = parser.parse_args()
    start = time.perf_counter()
    url, ndjson, keys = build(Path(args.dir), args.events)
    print(f"built store: {args.events} events in {time.perf_counter() - start:.1f} s "
          "(write_batch, dirty minutes marked)")
    refresh_s = timed(open_store(url).refresh_rollups)
    print(f"refresh_rollups of the whole store: {refresh_s:.1f} s")
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
    time_rollups(url, len(keys) * 1000)
    if args.raw:
        time_raw(engine)
    time_incremental(url, args.events)


if __name__ == "__main__":
    main()
