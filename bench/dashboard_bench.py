"""Time to first render of every dashboard page, cold and warm, via Streamlit AppTest.

Reads the store `bench/bench_store.py` builds once from the ingest bench's data set (default
1,000,000 events of ~1 KB, 30 detail-types, ~0.83M invocations; or `--db URL`), then for
each page starts a fresh Python process, as `eventscope dashboard` starts a new server:

- cold, start-up included: from starting the process (interpreter, imports, the
  dashboard's `preload`) to the page's first render done; no Streamlit cache, no open
  store, SQLite's page cache empty (the OS file cache is not dropped);
- cold, caches cleared: every Streamlit cache cleared and the store closed, in the same
  process;
- warm: the median of three more renders (caches filled);
- for the lifecycle page, the render after typing an order id into its search box.

Each page gets `--repeat` new processes (default 3; medians are printed, as the machines
these run on are shared), each bounded by `--timeout` seconds (a page that takes longer is
missed, and the bench goes on). One line per figure: value, target (issue 6: cold < 2 s,
warm < 0.5 s, lifecycle after entering an id < 0.5 s), met or missed.

    .venv/bin/python bench/dashboard_bench.py                  # the 1M store (built once)
    .venv/bin/python bench/dashboard_bench.py --events 50000   # a quick run
    .venv/bin/python bench/dashboard_bench.py --db sqlite:////path/store.db
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

STARTED = time.time()  # before the heavy imports: a cold figure includes them

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sqlalchemy as sa  # noqa: E402
import streamlit as st  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from bench_store import ensure_store, machine_line, verdict_line  # noqa: E402
from eventscope.dashboard.serve import preload  # noqa: E402
from eventscope.store import open_store  # noqa: E402
from eventscope.tables import events as events_table  # noqa: E402

PAGES = ["overview", "graph", "failures", "undocumented", "lifecycle", "subscriptions",
         "contracts"]
COLD_TARGET_S, WARM_TARGET_S, LOOKUP_TARGET_S = 2.0, 0.5, 0.5
WARM_RUNS = 3


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
    cold_done = time.time()
    _, warm = render(name, **query)
    st.cache_data.clear()
    st.cache_resource.clear()
    _, cleared = render(name, **query)
    warm = statistics.median(render(name, **query)[1] for _ in range(WARM_RUNS))
    result = {"cold": cold, "cold_done": cold_done, "started": STARTED, "cleared": cleared,
              "warm": warm}
    if name == "lifecycle":
        at, _ = render(name)
        at.text_input[0].input(order)
        started = time.perf_counter()
        at.run()
        result["lookup"] = time.perf_counter() - started
        if at.exception or not at.text or not at.text[0].value.startswith(f"Order {order}"):
            raise SystemExit(f"lifecycle lookup of {order} did not show the order")
    return result


def child_times(name: str, order: str, env: dict[str, str],
                timeout: float) -> dict[str, float] | None:
    """One new server process timing one page (None when it took over `timeout` s)."""
    spawned = time.time()
    try:
        child = subprocess.run([sys.executable, __file__, "--page", name, "--order", order],
                               env=env, capture_output=True, text=True, check=False,
                               timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if child.returncode:
        raise SystemExit(f"{name}: {child.stderr.strip()[-2000:]}")
    times = json.loads(child.stdout.strip().splitlines()[-1])
    times["startup"] = times["cold_done"] - spawned - times["cold"]
    times["cold_total"] = times["cold_done"] - spawned
    return times


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out",
                        help="where the data files and the store are (built once)")
    parser.add_argument("--db", help="benchmark this store instead of the bench's")
    parser.add_argument("--page", help=argparse.SUPPRESS)  # a child: this page only
    parser.add_argument("--order", help="the order id for the lifecycle page")
    parser.add_argument("--repeat", type=int, default=3,
                        help="new server processes per page; the median is printed")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds a page's process may take before it counts as missed")
    args = parser.parse_args()
    if args.page:
        print(json.dumps(one_page(args.page, args.order)))
        return
    url = args.db
    if url is None:
        url, facts = ensure_store(args.out, args.events, args.seed)
    store = open_store(url)
    store.refresh_rollups()  # as `eventscope ingest` and the collectors leave it
    counts = store.counts()
    store.engine.dispose()
    order = args.order or an_order(url)
    print(machine_line())
    print(f"store: {counts['events']:,} events, {counts['invocations']:,} invocations; "
          f"medians of {args.repeat} new processes per page")
    env = {**os.environ, "EVENTSCOPE_DB": url, "PYTHONPATH": str(ROOT)}
    env.pop("EVENTSCOPE_CATALOG", None)
    for name in PAGES:
        runs = [child_times(name, order, env, args.timeout) for _ in range(args.repeat)]
        done = [run for run in runs if run is not None]
        if len(done) < len(runs):
            print(verdict_line(f"{name}: every figure", None, COLD_TARGET_S,
                               note=f"timed out after {args.timeout:.0f} s"))
            continue
        times = {key: statistics.median(run[key] for run in done) for key in done[0]}
        print(verdict_line(f"{name} cold, start-up included", times["cold_total"],
                           COLD_TARGET_S, note=f"of which start-up {times['startup']:.2f} s"))
        print(verdict_line(f"{name} cold, caches cleared", times["cleared"], COLD_TARGET_S))
        print(verdict_line(f"{name} warm", times["warm"], WARM_TARGET_S))
        if "lookup" in times:
            print(verdict_line(f"lifecycle after entering order id {order}", times["lookup"],
                               LOOKUP_TARGET_S))


if __name__ == "__main__":
    main()
