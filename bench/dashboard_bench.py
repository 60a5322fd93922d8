"""Time to first render of every dashboard page, cold and warm cache, via Streamlit AppTest.

Builds a store of synthetic orders (or uses --db), then renders each page twice: cold (all
Streamlit caches cleared) and warm (same process, caches filled). Prints seconds per page and
the ratio to a floor measured in the same run: reading the window's events and invocations
through `eventscope.findings.load` with no dashboard at all. Targets (issue 6): cold < 2 s,
warm < 0.5 s; the order lifecycle with an order id < 0.5 s.

    PYTHONPATH=$PWD python bench/dashboard_bench.py --orders 20000
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from eventscope.findings import load  # noqa: E402
from eventscope.records import BusEvent, Invocation  # noqa: E402
from eventscope.store import open_store  # noqa: E402

PAGES = ["overview", "graph", "failures", "undocumented", "lifecycle", "subscriptions",
         "contracts"]
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


def render(name: str, **query: str) -> float:
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=600)
    for key, value in query.items():
        at.query_params[key] = value
    at.switch_page(f"app_pages/{name}.py")
    started = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - started
    if at.exception:
        raise SystemExit(f"{name}: {at.exception[0].message}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--db", help="benchmark an existing store instead of generating one")
    args = parser.parse_args()
    url = args.db
    if url is None:
        path = Path(tempfile.mkdtemp()) / "bench.db"
        url = f"sqlite:///{path}"
        started = time.perf_counter()
        generate(url, args.orders)
        print(f"generated {args.orders:,} orders in {time.perf_counter() - started:.1f} s")
    os.environ["EVENTSCOPE_DB"] = url
    counts = open_store(url).counts()
    print(f"store: {counts['events']:,} events, {counts['invocations']:,} invocations")
    engine = open_store(url).engine
    started = time.perf_counter()
    load.load_events(engine)
    load.load_attempts(engine)
    floor = time.perf_counter() - started
    print(f"floor (load events + attempts, no dashboard): {floor:.2f} s")
    print(f"{'page':<16}{'cold s':>8}{'warm s':>8}{'cold/floor':>12}")
    for name in PAGES:
        query = {"order": "ord-0000042"} if name == "lifecycle" else {}
        st.cache_data.clear()
        st.cache_resource.clear()
        cold = render(name, **query)
        warm = render(name, **query)
        print(f"{name:<16}{cold:>8.2f}{warm:>8.2f}{cold / floor:>12.2f}")
    st.cache_data.clear()
    render("lifecycle")
    print(f"lifecycle after entering an order id (list page warm): "
          f"{render('lifecycle', order='ord-0000043'):.2f} s")


if __name__ == "__main__":
    main()
