"""Failures: consumer x type failure rates, their time series, latency event -> consumer,
top errors, final failures."""

from __future__ import annotations

import streamlit as st

from eventscope.dashboard import data, figures, ui, views

LINK = st.column_config.LinkColumn("lifecycle", display_text="open order")

ctx = data.context()
st.title("Failures")
if ui.require_data(ctx):
    with st.spinner("Computing failure rates…"):
        data.prefetch_failures(ctx.url, ctx.window)
        handled = data.handled(ctx.url, ctx.window, ctx.catalog_path)
        rates = data.rates(ctx.url, ctx.window, ctx.catalog_path)
    if handled.empty:
        ui.empty("No consumer invocations in this window: ingest the consumers' CloudWatch "
                 "Logs (or run the logs collector).",
                 "eventscope ingest consumer-logs.ndjson --db URL")
        st.stop()
    matrix = views.failure_matrix(rates)
    if not matrix.empty:
        st.subheader("Failure rate: consumer × event type")
        st.plotly_chart(figures.failure_heatmap(matrix), width="stretch")
    consumers = sorted(handled["consumer"].dropna().unique())
    types = sorted(handled["detail_type"].dropna().unique())
    left, right = st.columns(2)
    want_c, want_t = ui.query("consumer"), ui.query("type")
    consumer = left.selectbox("Consumer", [""] + consumers,
                              index=consumers.index(want_c) + 1 if want_c in consumers else 0,
                              format_func=lambda c: c or "(all consumers)", key="consumer")
    detail_type = right.selectbox("Event type", [""] + types,
                                  index=types.index(want_t) + 1 if want_t in types else 0,
                                  format_func=lambda t: t or "(all types)", key="type")
    ui.set_query(consumer=consumer or None, type=detail_type or None)
    st.subheader("Failures over time")
    bucketed = views.failure_counts(data.call_counts(ctx.url, ctx.window, ctx.catalog_path,
                                                     bucketed=True)[0])
    st.plotly_chart(figures.failure_timeseries(views.selection_rates(bucketed, consumer,
                                                                     detail_type)),
                    width="stretch")
    st.subheader("Rates per consumer, type and version")
    ui.table(views.only(rates, consumer, detail_type), "failure-rates")
    st.subheader("Latency: event → consumer")
    st.caption(f"Milliseconds from the event's time on the bus to the consumer's first "
               f"invocation and first success, per event type and consumer (p50 / p95), over "
               f"each function's latest {data.LATENCY_SAMPLE:,} invocations in this window "
               f"({data.LATENCY_TOTAL:,} in all at most, shared between the functions). "
               f"Skewed: invocations logged before their event (clock skew), counted as 0.")
    ui.table(views.latency_table(data.latency(ctx.url, ctx.window, ctx.catalog_path),
                                 consumer, detail_type), "latency")
    st.subheader("Top errors")
    errors = views.mask_columns(views.times(data.top_errors(
        ctx.url, ctx.window, ctx.catalog_path, consumer, detail_type), "first_ms", "last_ms"),
        ("first_message",), ctx.reveal_pii)
    ui.table(views.with_lifecycle_links(errors, "example_event_id", ui.carried()), "top-errors",
             column_config={"lifecycle": LINK})
    st.subheader("Final failures (every attempt failed)")
    finals = views.mask_columns(views.times(data.final_failures(
        ctx.url, ctx.window, ctx.catalog_path, consumer, detail_type), "last_ms"),
        ("last_error_message",), ctx.reveal_pii)
    ui.table(views.with_lifecycle_links(finals, "event_id", ui.carried()), "final-failures",
             column_config={"lifecycle": LINK})
