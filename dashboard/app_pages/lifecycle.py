"""Order lifecycle: one order (or event) id -> timeline, consumer outcomes, gaps, payloads."""

from __future__ import annotations

import streamlit as st

from eventscope.dashboard import data, figures, lifecycle_view, ui, views

ctx = data.context()
st.title("Order lifecycle")
if ui.require_data(ctx):
    query = ui.url_text("Order id or event id (a prefix finds matching orders)", "order",
                        key="order-search", aliases=("event",),
                        to_url=lambda typed: data.stored_form(ctx.url, typed.strip()),
                        from_url=lambda found: data.stored_form(ctx.url, found)).strip()
    query = data.stored_form(ctx.url, query)  # never shown or put in the URL as typed
    ui.set_query(order=query or None, event=None)
    if not query:
        st.caption("Recently active orders in this window:")
        recent = views.recent_keys(data.recent_events(ctx.url, ctx.window))
        recent = views.with_lifecycle_links(recent, "correlation_key", ui.carried())
        ui.table(recent, "recent-orders",
                 column_config={"lifecycle": st.column_config.LinkColumn(
                     "lifecycle", display_text="open")})
        st.stop()
    with st.spinner("Looking up the order…"):
        keys = data.correlation_keys(ctx.url, query)
    if not keys:
        ui.empty("No order or event matches that id in this store.")
        st.stop()
    key = keys[0] if len(keys) == 1 else st.selectbox("Matching orders", keys,
                                                      key=f"order-match-{query}")
    catalog, _ = data.catalog(ctx.catalog_path)
    with st.spinner("Loading the order's events…"):
        lifecycle = data.lifecycle(ctx.url, key, ctx.catalog_path)
    st.text(f"Order {key}: {len(lifecycle['events'])} events")
    st.plotly_chart(figures.swimlane(lifecycle), width="stretch", key="swimlane")
    st.subheader("Events and each consumer's outcome")
    ui.table(views.lifecycle_table(lifecycle), "order-events")
    st.subheader("Gaps")
    st.text(lifecycle_view.gaps_basis(lifecycle))  # names from the bus: plain text
    gaps = views.gaps_table(lifecycle)
    if gaps.empty:
        st.success("No gaps: every expected step and cancellation was handled.")
    else:
        ui.table(gaps, "order-gaps")
    missed = lifecycle_view.missed_table(lifecycle)
    if not missed.empty:
        st.caption("Missed handlings (empty red marks on the timeline):")
        ui.table(missed, "order-missed")
    st.subheader("Invocations")
    ui.table(views.mask_columns(views.lifecycle_attempts(lifecycle), ("error_message",),
                                ctx.reveal_pii), "order-invocations")
    st.subheader("Payloads")
    ids = [step["id"] for step in lifecycle["events"]]
    kinds = {step["id"]: step["detail_type"] for step in lifecycle["events"]}
    chosen = st.selectbox("Event", ids, format_func=lambda i: f"{kinds[i]}  ({i})",
                          key=f"payload-event-{key}")
    details = data.event_details(ctx.url, tuple(ids))
    ui.payload(details.get(chosen), views.declared_pii(catalog, kinds.get(chosen, "")),
               ctx.reveal_pii)
