"""Undocumented events and schema drift, each with a sample payload and the owner to notify."""

from __future__ import annotations

import streamlit as st

from eventscope.dashboard import data, ui, views
from eventscope.findings.undocumented import undocumented_events

ctx = data.context()
st.title("Undocumented events & schema drift")
if ui.require_data(ctx):
    catalog, problem = data.catalog(ctx.catalog_path)
    with st.spinner("Comparing traffic with the catalog…"):
        summary = data.event_totals(ctx.url, ctx.window)
    if catalog is None:
        ui.no_catalog(problem, "telling documented from undocumented events")
        st.subheader("Event kinds seen in this window")
        ui.table(views.times(views.kinds_table(summary), "first_ms", "last_ms"), "event-kinds")
        st.stop()
    samples = data.samples(ctx.url)
    found = undocumented_events(summary, catalog, data.handled(ctx.url, ctx.window,
                                                               ctx.catalog_path), samples)
    drift = data.schema_drift(ctx.url, ctx.catalog_path)
    st.subheader("Undocumented events")
    table = views.undocumented_table(found, catalog)
    if table.empty:
        st.success("Every event kind in this window is documented in the catalog.")
    else:
        ui.table(table, "undocumented")
    st.subheader("Schema drift (payloads failing their documented schema)")
    drift_table = views.mask_columns(views.listed(drift, ["source", "detail_type", "version",
                                                          "checked", "failed",
                                                          "example_event_id", "error"]),
                                     ("error",), ctx.reveal_pii)
    if drift_table.empty:
        st.success("The sampled payloads of every documented version match their schema.")
    else:
        ui.table(drift_table, "schema-drift")
    kinds = views.example_kinds(table, "sample_event_id") | views.example_kinds(
        drift_table, "example_event_id")
    if kinds:
        st.subheader("Sample payload")
        chosen = ui.url_select("Event", list(kinds), "sample", key="sample",
                               format_func=lambda i: f"{kinds[i]}  ({i})")
        details = data.event_details(ctx.url, (chosen,))
        ui.payload(details.get(chosen), views.declared_pii(catalog, kinds.get(chosen, "")),
                   ctx.reveal_pii)
