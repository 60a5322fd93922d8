"""Subscriptions: lifecycle coverage per consumer, missing subscriptions, and every order each
one affected (paged, with a CSV of all)."""

from __future__ import annotations

import streamlit as st

from eventscope.dashboard import data, figures, lifecycle_view, ui, views
from eventscope.findings.lifecycle import cancellation_types

ctx = data.context()
st.title("Subscriptions")
if ui.require_data(ctx):
    catalog, problem = data.catalog(ctx.catalog_path)
    with st.spinner("Checking subscriptions against lifecycles and traffic…"):
        data.prefetch_missing(ctx.url, ctx.window, ctx.catalog_path)
        handled = data.handled(ctx.url, ctx.window, ctx.catalog_path)
        missing = data.missing_subscriptions(ctx.url, ctx.window, ctx.catalog_path)
    st.subheader("Lifecycle coverage")
    matrix = views.coverage_matrix(catalog, handled, missing)
    if catalog is None:
        ui.no_catalog(problem, "the coverage matrix (lifecycles come from the catalog)")
    elif matrix.empty:
        ui.empty("The catalog declares no lifecycles.")
    else:
        st.plotly_chart(figures.coverage_heatmap(matrix), width="stretch", key="coverage")
        st.caption("✓ subscribed and handled · subscribed: declared, nothing handled yet · "
                   "handled: handled without a declared subscription · MISSING: a "
                   "cancellation of a lifecycle it acts on, which it never hears")
    st.subheader("Missing subscriptions")
    table = views.missing_table(missing, catalog)
    if table.empty:
        st.success("No consumer misses a cancellation it should handle.")
        st.stop()
    ui.table(table, "missing-subscriptions")
    st.subheader("Affected orders")
    if st.session_state.get("affected-of", -1) not in range(len(missing)):  # seeded from the
        st.session_state["affected-of"] = lifecycle_view.finding_index(  # URL once
            missing, ui.query("consumer"), ui.query("type"))
    choice = st.selectbox("Affected orders of", range(len(missing)), key="affected-of",
                          format_func=lambda i: lifecycle_view.finding_label(missing[i]))
    ui.set_query(consumer=missing[choice]["consumer"], type=missing[choice]["detail_type"])
    note = lifecycle_view.bound_note(data.event_totals(ctx.url, ctx.window),
                                     cancellation_types(catalog), data.LATEST_CANCELLATIONS)
    if note:
        st.warning(note)
    affected = lifecycle_view.affected_table(missing[choice], ui.carried())
    if affected.empty:
        ui.empty("No order shows it yet: this gap is in the declarations only (no cancelled "
                 "order in this window was handled earlier by this consumer).")
        st.stop()
    size_col, page_col = st.columns(2)
    size = size_col.selectbox("Orders per page", lifecycle_view.PAGE_SIZES, key="affected-size")
    pages = lifecycle_view.page_count(len(affected), size)
    if st.session_state.get("affected-page", 1) > pages:  # fewer pages since it was chosen
        st.session_state["affected-page"] = pages
    number = int(page_col.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages,
                                       step=1, key="affected-page"))
    shown, caption = lifecycle_view.page_of(affected, size, number)
    st.caption(f"Showing {caption}.")
    st.dataframe(shown, width="stretch", hide_index=True, key="affected-orders", column_config={
        "lifecycle": st.column_config.LinkColumn("lifecycle", display_text="open")})
    st.download_button(f"Download CSV (all {len(affected):,} orders)",
                       lambda: views.csv_bytes(affected.drop(columns=["lifecycle"])),
                       file_name="affected-orders.csv", mime="text/csv", key="csv-affected-orders",
                       on_click="ignore")  # made on click: it was a 4.8 MB media file per view
