"""Overview: what is wrong now. A banner, then `eventscope check`'s findings over the window,
ranked by severity, each with its owner team and channel, a one-line reason, its trend
against the window just before and a link to the page that explains it; a tile per finding
kind coloured by state; the window's volume; the tap's dead-letter queues; events per
minute."""

from __future__ import annotations

import streamlit as st

from eventscope.dashboard import data, figures, triage, ui, views
from eventscope.findings.triage import kind_states, ranked

TILES_PER_ROW = 4
BANNERS = {"bad": st.error, "warn": st.warning, "ok": st.success}

ctx = data.context()
st.title("Overview")
if ui.require_data(ctx):
    with st.spinner("Running the checks over this window…"):
        data.prefetch_overview(ctx.url, ctx.window, ctx.catalog_path)
        totals = data.event_totals(ctx.url, ctx.window)
        calls, handling = data.call_counts(ctx.url, ctx.window, ctx.catalog_path)
        catalog, problem = data.catalog(ctx.catalog_path)
        found, skipped = data.check_findings(ctx.url, ctx.window, ctx.catalog_path)
        trend_calls, trend_events = data.trend_counts(ctx.url, ctx.window, ctx.catalog_path)
        numbers = views.headline(totals, calls, handling, ctx.window, None, 0, None)
    window_words = views.WINDOW_LABELS[ctx.window_name]
    st.caption(f"Window: {window_words}. Graded with `eventscope check`'s default thresholds; "
               + ("trends compare it with the window of the same length just before."
                  if ctx.window.since_ms is not None else
                  "choose a shorter window in the sidebar to compare with the one before."))
    if not numbers["events"] and not numbers["invocations"]:
        ui.empty("Nothing happened in this window: no event and no consumer invocation. "
                 "Choose a longer window in the sidebar.")
    elif not numbers["invocations"]:
        st.info("No consumer invocations in this window: failures, final failures, duplicates "
                "and latency have nothing to grade. Ingest the consumers' CloudWatch Logs.")
        st.code("eventscope ingest consumer-logs.ndjson --db URL", language="bash")
    if catalog is None:
        if problem:
            ui.no_catalog(problem, "undocumented events, schema drift and deprecations")
        else:
            st.info("No catalog configured: undocumented events, schema drift and deprecations "
                    "are not checked, and findings have no owner team. Start the dashboard "
                    "with `--catalog path/to/catalog`.")
    dead = data.dead_letters(ctx.url)
    shown_skipped = triage.with_missing_data(skipped, numbers["invocations"],
                                             numbers["events"], catalog is not None, len(dead))
    verdict, words = triage.banner(found, shown_skipped)
    BANNERS[verdict](words)

    st.subheader("What is wrong, most severe first")
    rows = ranked(found, catalog, trend_calls, trend_events, ctx.window.since_ms,
                  ctx.window.until_ms, data.earliest_event_ms(ctx.url))
    if rows:
        ui.table(triage.findings_table(rows, ui.carried()), "findings", column_config={
            "trend": st.column_config.LineChartColumn(
                "trend", help="this window and the one before it", y_min=0),
            "explain": st.column_config.LinkColumn("explain", display_text="open"),
            "reason": st.column_config.TextColumn("reason", width="large")})
    else:
        st.caption("No finding in this window.")

    st.subheader("Every check")
    states = kind_states(found, shown_skipped)
    for start in range(0, len(states), TILES_PER_ROW):
        row = states[start:start + TILES_PER_ROW]
        for column, state in zip(st.columns(TILES_PER_ROW), row):
            tile = triage.tile(state)
            with column.container(border=True):
                st.badge(tile["badge"], color=tile["colour"])  # type: ignore[arg-type]
                st.metric(tile["label"], tile["value"])
                st.caption(tile["caption"])

    st.subheader("Volume")
    cells = [
        ("Events / min", f"{numbers['events_per_min']:,}", "overview",
         f"{numbers['events']:,} events"),
        ("Consumers", triage.count(numbers["consumers"]), "graph", "see the event graph"),
        ("Failure rate", triage.percent(numbers["failure_rate"]), "failures",
         f"of {numbers['invocations']:,} invocations"),
    ]
    for column, (name, value, page, note) in zip(st.columns(len(cells)), cells):
        with column:
            st.metric(name, value)
            st.page_link(f"app_pages/{page}.py", label=note, query_params=ui.carried())

    st.subheader("Dead-letter queues")
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
