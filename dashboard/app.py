"""The dashboard's entry point: a router (`st.navigation`) and the sidebar shared by pages.

Run with `eventscope dashboard` (or `streamlit run dashboard/app.py` with $EVENTSCOPE_DB).
The sidebar chooses the store (bus / environment), the time window (ending at the newest
event), the auto-refresh interval and the logged PII reveal; pages read it via
`data.context()`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # `streamlit run` puts only this folder on the path
    sys.path.insert(0, str(HERE.parent))

import streamlit as st  # noqa: E402

from eventscope.dashboard import data, ui, views  # noqa: E402

REFRESH = {"off": 0, "30s": 30, "1m": 60, "5m": 300}
PAGES = [
    ("overview", "Overview", ":material/dashboard:"),
    ("graph", "Event graph", ":material/hub:"),
    ("failures", "Failures", ":material/error:"),
    ("undocumented", "Undocumented & drift", ":material/help:"),
    ("lifecycle", "Order lifecycle", ":material/timeline:"),
    ("subscriptions", "Subscriptions", ":material/notifications:"),
    ("contracts", "Contracts & catalog", ":material/menu_book:"),
]


def auth_configured() -> bool:
    """Whether Streamlit's OIDC login (`[auth]` in secrets.toml) is set up."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all
        return False


def sidebar() -> data.Context:
    """The shared controls; returns the context pages read."""
    side = st.sidebar
    named = data.environments()
    names = list(named)
    chosen = ui.query("env", "default")
    env = side.selectbox("Bus / environment", names,
                         index=names.index(chosen) if chosen in names else 0,
                         disabled=len(names) == 1)
    url = named[env]
    side.caption("Store")
    side.code(data.shown_url(url), language=None)
    windows = list(views.WINDOWS)
    wanted = ui.query("window", "all")
    window_name = side.selectbox("Time window", windows,
                                 format_func=views.WINDOW_LABELS.__getitem__,
                                 index=windows.index(wanted) if wanted in windows else 0,
                                 help="Windows end at the newest event in the store.",
                                 key="window")
    ui.set_query(window=None if window_name == "all" else window_name,
                 env=None if env == "default" else env)
    latest = data.latest_event_ms(url) if data.store_problem(url) is None else None
    catalog_path = data.catalog_path()
    side.caption("Catalog")
    side.code(catalog_path or "none configured (--catalog PATH)", language=None)
    refresh = side.selectbox("Auto-refresh", list(REFRESH), index=0)
    reveal = _reveal_toggle(side)
    if REFRESH[refresh]:
        _auto_refresh(REFRESH[refresh])
    return data.Context(url=url, shown_url=data.shown_url(url), window_name=window_name,
                        window=views.window_for(window_name, latest),
                        catalog_path=catalog_path, reveal_pii=reveal)


def _reveal_toggle(side: st.delta_generator.DeltaGenerator) -> bool:
    """The PII reveal: needs a logged-in user when login is configured; every turn-on is logged."""
    needs_login = auth_configured()
    logged_in = bool(getattr(st.user, "is_logged_in", False)) if needs_login else True
    if needs_login and not logged_in:
        side.button("Log in", on_click=st.login)
    reveal = side.toggle("Reveal PII (logged)", value=False, disabled=not logged_in, key="reveal",
                         help="Shows masked fields in full. Each reveal is written to the "
                              "server log with the user, if any.")
    if reveal and not st.session_state.get("pii_reveal_logged"):
        user = getattr(st.user, "email", None) if needs_login else None
        data.log.warning("PII reveal turned on by %s", user or "an anonymous session")
        st.session_state["pii_reveal_logged"] = True
    if not reveal:
        st.session_state["pii_reveal_logged"] = False
    return reveal


def _auto_refresh(seconds: int) -> None:
    """Rerun the whole app every `seconds` (a timer fragment; the data TTL is shorter)."""
    st.session_state.setdefault("refreshed_at", time.time())

    @st.fragment(run_every=seconds)
    def tick() -> None:
        if time.time() - st.session_state["refreshed_at"] >= seconds:
            st.session_state["refreshed_at"] = time.time()
            st.rerun(scope="app")

    tick()


def main() -> None:
    st.set_page_config(page_title="eventscope", page_icon=":material/hub:", layout="wide")
    pages = [st.Page(str(HERE / "app_pages" / f"{name}.py"), title=title, icon=icon,
                     url_path=name, default=name == "overview")
             for name, title, icon in PAGES]
    navigation = st.navigation(pages)
    st.session_state[data.CONTEXT_KEY] = sidebar()
    navigation.run()


main()
