"""Rendering helpers every page shares: empty states, tables with CSV download, payloads,
deep-link query parameters. Untrusted text only ever goes to st.json, st.code, st.text or
st.dataframe from here; markdown and captions carry our own words only.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from eventscope.dashboard import data, views

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


def table(df: pd.DataFrame, name: str, **options: Any) -> Any:
    """A dataframe plus a CSV download of exactly the rows shown (formula cells neutralised)."""
    shown = st.dataframe(df, width="stretch", hide_index=True, **options)
    st.download_button("Download CSV", views.csv_bytes(df), file_name=f"{name}.csv",
                       mime="text/csv", key=f"csv-{name}")
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


def carried() -> dict[str, str]:
    """The state every link carries (environment, window), from this page's URL."""
    return views.carried_state({name: st.query_params.get(name, "") for name in views.CARRIED})


def link(page: str, **params: str | None) -> str:
    """A relative link to `page` in the same environment and window, with its own parameters."""
    return views.page_url(page, carried(), **params)
