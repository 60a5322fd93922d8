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
                     timeout_s: float = 60) -> Iterator[str]:
    """`eventscope dashboard --db URL ARGS` on a free port; yields its base URL once healthy.
    The server's stderr goes to `stderr` (a file) when given."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    root = APP.parent.parent
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(root))
    env.pop("EVENTSCOPE_CATALOG", None)
    env.pop("EVENTSCOPE_ENVIRONMENTS", None)
    with open(stderr or os.devnull, "w") as err:
        process = subprocess.Popen([sys.executable, "-m", "eventscope", "dashboard", "--db",
                                    db_url, "--port", str(port), *args], env=env, cwd=str(root),
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
