"""Helpers for the dashboard tests: seeded stores and an AppTest of one page."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from eventscope.store import open_store
from tests import findings_scenario as scenario

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
PAGES = ["overview", "graph", "failures", "undocumented", "lifecycle", "subscriptions",
         "contracts"]


def seed(url: str) -> str:
    """Write the findings scenario (one order placed, paid, cancelled; four consumers)."""
    store = open_store(url)
    store.write_batch(scenario.bus_events(), scenario.invocations())
    store.engine.dispose()
    return url


def page(name: str, **query: str) -> AppTest:
    """An AppTest of the router switched to one page, with deep-link query parameters."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    at.switch_page(f"app_pages/{name}.py")
    return at.run()


# --- a real server and browser (Playwright over the system Chromium) -------------------------

CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def dashboard_server(db_url: str, *args: str, stderr: Path | None = None,
                     timeout_s: float = 60, env: dict[str, str] | None = None
                     ) -> Iterator[str]:
    """`eventscope dashboard --db URL ARGS` on a free port; yields its base URL once healthy.
    The server's stderr goes to `stderr` (a file) when given; `env` adds variables."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    root = APP.parent.parent
    port = free_port()
    variables = dict(os.environ, PYTHONPATH=str(root))
    variables.pop("EVENTSCOPE_CATALOG", None)
    variables.pop("EVENTSCOPE_ENVIRONMENTS", None)
    variables.update(env or {})
    with open(stderr or os.devnull, "w") as err:
        process = subprocess.Popen([sys.executable, "-m", "eventscope", "dashboard", "--db",
                                    db_url, "--port", str(port), *args], env=variables,
                                   cwd=str(root),
                                   stdout=subprocess.DEVNULL, stderr=err)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1) as answer:
                        if answer.status == 200:
                            break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the dashboard did not become healthy") from None
                    time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=20)


def settle(tab: Any, title: str, timeout_ms: int = 30_000) -> None:
    """Wait for the page's heading and for its script run to finish."""
    tab.get_by_role("heading", name=title).first.wait_for(timeout=timeout_ms)
    tab.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=timeout_ms)
    tab.wait_for_timeout(300)


ROW_PX = 35  # Streamlit's dataframe row (and header) height
GRID_ROWS_JS = """el => [...el.querySelectorAll('table tr')]
    .map(r => [...r.querySelectorAll('th,td')].map(c => c.textContent))"""


def grid_after(anchor: Any) -> Any:
    """The first dataframe after an element (a heading, a caption, a widget)."""
    return anchor.locator("xpath=following::*[@data-testid='stDataFrame'][1]")


def grid_rows(tab: Any, anchor: Any) -> list[dict[str, str]]:
    """The rows a dataframe shows, as {column: text}. Cells are drawn on a canvas; the grid's
    accessible table holds the cells in view, so the grid is scrolled across and the columns
    seen at each position merged."""
    grid = grid_after(anchor)
    grid.scroll_into_view_if_needed()
    tab.wait_for_timeout(300)
    width = grid.evaluate("el => { const s = el.querySelector('.dvn-scroller');"
                          " return [s.scrollWidth, s.clientWidth]; }")
    rows: dict[int, dict[str, str]] = {}
    position = 0
    while True:
        grid.evaluate(f"el => {{ el.querySelector('.dvn-scroller').scrollLeft = {position}; }}")
        tab.wait_for_timeout(200)
        table = grid.evaluate(GRID_ROWS_JS)
        if table:
            header = table[0]
            for index, cells in enumerate(table[1:]):
                rows.setdefault(index, {}).update(zip(header, cells))
        if position >= width[0] - width[1]:
            break
        position = min(position + max(width[1] // 2, 100), width[0] - width[1])
    return [rows[index] for index in sorted(rows)]


def open_link_cell(tab: Any, anchor: Any, row: int) -> Any:
    """Click the link column (the last one) of row `row` in the dataframe after `anchor` and
    return the tab it opens. Cells are drawn on a canvas: the grid is scrolled to its right
    edge and the cell clicked by position (tried three times: a click during a rerun's layout
    can miss)."""
    from playwright.sync_api import TimeoutError as Timeout

    grid = grid_after(anchor)
    for _ in range(3):
        grid.scroll_into_view_if_needed()
        grid.evaluate("el => { const s = el.querySelector('.dvn-scroller');"
                      " s.scrollLeft = s.scrollWidth; }")
        tab.wait_for_timeout(500)
        box = grid.bounding_box()
        assert box is not None
        x, y = box["x"] + box["width"] - 60, box["y"] + ROW_PX * (row + 1.5)
        tab.mouse.move(x, y)
        tab.wait_for_timeout(300)
        try:
            with tab.context.expect_page(timeout=10_000) as opened:
                tab.mouse.click(x, y)
            return opened.value
        except Timeout:
            continue
    raise AssertionError("no link opened from the table")
