"""The dashboard's state in a real browser (Playwright over the system Chromium, real typing
and clicks): five order searches in a row each show their order; with two environments
(`--env staging=URL`) and staging chosen, every sidebar page, every overview tile and the
failures' "open order" link keep showing staging's data; no request leaves 127.0.0.1; a
WebSocket upgrade for another host name is refused; the server logs no warning at start.

Two stores with distinguishable data: the default one holds the findings scenario (order
o-1), staging holds orders stg-1 … stg-5 only (stg-3's payment failed every attempt).
"""

from __future__ import annotations

import base64
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventscope.records import BusEvent, Invocation
from eventscope.store import open_store
from tests import findings_scenario as scenario
from tests.dashboard_harness import (BROWSER_ARGS, CHROMIUM, dashboard_server,
                                     open_link_cell, seed, settle)

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is required under CI (apt-get install chromium)",
                    pytrace=False)
    pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)",
                allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")

STAGING_ORDERS = [f"stg-{n}" for n in range(1, 6)]
TITLES = {"overview": "Overview", "graph": "Event graph", "failures": "Failures",
          "undocumented": "Undocumented events & schema drift", "lifecycle": "Order lifecycle",
          "subscriptions": "Subscriptions", "contracts": "Contracts & catalog"}


def staging_records() -> tuple[list[BusEvent], list[Invocation]]:
    """Five orders placed and paid; billing-fn handles each, stg-3's payment fails 3 times."""
    events, calls = [], []
    for n, key in enumerate(STAGING_ORDERS):
        t = scenario.T0 + n * 60_000
        for i, (source, kind) in enumerate((("shop", "OrderPlaced"), ("payments", "OrderPaid"))):
            detail = f'{{"orderId":"{key}"}}'
            events.append(BusEvent(id=f"{key}-e{i}", source=source, detail_type=kind,
                                   time_ms=t + i * 1000, detail=detail, size_bytes=200,
                                   version="1", correlation_key=key))
            failing = key == "stg-3" and kind == "OrderPaid"
            for attempt in range(3 if failing else 1):
                calls.append(Invocation(
                    request_id=f"{key}-r{i}", consumer="billing-fn",
                    log_group="/aws/lambda/billing-fn", log_stream="s",
                    start_ms=t + i * 1000 + 100 + attempt * 20_000,
                    outcome="error" if failing else "ok", event_id=f"{key}-e{i}",
                    duration_ms=5.0, error_type="ValueError" if failing else None,
                    error_message="card declined" if failing else None, complete=True))
    return events, calls


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("state")
    default = seed(f"sqlite:///{folder / 'default.db'}")
    staging = f"sqlite:///{folder / 'staging.db'}"
    store = open_store(staging)
    store.write_batch(*staging_records())
    store.engine.dispose()
    return default, staging


@pytest.fixture(scope="module")
def server_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("log") / "stderr.txt"


@pytest.fixture(scope="module")
def server(stores: tuple[str, str], server_log: Path) -> Iterator[str]:
    default, staging = stores
    with dashboard_server(default, "--env", f"staging={staging}", stderr=server_log) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def tab(browser: Any, server: str) -> Iterator[Any]:
    """A fresh tab in which every request to a host other than the server's is failed and
    recorded in `tab.outside`."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    outside: list[str] = []
    ours = re.compile(r"^(https?|wss?)://127\.0\.0\.1:\d+/")

    def guard(route: Any) -> None:
        url = route.request.url
        if ours.match(url) or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.outside = outside
    yield page
    context.close()


def store_shown(tab: Any) -> str:
    """The store URL the sidebar says this page reads."""
    return str(tab.locator('[data-testid="stSidebar"] [data-testid="stCode"]').first
               .inner_text())


def choose(tab: Any, label: str, option: str, within: str = "stSidebar") -> None:
    """Pick an option of a selectbox by clicking it open and clicking the option."""
    tab.locator(f'[data-testid="{within}"] [data-testid="stSelectbox"]').filter(
        has_text=label).first.click()
    tab.get_by_role("option", name=option, exact=True).click()


def search(tab: Any, order: str) -> None:
    """Type an order id into the lifecycle search box like a person and press Enter."""
    box = tab.get_by_label("Order id or event id")
    box.click()
    box.press("Control+a")
    box.press_sequentially(order, delay=15)
    box.press("Enter")


def test_five_order_searches_in_a_row_each_show_their_order(tab: Any, server: str) -> None:
    """The bug: every second search snapped back to the one before (the box had no key)."""
    tab.goto(f"{server}/lifecycle?env=staging")
    settle(tab, "Order lifecycle")
    for order in STAGING_ORDERS:
        search(tab, order)
        tab.get_by_text(f"Order {order}: 2 events").wait_for(timeout=30_000)
        assert tab.get_by_label("Order id or event id").input_value() == order
        assert f"order={order}" in tab.url and "env=staging" in tab.url
    assert tab.outside == []


def test_staging_survives_every_sidebar_page_tile_and_order_link(tab: Any, server: str) -> None:
    tab.goto(server)
    settle(tab, "Overview")
    assert "default.db" in store_shown(tab)
    choose(tab, "Bus / environment", "staging")
    tab.wait_for_url(re.compile(r"env=staging"))
    settle(tab, "Overview")
    assert "staging.db" in store_shown(tab)
    # every page of the sidebar's menu (a click drops the query: the env must come back)
    nav = tab.locator('[data-testid="stSidebarNav"] a')
    names = [link.get_attribute("href") or "" for link in nav.all()]
    assert len(names) == len(TITLES)
    for index, href in enumerate(names):
        nav.nth(index).click()
        page = href.rstrip("/").rsplit("/", 1)[-1] or "overview"
        tab.wait_for_url(re.compile(rf"/{page}\?(.*&)?env=staging"))
        settle(tab, TITLES[page])
        assert "staging.db" in store_shown(tab), page
        assert tab.locator('[data-testid="stException"]').count() == 0, page
    # every tile link of the overview
    tab.goto(f"{server}/overview?env=staging")
    settle(tab, "Overview")
    tiles = tab.locator('[data-testid="stMain"] [data-testid="stPageLink"] a')
    count = tiles.count()
    assert count > 0
    for index in range(count):
        tab.goto(f"{server}/overview?env=staging")
        settle(tab, "Overview")
        target = (tiles.nth(index).get_attribute("href") or "").split("?")[0]
        page = target.rstrip("/").rsplit("/", 1)[-1]
        tiles.nth(index).click()
        tab.wait_for_url(re.compile(rf"/{page}\?(.*&)?env=staging"))
        settle(tab, TITLES[page])
        assert "staging.db" in store_shown(tab), tab.url
    # the failures page's "open order" link opens staging's order stg-3 in a new tab
    tab.goto(f"{server}/failures?env=staging")
    settle(tab, "Failures")
    order = open_link_cell(tab, tab.get_by_role("heading", name="Final failures"), row=0)
    settle(order, "Order lifecycle")
    assert "env=staging" in order.url
    order.get_by_text("Order stg-3: 2 events").wait_for(timeout=30_000)
    assert "staging.db" in store_shown(order)
    assert tab.outside == []


def test_a_table_downloads_as_csv_of_the_rows_shown(tab: Any, server: str) -> None:
    """The CSV is made on click (deferred), of the same rows, in the chosen environment."""
    tab.goto(f"{server}/failures?env=staging")
    settle(tab, "Failures")
    with tab.expect_download(timeout=30_000) as download:
        tab.get_by_role("heading", name="Final failures").locator(
            "xpath=following::*[@data-testid='stDownloadButton'][1]//button").click()
    assert download.value.suggested_filename == "final-failures.csv"
    lines = Path(download.value.path()).read_text().splitlines()
    assert "event_id" in lines[0].split(",") and len(lines) == 2
    assert "stg-3-e1" in lines[1]


def test_no_request_leaves_the_machine(tab: Any, server: str) -> None:
    """Every page, loaded fresh: nothing is fetched from another host (the favicon was a font
    from an external host)."""
    for page, title in TITLES.items():
        tab.goto(f"{server}/{page}")
        settle(tab, title)
    assert tab.outside == []
    icon = tab.locator("link[rel*='icon']").first.get_attribute("href") or ""
    assert icon and (not icon.startswith("http") or "127.0.0.1" in icon), icon


def upgrade(server: str, host: str, origin: str) -> str:
    """The status line of a WebSocket upgrade to Streamlit's stream with these headers."""
    port = int(server.rsplit(":", 1)[1])
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: streamlit\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request.encode())
        answer = conn.recv(4096).decode(errors="replace")
    return answer.split("\r\n", 1)[0]


def test_a_websocket_for_another_host_name_is_refused(server: str) -> None:
    """DNS rebinding: evil.example resolving to 127.0.0.1 must not reach the stream; the
    same request with the server's own host name upgrades."""
    port = server.rsplit(":", 1)[1]
    assert " 101 " in upgrade(server, f"127.0.0.1:{port}", server)
    refused = upgrade(server, "evil.example", "http://evil.example")
    assert " 101 " not in refused and refused.startswith("HTTP/1.1 4"), refused


def test_the_server_logs_no_warning_at_start(server: str, server_log: Path,
                                             tab: Any) -> None:
    tab.goto(f"{server}/overview")
    settle(tab, "Overview")
    logged = server_log.read_text()
    assert "eventscope dashboard on http://127.0.0.1" in logged  # the log was captured
    assert [line for line in logged.splitlines() if "WARNING" in line] == []
