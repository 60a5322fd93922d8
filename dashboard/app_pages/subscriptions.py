"""Subscriptions: lifecycle coverage per consumer and missing subscriptions with their orders."""

from __future__ import annotations

import streamlit as st

from eventscope.dashboard import data, figures, ui, views

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
        st.plotly_chart(figures.coverage_heatmap(matrix), width="stretch")
    st.subheader("Missing subscriptions")
    table = views.missing_table(missing)
    if table.empty:
        st.success("No consumer misses a cancellation it should handle.")
        st.stop()
    ui.table(table, "missing-subscriptions")
    choice = st.selectbox("Affected orders of", range(len(missing)),
                          format_func=lambda i: f"{missing[i]['consumer']} / "
                                                f"{missing[i]['detail_type']}")
    orders = (missing[choice]["observed"] or {}).get("examples", [])
    affected = views.with_lifecycle_links(views.listed([{"order": o} for o in orders], ["order"]),
                                          "order", ui.carried())
    ui.table(affected, "affected-orders", column_config={
        "lifecycle": st.column_config.LinkColumn("lifecycle", display_text="open")})
