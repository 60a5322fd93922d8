"""The dashboard's entry point: a router (`st.navigation`) and the sidebar shared by pages.

Run with `eventscope dashboard` (or `streamlit run dashboard/app.py` with $EVENTSCOPE_DB).
The sidebar chooses the store (bus / environment), the time window (ending at the newest
event), the auto-refresh interval and the logged PII reveal; pages read it via
`data.context()`. With login configured (`[auth]` in secrets.toml) an anonymous session gets
the login page and nothing else, and the access policy (`eventscope.dashboard.access`) decides
which environments a user sees and whether they may reveal PII.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:  # `streamlit run` puts only this folder on the path
    sys.path.insert(0, str(HERE.parent))

import streamlit as st  # noqa: E402

from eventscope.dashboard import access, data, ui, views  # noqa: E402

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
    window = views.window_for(window_name, latest)
    kept, notes = data.retention(url, window.since_ms) if latest is not None else (None, [])
    for line in ([kept] if kept else []) + notes:  # our own words and dates only
        side.caption(line)
    refresh = side.selectbox("Auto-refresh", list(REFRESH), index=0)
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
    reveal = side.toggle("Reveal PII (logged)", value=False, disabled=not allowed, key="reveal",
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
    st.set_page_config(page_title="eventscope", page_icon=":material/hub:", layout="wide")
    rules, user = policy(), claims()
    if not access.logged_in(user, rules):
        login_page()
        return
    if not access.visible_environments(data.environments(), user, rules):
        st.title("eventscope")
        st.error("Your account may not see any environment of this dashboard.")
        return
    pages = [st.Page(str(HERE / "app_pages" / f"{name}.py"), title=title, icon=icon,
                     url_path=name, default=name == "overview")
             for name, title, icon in PAGES]
    navigation = st.navigation(pages)
    st.session_state[data.CONTEXT_KEY] = sidebar()
    navigation.run()


main()
