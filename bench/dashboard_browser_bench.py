"""What a user waits for: every dashboard page timed in a real browser (Playwright over the
system Chromium, /usr/bin/chromium), beside the server-side `dashboard_bench.py`.

For each page, `--repeat` times (medians printed):

- cold: a new `eventscope dashboard` server is started, then a new browser tab opens the page;
  timed from starting the server to the page's main chart or table being visible (split into
  the server's start until its health check answers, and the first view);
- reload: the same tab reloaded (a new Streamlit session; the server's caches are warm);
- navigation: from another page, a click on the page in the sidebar menu.

"Visible" means: the page's heading is drawn, no script run is in progress, and a Plotly
chart, a dataframe or a message box is in the page's main area. Targets (issue 16): cold < 2
s, reload and navigation < 0.5 s. Where the time goes, per view: the script's own run time
(the server's `EVENTSCOPE_TIMINGS` line: sidebar and page) and, on a cold start, how long the
first run waited for the server's start-up imports (`serve.preload`); the bytes the server
sent over the WebSocket (the page's elements, figures and tables) and those fetched over HTTP
(the app's JavaScript, CSS and fonts; about 0 when the browser's cache serves them); when the
app's JavaScript had loaded (DOMContentLoaded, for page loads); the rest is the browser
loading the page's components from its cache, running them, drawing tables and Plotly.

    PYTHONPATH=. .venv/bin/python bench/dashboard_browser_bench.py                 # a small store
    PYTHONPATH=. .venv/bin/python bench/dashboard_browser_bench.py --db sqlite:////path/store.db
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from playwright.sync_api import sync_playwright  # noqa: E402

from bench_store import machine_line, verdict_line  # noqa: E402
from tests.dashboard_harness import BROWSER_ARGS, CHROMIUM, dashboard_server  # noqa: E402

TITLES = {"overview": "Overview", "graph": "Event graph", "failures": "Failures",
          "undocumented": "Undocumented events & schema drift", "lifecycle": "Order lifecycle",
          "subscriptions": "Subscriptions", "contracts": "Contracts & catalog"}
NAV_LABELS = {"overview": "Overview", "graph": "Event graph", "failures": "Failures",
              "undocumented": "Undocumented", "lifecycle": "Order lifecycle",
              "subscriptions": "Subscriptions", "contracts": "Contracts"}
COLD_TARGET_S, VIEW_TARGET_S = 2.0, 0.5
READY_JS = """title => {
    const main = document.querySelector('[data-testid="stMain"]');
    const heading = main && main.querySelector('h1');
    if (!heading || heading.innerText.trim() !== title) return false;
    if (document.querySelector('[data-testid="stStatusWidget"]')) return false;
    if (document.querySelector('[data-testid="stSkeleton"]')) return false;
    return !!main.querySelector('.js-plotly-plot .main-svg, [data-testid="stDataFrame"] canvas,'
                                + ' [data-testid="stAlert"]');
}"""
TIMING = re.compile(r"eventscope-timing page=(\S*) script_s=([0-9.]+) import_wait_s=([0-9.]+)")


def small_store(folder: Path) -> str:
    """The demo company's first 300 orders, ingested (about 2,000 events)."""
    from eventscope import simulator
    from eventscope.ingest import ingest_paths
    from eventscope.store import open_store

    files = simulator.write_ndjson(simulator.simulate(simulator.CompanyConfig.demo(), seed=7,
                                                      n_orders=300), folder)
    url = f"sqlite:///{folder / 'store.db'}"
    store = open_store(url)
    ingest_paths(store, [str(files.events_path), str(files.logs_path)], workers=0)
    store.engine.dispose()
    return url


class Meter:
    """Bytes received over the tab's WebSockets and over HTTP (the app's JavaScript, CSS,
    fonts), and the server's script timings."""

    def __init__(self, tab: Any, log: Path) -> None:
        self.received = self.http = 0
        self.log, self.seen = log, 0
        tab.on("websocket", lambda ws: ws.on("framereceived", self._frame))
        tab.on("requestfinished", self._request)

    def _frame(self, payload: bytes | str) -> None:
        self.received += len(payload)

    def _request(self, request: Any) -> None:
        try:
            self.http += max(request.sizes().get("responseBodySize", 0), 0)
        except Exception:  # noqa: BLE001 - the tab closed before the sizes came back
            pass

    def mark(self) -> None:
        self.received = self.http = 0
        self.seen = len(self.log.read_text().splitlines()) if self.log.exists() else 0

    def script_s(self) -> tuple[float, float]:
        """(script seconds, seconds waiting for the server's start-up imports) of the runs
        logged since `mark` (a view can take two runs)."""
        lines = self.log.read_text().splitlines()[self.seen:] if self.log.exists() else []
        found = [m for line in lines if (m := TIMING.search(line))]
        return (sum(float(m.group(2)) for m in found), sum(float(m.group(3)) for m in found))


BOOT_JS = """() => { const n = performance.getEntriesByType('navigation')[0];
                      return n ? n.domContentLoadedEventEnd / 1000 : 0; }"""


def view(tab: Any, meter: Meter, title: str, action: Any, load: bool = False
         ) -> dict[str, float]:
    """For one user action: seconds until visible, script seconds, KB received over the
    WebSocket and over HTTP, and (`load`: a page load) seconds until the app's JavaScript
    was loaded and run (DOMContentLoaded)."""
    meter.mark()
    started = time.perf_counter()
    action()
    tab.wait_for_function(READY_JS, arg=title, timeout=600_000, polling="raf")
    elapsed = time.perf_counter() - started
    time.sleep(0.3)  # the timing line follows the run's last message
    script, waited = meter.script_s()
    return {"s": elapsed, "script": script, "wait": waited, "ws_kb": meter.received / 1024,
            "http_kb": meter.http / 1024, "boot": tab.evaluate(BOOT_JS) if load else 0.0}


def one_round(browser: Any, url: str, extra: list[str], page: str,
              log: Path) -> dict[str, float]:
    """A new server; this page cold, reloaded, and reached from another page's menu."""
    started = time.perf_counter()
    with dashboard_server(url, *extra, stderr=log, timeout_s=600,
                          env={"EVENTSCOPE_TIMINGS": "1"}) as base:
        up = time.perf_counter() - started
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        tab = context.new_page()
        meter = Meter(tab, log)
        title = TITLES[page]
        first = view(tab, meter, title, lambda: tab.goto(f"{base}/{page}"), load=True)
        reload = view(tab, meter, title, tab.reload, load=True)
        other = "graph" if page == "overview" else "overview"
        tab.goto(f"{base}/{other}")
        tab.wait_for_function(READY_JS, arg=TITLES[other], timeout=600_000)
        link = tab.locator('[data-testid="stSidebarNav"] a').filter(has_text=NAV_LABELS[page])
        nav = view(tab, meter, title, lambda: link.first.click())
        context.close()
    figures = {"up": up, "cold": up + first["s"]}
    for kind, measured in (("first", first), ("reload", reload), ("nav", nav)):
        figures.update({f"{kind}_{key}": value for key, value in measured.items()})
    return figures


def note(t: dict[str, float], kind: str) -> str:
    """Where a view's time went."""
    boot = f"JS loaded {t[kind + '_boot']:.2f} s, " if t[kind + "_boot"] else ""
    wait = (f"waiting for start-up imports {t[kind + '_wait']:.2f} s, "
            if t[kind + "_wait"] >= 0.01 else "")
    return (f"{boot}{wait}script {t[kind + '_script']:.2f} s, WebSocket {t[kind + '_ws_kb']:,.0f} "
            f"KB, HTTP {t[kind + '_http_kb']:,.0f} KB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="the store (default: a small demo store built here)")
    parser.add_argument("--catalog", help="a catalog for the dashboard (--catalog)")
    parser.add_argument("--page", action="append", choices=list(TITLES),
                        help="time only this page (repeatable)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per page (medians)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="eventscope-browser-bench-"))
    url = args.db or small_store(folder)
    extra = ["--catalog", args.catalog] if args.catalog else []
    print(machine_line())
    print(f"store: {url}; catalog: {args.catalog or 'none'}; Chromium {CHROMIUM}; "
          f"medians of {args.repeat} rounds (a new server each)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        for page in args.page or list(TITLES):
            rounds = [one_round(browser, url, extra, page, folder / f"{page}-{n}.log")
                      for n in range(args.repeat)]
            t = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
            print(verdict_line(f"{page} cold (server start + first view)", t["cold"],
                               COLD_TARGET_S, note=f"start {t['up']:.2f} s + view "
                               f"{t['first_s']:.2f} s: {note(t, 'first')}"))
            for kind, label in (("reload", "reload"), ("nav", "sidebar navigation")):
                print(verdict_line(f"{page} {label}", t[f"{kind}_s"], VIEW_TARGET_S,
                                   note=note(t, kind)))
        browser.close()
    if not os.environ.get("KEEP"):
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
