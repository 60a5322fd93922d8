"""The dashboard in a real headless Chromium (Playwright over the system browser): every page
loads without an exception box, the graph draws, an order search shows its timeline, deep
links open the right state, and hostile payloads stay inert text. Screenshots go to a
temporary folder ($EVENTSCOPE_SCREENSHOTS to keep them). One `eventscope dashboard` server
serves the whole module.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventscope.records import BusEvent, Invocation
from eventscope.store import open_store
from tests import findings_scenario as scenario
from tests.dashboard_harness import PAGES

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
# Screenshots are test artefacts: written to a temporary folder unless EVENTSCOPE_SCREENSHOTS
# names one (`EVENTSCOPE_SCREENSHOTS=docs/screenshots make test` refreshes the README's).
SHOTS = Path(os.environ.get("EVENTSCOPE_SCREENSHOTS")
             or Path(tempfile.gettempdir()) / "eventscope-screenshots")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
HOSTILE = {
    "script": "<script>alert(1)</script>",
    "img": "<img src=x onerror=alert(1)>",
    "link": "[click](javascript:alert(1))",
    "href": '<a href="javascript:alert(1)">click</a>',
    "image": "![x](http://127.0.0.1:9/x.png)",
}

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is required under CI (apt-get install chromium)",
                    pytrace=False)
    pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)",
                allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


def hostile_records() -> tuple[list[BusEvent], list[Invocation]]:
    """An order whose payload, type name and consumer error carry markup and links."""
    detail = ('{"orderId":"ord-xss","note":%s,"img":%s,"link":%s,"href":%s,"image":%s}'
              % tuple(__import__("json").dumps(v) for v in HOSTILE.values()))
    events = [BusEvent(id="x1", source="shop", detail_type="OrderPlaced",
                       time_ms=scenario.T0 + 130_000, detail=detail, size_bytes=len(detail),
                       version="1", correlation_key="ord-xss"),
              BusEvent(id="x2", source="evil", detail_type=HOSTILE["img"],
                       time_ms=scenario.T0 + 131_000, detail='{"orderId":"ord-xss"}',
                       size_bytes=100, version="1", correlation_key="ord-xss")]
    calls = [Invocation(request_id="rx", consumer="billing-fn", log_group="/aws/lambda/billing-fn",
                        log_stream="s", start_ms=scenario.T0 + 130_500, outcome="error",
                        event_id="x1", duration_ms=5.0, error_type="ValueError",
                        error_message=HOSTILE["script"] + " " + HOSTILE["image"], complete=True)]
    return events, calls


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`eventscope dashboard` over a seeded SQLite store, on a free port."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'store.db'}"
    store = open_store(url)
    events, calls = hostile_records()
    store.write_batch(scenario.bus_events() + events, scenario.invocations() + calls)
    store.engine.dispose()
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("EVENTSCOPE_CATALOG", None)
    process = subprocess.Popen([sys.executable, "-m", "eventscope", "dashboard", "--db", url,
                                "--port", str(port)], env=env, cwd=str(ROOT),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("dashboard did not become healthy")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: object, server: str) -> Iterator[object]:
    """A fresh tab that records dialogs and requests leaving for 127.0.0.1:9."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    tab.dialogs, tab.leaks = [], []
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    tab.on("request", lambda request: tab.leaks.append(request.url)
           if "127.0.0.1:9/" in request.url else None)
    yield tab
    context.close()


def settle(tab: object, title: str) -> None:
    """Wait for the page title and for the script run to finish."""
    tab.get_by_role("heading", name=title).first.wait_for(timeout=30_000)
    tab.wait_for_load_state("networkidle")
    tab.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=30_000)
    tab.wait_for_timeout(500)


TITLES = {"overview": "Overview", "graph": "Event graph", "failures": "Failures",
          "undocumented": "Undocumented events & schema drift", "lifecycle": "Order lifecycle",
          "subscriptions": "Subscriptions", "contracts": "Contracts & catalog"}


@pytest.mark.parametrize("name", PAGES)
def test_every_page_loads_without_an_exception(page: object, server: str, name: str) -> None:
    page.goto(f"{server}/{name}")
    settle(page, TITLES[name])
    assert page.locator('[data-testid="stException"]').count() == 0
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_the_graph_draws(page: object, server: str) -> None:
    page.goto(f"{server}/graph")
    settle(page, "Event graph")
    page.locator(".js-plotly-plot").first.wait_for(timeout=20_000)
    assert page.locator(".js-plotly-plot .scatterlayer .trace").count() > 0


def test_an_order_search_shows_its_timeline(page: object, server: str) -> None:
    page.goto(f"{server}/lifecycle")
    settle(page, "Order lifecycle")
    box = page.get_by_label("Order id or event id")
    box.fill("o-1")
    box.press("Enter")
    page.get_by_text("Order o-1: 3 events").wait_for(timeout=20_000)
    page.locator(".js-plotly-plot").first.wait_for(timeout=20_000)
    assert "order=o-1" in page.url
    page.screenshot(path=str(SHOTS / "lifecycle-order.png"))


def test_a_deep_link_opens_the_chosen_consumer_and_type(page: object, server: str) -> None:
    page.goto(f"{server}/failures?consumer=billing-fn&type=OrderPaid")
    settle(page, "Failures")
    boxes = page.locator('[data-testid="stSelectbox"]')
    texts = [boxes.nth(i).inner_text() + " " + " ".join(
        boxes.nth(i).locator("input").evaluate_all("els => els.map(e => e.value)"))
        for i in range(boxes.count())]
    assert any("billing-fn" in t for t in texts) and any("OrderPaid" in t for t in texts)


def test_hostile_payloads_render_as_inert_text(page: object, server: str) -> None:
    """No dialog opens and nothing is fetched from 127.0.0.1:9 on the pages that show the
    hostile order, its type name and its error; the script text itself is visible."""
    for path, title in [("lifecycle?order=ord-xss", "Order lifecycle"), ("graph", "Event graph"),
                        ("failures", "Failures"), ("undocumented",
                                                   "Undocumented events & schema drift")]:
        page.goto(f"{server}/{path}")
        settle(page, title)
        page.wait_for_timeout(500)
        if path.startswith("lifecycle"):  # waited for: drawn after `settle` on a busy machine
            page.get_by_text(HOSTILE["script"], exact=False).first.wait_for(
                state="attached", timeout=30_000)
    assert page.dialogs == []
    assert page.leaks == []
    assert page.locator("img[src='x']").count() == 0
