"""Overview: the window's headline numbers, each linking to its page, the tap's dead-letter
queues (events that were never stored wait there), and events per minute."""

from __future__ import annotations

import streamlit as st

from eventscope.dashboard import data, figures, ui, views
from eventscope.findings.undocumented import undocumented_events

ctx = data.context()
st.title("Overview")
if ui.require_data(ctx):
    with st.spinner("Loading event and invocation totals…"):
        data.prefetch_missing(ctx.url, ctx.window, ctx.catalog_path)
        totals = data.event_totals(ctx.url, ctx.window)
        calls, handling = data.call_counts(ctx.url, ctx.window, ctx.catalog_path)
        catalog, _ = data.catalog(ctx.catalog_path)
        undocumented = (len(undocumented_events(
            totals, catalog, data.handled(ctx.url, ctx.window, ctx.catalog_path),
            data.samples(ctx.url))) if catalog is not None else None)
        missing = data.missing_subscriptions(ctx.url, ctx.window, ctx.catalog_path)
        numbers = views.headline(totals, calls, handling, ctx.window, undocumented, len(missing),
                                 views.contract_failures(data.contract_results(ctx.url)))
    st.caption(f"Window: {views.WINDOW_LABELS[ctx.window_name]}")
    cells = [
        ("Events / min", f"{numbers['events_per_min']:,}", "overview",
         f"{numbers['events']:,} events"),
        ("Consumers", f"{numbers['consumers']:,}", "graph", "see the event graph"),
        ("Failure rate", f"{numbers['failure_rate']:.2%}", "failures",
         f"of {numbers['invocations']:,} invocations"),
        ("Final failures", f"{numbers['final_failures']:,}", "failures", "events never processed"),
        ("Undocumented types", "—" if undocumented is None else f"{undocumented:,}",
         "undocumented", "needs a catalog" if undocumented is None else "kinds not in the catalog"),
        ("Missing subscriptions", f"{numbers['missing_subscriptions']:,}", "subscriptions",
         "declarations and data"),
        ("Contract failures", "—" if numbers["contract_failures"] is None
         else f"{numbers['contract_failures']:,}", "contracts", "from contract runs"),
    ]
    for column, (name, value, page, note) in zip(st.columns(len(cells)), cells):
        with column:
            st.metric(name, value)
            st.page_link(f"app_pages/{page}.py", label=note, query_params=ui.carried())
    st.subheader("Dead-letter queues")
    dead = data.dead_letters(ctx.url)
    kind, message = views.dead_letter_state(dead)
    if kind == "waiting":
        st.error(message)
    elif kind == "empty":
        st.success(message)
    else:
        st.caption(message)
    if dead:
        ui.table(views.dead_letter_table(dead), "dead-letter-queues")
    st.subheader("Events per minute by type")
    per_minute = views.events_per_minute(data.event_series(ctx.url, ctx.window))
    if per_minute.empty:
        ui.empty("No events in this window: choose a longer window in the sidebar.")
    else:
        st.plotly_chart(figures.events_timeseries(per_minute), width="stretch")
        ui.table(per_minute, "events-per-minute")
