"""Failures: consumer x type failure rates (click a cell to filter), their time series,
latency event -> consumer, error groups with first/last seen and trend, one group's messages
by fingerprint and latest invocations with where their log lines are, final failures by
error type."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from eventscope.dashboard import data, figures, triage, ui, views
from eventscope.findings.triage import message_groups

LINK = st.column_config.LinkColumn("lifecycle", display_text="open order")
SHOWN_INVOCATIONS = 20
SPARK = st.column_config.LineChartColumn("trend", help="this window and the one before it",
                                         y_min=0)


ctx = data.context()
st.title("Failures")
if ui.require_data(ctx):
    with st.spinner("Computing failure rates…"):
        data.prefetch_failures(ctx.url, ctx.window)
        handled = data.handled(ctx.url, ctx.window, ctx.catalog_path)
        rates = data.rates(ctx.url, ctx.window, ctx.catalog_path)
    if handled.empty:
        ui.empty("No consumer invocations in this window: ingest the consumers' CloudWatch "
                 "Logs (or run the logs collector), or choose a longer window.",
                 "eventscope ingest consumer-logs.ndjson --db URL")
        st.stop()
    consumers = sorted(handled["consumer"].dropna().unique())
    types = sorted(handled["detail_type"].dropna().unique())
    matrix = views.failure_matrix(rates)
    if not matrix.empty:
        st.subheader("Failure rate: consumer × event type")
        st.caption("Click a cell to filter this page by its consumer and event type.")
        clicked = triage.clicked_cell(st.plotly_chart(
            figures.failure_heatmap(matrix), width="stretch", key="failure-matrix",
            on_select="rerun", selection_mode="points"))
        if clicked and clicked != st.session_state.get("failure-matrix::applied"):
            st.session_state["failure-matrix::applied"] = clicked
            st.session_state["consumer"] = clicked[0] if clicked[0] in consumers else ""
            st.session_state["type"] = clicked[1] if clicked[1] in types else ""
    left, right = st.columns(2)
    consumer = ui.url_select("Consumer", [""] + consumers, "consumer", key="consumer",
                             container=left, format_func=lambda c: c or "(all consumers)")
    detail_type = ui.url_select("Event type", [""] + types, "type", key="type",
                                container=right, format_func=lambda t: t or "(all types)")
    st.subheader("Failures over time")
    bucketed = views.failure_counts(data.call_counts(ctx.url, ctx.window, ctx.catalog_path,
                                                     bucketed=True)[0])
    st.plotly_chart(figures.failure_timeseries(views.selection_rates(bucketed, consumer,
                                                                     detail_type)),
                    width="stretch")
    st.subheader("Rates per consumer, type and version")
    catalog, _ = data.catalog(ctx.catalog_path)
    ui.table(triage.rates_table(views.only(rates, consumer, detail_type), catalog),
             "failure-rates")

    st.subheader("Error groups")
    now_ms = int(time.time() * 1000)
    trend_calls = data.call_counts(ctx.url, data.before_and_now(ctx.window), ctx.catalog_path,
                                   bucketed=True)[0]
    groups = data.top_errors(ctx.url, ctx.window, ctx.catalog_path, consumer, detail_type)
    errors = views.mask_columns(triage.error_groups(
        groups, trend_calls, ctx.window.since_ms, ctx.window.until_ms, now_ms,
        data.earliest_event_ms(ctx.url)), ("message",), ctx.reveal_pii)
    if errors.empty:
        st.caption("No failed invocation in this selection and window.")
    else:
        st.caption("Each group is one consumer × event type × error type: how many failures, "
                   "first and last seen, and its trend over this window and the one before.")
        ui.table(views.with_lifecycle_links(errors, "example_event_id", ui.carried()),
                 "error-groups", column_config={"lifecycle": LINK, "trend": SPARK})
        names = [f"{g['consumer']} · {g['detail_type'] or 'no event type'} · {g['error_type']}"
                 for g in errors.to_dict("records")]
        chosen = st.selectbox("Invocations of error group", range(len(names)),
                              format_func=lambda i: names[i], key="error-group")
        group = errors.iloc[int(chosen or 0)]
        detail = group["detail_type"] if isinstance(group["detail_type"], str) else None
        found = data.error_invocations(ctx.url, ctx.window, ctx.catalog_path,
                                       group["consumer"], detail, group["error_type"])
        variants = message_groups(found)
        st.caption(f"Messages of this group's latest {len(found):,} failures in the window, "
                   "grouped by fingerprint (ids and numbers replaced):")
        ui.table(views.mask_columns(variants.assign(
            first_ms=triage.whens(variants["first_ms"]),
            last_ms=triage.whens(variants["last_ms"])).rename(
                columns={"first_ms": "first_seen", "last_ms": "last_seen"}),
            ("fingerprint", "example"), ctx.reveal_pii), "error-messages")
        latest = found.head(SHOWN_INVOCATIONS)
        shown = views.mask_columns(latest.assign(start_ms=triage.whens(latest["start_ms"])),
                                   ("error_message",), ctx.reveal_pii)
        st.caption(f"The latest {SHOWN_INVOCATIONS} of them; their log lines are in the log "
                   "group and stream shown (CloudWatch Logs Insights query below).")
        ui.table(views.with_lifecycle_links(
            shown[["start_ms", "request_id", "outcome", "error_message", "event_id",
                   "duration_ms", "log_group", "log_stream"]].rename(
                columns={"start_ms": "start"}), "event_id", ui.carried()),
            "error-invocations", column_config={"lifecycle": LINK})
        if not found.empty:
            st.code(triage.insights_query(latest["request_id"].tolist()), language="sql")

    st.subheader("Final failures (every attempt failed)")
    kinds = triage.failed_error_types(data.call_counts(ctx.url, ctx.window,
                                                       ctx.catalog_path)[0],
                                      consumer, detail_type)
    error_type = ui.url_select("Last error type", [""] + kinds, "error", key="final-error",
                               format_func=lambda e: e or "(all error types)",
                               help="The error types of this selection's failed invocations.")

    carried = ui.carried()  # read here: the CSV's rows are made outside the script's run

    def final_failures_shown(latest: int | None) -> pd.DataFrame:
        """The final failures' table: the `latest` ones, or every one (of the error type)."""
        finals = data.final_failures(ctx.url, ctx.window, ctx.catalog_path, consumer,
                                     detail_type, latest)
        return views.with_lifecycle_links(views.mask_columns(
            triage.final_failures_table(finals, error_type), ("last_error_message",),
            ctx.reveal_pii), "event_id", carried)

    shown_finals = final_failures_shown(  # a type chosen: read them all
        None if error_type else data.LATEST_FINAL_FAILURES)
    if shown_finals.empty:
        st.caption("No event failed every attempt in this selection and window.")
    elif not error_type and len(shown_finals) >= data.LATEST_FINAL_FAILURES:
        st.caption(f"The {data.LATEST_FINAL_FAILURES} whose last attempt is the latest; the "
                   "CSV below has every one (choose an error type to see all of its).")
    ui.table(shown_finals, "final-failures", every_row=lambda: final_failures_shown(None),
             column_config={"lifecycle": LINK})

    st.subheader("Latency: event → consumer")
    st.caption(f"Milliseconds from the event's time on the bus to the consumer's first "
               f"invocation and first success, per event type and consumer (p50 / p95), over "
               f"each function's latest {data.LATENCY_SAMPLE:,} invocations in this window "
               f"({data.LATENCY_TOTAL:,} in all at most, shared between the functions). "
               f"Skewed: invocations logged before their event (clock skew), counted as 0.")
    ui.table(views.latency_table(data.latency(ctx.url, ctx.window, ctx.catalog_path),
                                 consumer, detail_type), "latency")
