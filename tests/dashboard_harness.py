"""Helpers for the dashboard tests: seeded stores and an AppTest of one page."""

from __future__ import annotations

from pathlib import Path

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
