"""Time to first render of every dashboard page, cold and warm, via Streamlit AppTest.

Builds a store of synthetic orders (or uses --db, e.g. the 1M-event store of
`bench/findings_bench.py`), then for each page starts a fresh Python process, a new server
(cold: the dashboard's modules imported as `eventscope dashboard` does at start, no Streamlit
cache, no open store, SQLite's page cache empty; the OS file cache is not dropped) that times
the page's first render; then, with every Streamlit cache cleared and the store closed, a
cold render in the same process; then the median of three more renders (warm: caches
filled). Each page gets `--repeat` new processes (default 3); medians are printed, as the
machines these run on are shared. The order lifecycle is also timed after typing an order id
into its search box (the list page already shown). Prints each time with its target (issue 6:
cold < 2 s, warm < 0.5 s, lifecycle after entering an id < 0.5 s), the ratio time / target, and
the machine.

    PYTHONPATH=$PWD python bench/dashboard_bench.py --orders 20000
    PYTHONPATH=$PWD python bench/dashboard_bench.py --db sqlite:////tmp/fbench/store.db
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
import streamlit as st  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from eventscope.dashboard.serve import preload  # noqa: E402
from eventscope.records import BusEvent, Invocation  # noqa: E402
from eventscope.store import open_store  # noqa: E402
from eventscope.tables import events as events_table  # noqa: E402

PAGES = ["overview", "graph", "failures", "undocumented", "lifecycle", "subscriptions",
         "contracts"]
COLD_TARGET_S, WARM_TARGET_S, LOOKUP_TARGET_S = 2.0, 0.5, 0.5
WARM_RUNS = 3
STEPS = [("com.shop.orders", "OrderCreated"), ("com.shop.payments", "OrderPaid"),
         ("com.shop.logistics", "OrderShipped"), ("com.shop.logistics", "OrderDelivered")]
CONSUMERS = {"OrderCreated": ["crm-notifier", "fraud-check", "warranty-handler"],
             "OrderPaid": ["invoice-generator", "crm-notifier", "warranty-handler"],
             "OrderShipped": ["crm-notifier"], "OrderDelivered": ["analytics-sink"],
             "OrderCancelled": ["crm-notifier", "invoice-generator"]}


def generate(url: str, orders: int, seed: int = 7) -> None:
    """Orders created, paid, shipped, delivered (5% cancelled), each event handled by its
    consumers with 3% errors (retried) and 0.5% timeouts."""
    rng = random.Random(seed)
    store = open_store(url)
    t0 = 1_714_550_400_000
    events, calls = [], []
    for n in range(orders):
        key, start = f"ord-{n:07d}", t0 + n * 1_000
        steps = STEPS if rng.random() > 0.05 else STEPS[:2] + [("com.shop.orders",
                                                               "OrderCancelled")]
        for index, (source, kind) in enumerate(steps):
            detail = f'{{"version":"1","orderId":"{key}","total":{rng.randint(5, 900)}}}'
            event_id = f"{key}-{index}"
            when = start + index * 60_000
            events.append(BusEvent(id=event_id, source=source, detail_type=kind, time_ms=when,
                                   detail=detail, size_bytes=len(detail) + 250, version="1",
                                   correlation_key=key))
            for consumer in CONSUMERS[kind]:
                roll = rng.random()
                outcome = "timeout" if roll < 0.005 else "error" if roll < 0.035 else "ok"
                calls.append(Invocation(
                    request_id=f"{event_id}-{consumer}", consumer=consumer,
                    log_group=f"/aws/lambda/{consumer}", log_stream="s", start_ms=when + 300,
                    outcome=outcome, event_id=event_id, duration_ms=rng.uniform(5, 400),
                    error_type=None if outcome == "ok" else "ValueError", complete=True))
                if outcome != "ok":
                    calls.append(Invocation(
                        request_id=f"{event_id}-{consumer}", consumer=consumer,
                        log_group=f"/aws/lambda/{consumer}", log_stream="s",
                        start_ms=when + 60_300, outcome="ok", event_id=event_id,
                        duration_ms=20.0, complete=True))
        if len(events) > 50_000:
            store.write_batch(events, calls)
            events, calls = [], []
    store.write_batch(events, calls)
    store.engine.dispose()


def render(name: str, **query: str) -> tuple[AppTest, float]:
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=600)
    for key, value in query.items():
        at.query_params[key] = value
    at.switch_page(f"app_pages/{name}.py")
    started = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - started
    if at.exception:
        raise SystemExit(f"{name}: {at.exception[0].message}")
    return at, elapsed


def one_page(name: str, order: str) -> dict[str, float]:
    """In this (fresh) process: the page's cold render, then a warm one; for the lifecycle,
    the list page, then an order id typed into the search box."""
    query = {"order": order} if name == "lifecycle" else {}
    preload()  # what `eventscope dashboard` does when the server starts
    _, cold = render(name, **query)
    _, warm = render(name, **query)
    st.cache_data.clear()
    st.cache_resource.clear()
    _, cleared = render(name, **query)
    warm = statistics.median(render(name, **query)[1] for _ in range(WARM_RUNS))
    result = {"cold": cold, "cleared": cleared, "warm": warm}
    if name == "lifecycle":
        at, _ = render(name)
        at.text_input[0].input(order)
        started = time.perf_counter()
        at.run()
        result["lookup"] = time.perf_counter() - started
        if at.exception or not at.text or not at.text[0].value.startswith(f"Order {order}"):
            raise SystemExit(f"lifecycle lookup of {order} did not show the order")
    return result


def child_times(name: str, order: str, env: dict[str, str]) -> dict[str, float]:
    """One new server process timing one page."""
    child = subprocess.run([sys.executable, __file__, "--page", name, "--order", order],
                           env=env, capture_output=True, text=True, check=False)
    if child.returncode:
        raise SystemExit(f"{name}: {child.stderr.strip()[-2000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    return f"nproc = {os.cpu_count()}, {model}, Python {platform.python_version()}"


def an_order(url: str) -> str:
    """A correlation key from the middle of the store's key range (an index read)."""
    engine = open_store(url).engine
    key = events_table.c.correlation_key
    with engine.connect() as conn:
        low = conn.execute(sa.select(sa.func.min(key))).scalar()
        high = conn.execute(sa.select(sa.func.max(key))).scalar()
        middle = conn.execute(sa.select(key).where(key > low, key < high).order_by(key)
                              .limit(1).offset(1000)).scalar()
    engine.dispose()
    return middle or low


def report(name: str, seconds: float, target: float) -> None:
    verdict = "ok" if seconds < target else "MISSES TARGET"
    print(f"{name:<44}{seconds:>8.2f}{target:>8.1f}{seconds / target:>8.2f}  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--db", help="benchmark an existing store instead of generating one")
    parser.add_argument("--page", help="time this page only, in this process")
    parser.add_argument("--order", help="the order id for the lifecycle page")
    parser.add_argument("--repeat", type=int, default=3,
                        help="new server processes per page; the median is printed")
    args = parser.parse_args()
    if args.page:
        print(json.dumps(one_page(args.page, args.order)))
        return
    url = args.db
    if url is None:
        path = Path(tempfile.mkdtemp()) / "bench.db"
        url = f"sqlite:///{path}"
        started = time.perf_counter()
        generate(url, args.orders)
        print(f"generated {args.orders:,} orders in {time.perf_counter() - started:.1f} s")
    store = open_store(url)
    store.refresh_rollups()  # as `eventscope ingest` and the collectors leave it
    counts = store.counts()
    store.engine.dispose()
    order = args.order or an_order(url)
    print(f"machine: {machine()}")
    print(f"store: {counts['events']:,} events, {counts['invocations']:,} invocations")
    print(f"{'page (median of ' + str(args.repeat) + ' processes)':<44}{'s':>8}{'target':>8}"
          f"{'ratio':>8}")
    env = {**os.environ, "EVENTSCOPE_DB": url, "PYTHONPATH": str(ROOT)}
    env.pop("EVENTSCOPE_CATALOG", None)
    for name in PAGES:
        runs = [child_times(name, order, env) for _ in range(args.repeat)]
        times = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        report(f"{name} cold (new server process)", times["cold"], COLD_TARGET_S)
        report(f"{name} cold (caches cleared)", times["cleared"], COLD_TARGET_S)
        report(f"{name} warm", times["warm"], WARM_TARGET_S)
        if "lookup" in times:
            report(f"lifecycle after entering order id {order}", times["lookup"],
                   LOOKUP_TARGET_S)


if __name__ == "__main__":
    main()
