"""Screenshots of the running demo for docs/demo.md: docs/screenshots/demo-*.png.

Runs `eventscope demo` (30 minutes of history, the dashboard on a free port), waits until the
live company has run for a while, then opens each page in a headless Chromium (Playwright over
/usr/bin/chromium, as tests/test_dashboard_browser.py does) and saves a PNG, palette-reduced
with Pillow to keep the files small.

    PYTHONPATH=. .venv/bin/python docs/demo_screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
#: (file name, URL path and query, the page's heading)
SHOTS = [
    ("overview", "", "Overview"),
    ("subscriptions", "subscriptions", "Subscriptions"),
    ("failures", "failures?consumer=invoice-generator&type=OrderPaid", "Failures"),
    ("undocumented", "undocumented", "Undocumented events & schema drift"),
    ("graph", "graph", "Event graph"),
    ("contracts", "contracts", "Contracts & catalog"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_demo(db: Path, port: int) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "eventscope", "demo", "--backfill", "0.5", "--port", str(port),
         "--db", f"sqlite:///{db}"], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stderr or []), daemon=True).start()
    return process, lines


def wait_for(lines: list[str], prefix: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(line.startswith(prefix) for line in list(lines)):
            return
        time.sleep(0.5)
    raise SystemExit(f"the demo did not print {prefix!r} within {timeout:.0f} s")


def settle(tab: Page, title: str) -> None:
    tab.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
    tab.wait_for_load_state("networkidle")
    tab.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=60_000)
    tab.wait_for_timeout(1500)


def cancelled_order(db: Path) -> str | None:
    """An order warranty-handler handled and that was later cancelled (the article's bug)."""
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT e.correlation_key FROM events e WHERE e.detail_type = 'OrderCancelled' "
            "AND e.correlation_key IN (SELECT c.correlation_key FROM events c JOIN invocations "
            "i ON i.event_id = c.id WHERE i.consumer = 'warranty-handler') LIMIT 1").fetchone()
    return row[0] if row else None


def shrink(path: Path) -> None:
    """Palette PNG (256 colours): a dashboard screenshot loses nothing visible."""
    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=256).save(path, optimize=True)


def capture(base: str, out: Path, order: str | None) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        tab = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
        shots = list(SHOTS)
        if order:
            shots.append(("lifecycle", f"lifecycle?order={order}", "Order lifecycle"))
        for name, path, title in shots:
            tab.goto(f"{base}/{path}")
            settle(tab, title)
            target = out / f"demo-{name}.png"
            tab.screenshot(path=str(target))
            shrink(target)
            print(f"{target} ({target.stat().st_size // 1024} KiB)")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--live", type=float, default=45.0, help="seconds live before shooting")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "demo.db"
        process, lines = start_demo(db, port)
        try:
            wait_for(lines, "live:", timeout=300)
            time.sleep(args.live)
            capture(f"http://127.0.0.1:{port}", args.out, cancelled_order(db))
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
