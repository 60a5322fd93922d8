"""Rendering helpers every page shares: empty states, tables with CSV download, payloads,
deep-link query parameters. Untrusted text only ever goes to st.json, st.code, st.text or
st.dataframe from here; markdown and captions carry our own words only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from eventscope.dashboard import data, views

T = TypeVar("T")

INGEST_HINT = ("eventscope ingest events.ndjson consumer-logs.ndjson --db URL   "
               "# or run a collector against your bus")


def require_data(ctx: data.Context) -> bool:
    """False (after showing what to run) when the store cannot be read or holds nothing."""
    problem = data.store_problem(ctx.url)
    if problem:
        st.error("The store cannot be opened.")
        st.code(problem, language=None)
        st.info("Point the dashboard at a store with `eventscope dashboard --db URL`, "
                "or create one by ingesting files:")
        st.code(INGEST_HINT, language="bash")
        return False
    if data.is_empty(ctx.url):
        st.info("The store is empty: nothing has been ingested yet. To get data, run:")
        st.code(INGEST_HINT, language="bash")
        return False
    return True


def empty(message: str, command: str | None = None) -> None:
    """An empty state in our own words, with the command that would produce data."""
    st.info(message)
    if command:
        st.code(command, language="bash")


def no_catalog(problem: str | None, what: str) -> None:
    """The state shown where a finding needs the catalog and none is loaded."""
    if problem:
        st.warning(f"The catalog could not be loaded, so {what} cannot be shown.")
        st.code(problem, language=None)
    else:
        empty(f"No catalog configured: {what} needs one. Start the dashboard with a catalog:",
              "eventscope dashboard --db URL --catalog path/to/catalog")


SHOWN_ROWS = 1_000
"""At most this many rows of a table go to the browser (the CSV holds them all): the final
failures of a 1M-event store were 3.6 MB sent over the WebSocket on every view."""


def table(df: pd.DataFrame, name: str, every_row: Callable[[], pd.DataFrame] | None = None,
          **options: Any) -> Any:
    """A dataframe (its first `SHOWN_ROWS` rows, said so when there are more) plus a CSV
    download of all its rows (formula cells neutralised), or of `every_row()`'s when the
    table shows a bounded part of them. The CSV is made when the button is clicked
    (deferred data), not on every run: encoding every table of a page at each rerun cost
    script time and a media upload per table (and the whole read, for a bounded one)."""
    if len(df) > SHOWN_ROWS:
        st.caption(f"Showing the first {SHOWN_ROWS:,} of {len(df):,} rows; the CSV below has "
                   "them all.")
    shown = st.dataframe(df.head(SHOWN_ROWS), width="stretch", hide_index=True, **options)
    rows = every_row or (lambda: df)
    st.download_button("Download CSV", lambda: views.csv_bytes(rows()), file_name=f"{name}.csv",
                       mime="text/csv", key=f"csv-{name}", on_click="ignore")
    return shown


def payload(detail: str | None, declared: tuple[str, ...], reveal: bool) -> None:
    """An event payload as JSON (masked unless revealed), or as capped text."""
    kind, value = views.shown_payload(detail, declared, reveal)
    if kind == "json":
        st.json(value, expanded=2)
    else:
        st.code(value, language=None, wrap_lines=True)


def query(name: str, default: str = "") -> str:
    """A deep-link query parameter's value."""
    return st.query_params.get(name, default)


def set_query(**values: str | None) -> None:
    """Keep page state in the URL: set the given parameters, drop the empty ones."""
    for name, value in values.items():
        if value:
            if st.query_params.get(name) != value:
                st.query_params[name] = value
        elif name in st.query_params:
            del st.query_params[name]


def _seed(key: str, param: str, parse: Callable[[str | None], Any], sticky: bool,
          aliases: Sequence[str] = ()) -> None:
    """Give widget `key` its value from the URL when the URL says something new.

    A keyed widget whose value is set only through st.session_state keeps what the user typed
    across reruns; passing it a `value=`/`index=` from the URL instead makes Streamlit treat a
    changed URL as a new widget and snap back (the "every second search is dropped" bug). The
    URL wins when the key is new or when the URL differs from what this session last wrote
    there (a link, back/forward). With `sticky`, a missing parameter keeps the session's
    value (a sidebar click drops every query parameter; the value is written back)."""
    shadow = f"{key}::url"
    in_url = next((st.query_params[name] for name in (param, *aliases)
                   if name in st.query_params), None)
    if key not in st.session_state:
        st.session_state[key] = parse(in_url if in_url is not None
                                      else st.session_state.get(shadow) if sticky else None)
    elif in_url is not None and in_url != st.session_state.get(shadow):
        st.session_state[key] = parse(in_url)
    elif in_url is None and not sticky and st.session_state.get(shadow):
        st.session_state[key] = parse(None)


def _write_back(key: str, param: str, shown: str | None) -> None:
    st.session_state[f"{key}::url"] = shown
    set_query(**{param: shown})


def url_text(label: str, param: str, *, key: str, aliases: Sequence[str] = (),
             sticky: bool = False, container: Any = None,
             to_url: Callable[[str], str] = str.strip,
             from_url: Callable[[str], str] = str, **options: Any) -> str:
    """A text input whose value is `?param=` in the URL: seeded from the URL (or the first of
    `aliases` present) as `from_url(value)`, kept while the user types, written back as
    `to_url(value)` (stripped by default; empty: removed). A `to_url` that tokenises keeps
    what was typed out of the URL (the order search puts the store's form of an e-mail there,
    never the e-mail); a `from_url` that tokenises keeps a raw value in a shared link out of
    the box."""
    _seed(key, param, lambda found: from_url(found or ""), sticky, aliases)
    value: str = (container or st).text_input(label, key=key, **options)
    _write_back(key, param, to_url(value) or None)
    for alias in aliases:
        set_query(**{alias: None})
    return value


def url_select(label: str, options: Sequence[T], param: str, *, key: str,
               default: T | None = None, sticky: bool = False, container: Any = None,
               to_url: Callable[[T], str] = str, **widget: Any) -> T:
    """A selectbox whose choice is `?param=` in the URL (`to_url` of the option; the default
    option is left out of the URL). A URL value that names no option selects the default.
    `options` must not be empty: a page says why there is nothing to choose instead."""
    choices = list(options)
    if not choices:
        raise ValueError(f"url_select {key!r}: no options")
    fallback = choices[0] if default is None else default
    by_url = {to_url(option): option for option in choices}
    _seed(key, param, lambda found: by_url.get(found or "", fallback), sticky)
    if st.session_state[key] not in choices:
        st.session_state[key] = fallback
    value: T = (container or st).selectbox(label, choices, key=key, **widget)
    _write_back(key, param, None if value == fallback else to_url(value))
    return value


def carried() -> dict[str, str]:
    """The state every link carries (environment, window), from this page's URL."""
    return views.carried_state({name: st.query_params.get(name, "") for name in views.CARRIED})


def link(page: str, **params: str | None) -> str:
    """A relative link to `page` in the same environment and window, with its own parameters."""
    return views.page_url(page, carried(), **params)
