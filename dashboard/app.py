"""The dashboard's entry point: a router (`st.navigation`) and the sidebar shared by pages.

Run with `eventscope dashboard` (or `streamlit run dashboard/app.py` with $EVENTSCOPE_DB).
The sidebar chooses the store (bus / environment), the time window (ending at the newest
event), the auto-refresh interval and the logged PII reveal; pages read it via
`data.context()`. With login configured (`[auth]` in secrets.toml) an anonymous session gets
the login page and nothing else, and the access policy (`eventscope.dashboard.access`) decides
which environments a user sees and whether they may reveal PII.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # `streamlit run` puts only this folder on the path
    sys.path.insert(0, str(HERE.parent))

import streamlit as st  # noqa: E402

from eventscope.dashboard import serve  # noqa: E402

_wait_began = time.perf_counter()
serve.wait_preloaded()  # the server's background imports, not the same ones at once here
PRELOAD_WAIT_S = time.perf_counter() - _wait_began

from eventscope.dashboard import access, data, ui, views  # noqa: E402

FAVICON = HERE / "assets" / "favicon.png"
# $EVENTSCOPE_TIMINGS=1: one stderr line per script run with the page and its run time
# (bench/dashboard_browser_bench.py reads them to tell script time from browser time).
TIMINGS = os.environ.get("EVENTSCOPE_TIMINGS") == "1"
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
    return policy().login


def policy() -> access.Policy:
    """The access policy from the app's secrets (none: no login, everything local)."""
    try:
        secrets = st.secrets.to_dict()
    except Exception:  # noqa: BLE001 - no secrets file at all
        secrets = {}
    return access.policy_from(secrets)


def claims() -> dict[str, object]:
    """The session's OIDC claims (empty when nobody is logged in)."""
    try:
        return dict(st.user.to_dict())
    except Exception:  # noqa: BLE001 - no user information in this session
        return {}


def login_page() -> None:
    """All an anonymous session is served when login is configured."""
    st.title("eventscope")
    st.write("Log in to see this event bus.")
    st.button("Log in", on_click=st.login, type="primary")


def sidebar() -> data.Context:
    """The shared controls; returns the context pages read."""
    side = st.sidebar
    named = data.environments()
    names = access.visible_environments(named, claims(), policy())
    env = ui.url_select("Bus / environment", names, "env", key="env", sticky=True,
                        default="default" if "default" in names else names[0],
                        container=side, disabled=len(names) == 1)
    url = named[env]
    side.caption("Store")
    side.code(data.shown_url(url), language=None)
    window_name = ui.url_select("Time window", list(views.WINDOWS), "window", key="window",
                                default="all", sticky=True, container=side,
                                format_func=views.WINDOW_LABELS.__getitem__,
                                help="Windows end at the newest event in the store.")
    latest = data.latest_event_ms(url) if data.store_problem(url) is None else None
    catalog_path = data.catalog_path()
    side.caption("Catalog")
    side.code(catalog_path or "none configured (--catalog PATH)", language=None)
    window = views.window_for(window_name, latest)
    kept, notes = data.retention(url, window.since_ms) if latest is not None else (None, [])
    for line in ([kept] if kept else []) + notes:  # our own words and dates only
        side.caption(line)
    refresh = ui.url_select("Auto-refresh", list(REFRESH), "refresh", key="refresh",
                            default="off", sticky=True, container=side)
    reveal = _reveal_toggle(side)
    if REFRESH[refresh]:
        _auto_refresh(REFRESH[refresh])
    return data.Context(url=url, shown_url=data.shown_url(url), window_name=window_name,
                        window=window,
                        catalog_path=catalog_path, reveal_pii=reveal)


def _reveal_toggle(side: st.delta_generator.DeltaGenerator) -> bool:
    """The PII reveal: needs the `reveal_pii` role when login is configured; every turn-on is
    logged with the user."""
    rules, user = policy(), claims()
    allowed = access.holds("reveal_pii", user, rules)
    st.session_state.setdefault("reveal", False)  # session only: a link never reveals PII
    reveal = side.toggle("Reveal PII (logged)", disabled=not allowed, key="reveal",
                         help="Shows masked fields in full. Each reveal is written to the "
                              "server log with the user, if any." if allowed else
                              "Needs the reveal_pii role.")
    reveal = reveal and allowed
    if reveal and not st.session_state.get("pii_reveal_logged"):
        who = user.get("email") if rules.login else None
        data.log.warning("PII reveal turned on by %s", who or "an anonymous session")
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
    # A local favicon: a `:material/...:` page icon makes the browser fetch a font from an
    # external host on every page load.
    st.set_page_config(page_title="eventscope", page_icon=str(FAVICON), layout="wide")
    rules, user = policy(), claims()
    if not access.logged_in(user, rules):
        login_page()
        return
    if not access.visible_environments(data.environments(), user, rules):
        st.title("eventscope")
        st.error("Your account may not see any environment of this dashboard.")
        return
    pages = [st.Page(str(HERE / "app_pages" / f"{name}.py"), title=title, icon=icon,
                     url_path=name) for name, title, icon in PAGES]
    # The app's root opens the overview at /overview (its documented path, carrying the
    # query): a default page is served at the root only, so it is a hidden landing page.
    landing = st.Page(lambda: None, title="eventscope", url_path="start", default=True,
                      visibility="hidden")
    navigation = st.navigation([landing, *pages])
    if navigation is landing:
        st.switch_page(pages[0], query_params=st.query_params.to_dict())
    started = time.perf_counter()
    try:
        st.session_state[data.CONTEXT_KEY] = sidebar()
        navigation.run()
    finally:
        if TIMINGS:
            print(f"eventscope-timing page={navigation.url_path} "
                  f"script_s={time.perf_counter() - started:.3f} "
                  f"import_wait_s={PRELOAD_WAIT_S:.3f}", file=sys.stderr, flush=True)


main()
