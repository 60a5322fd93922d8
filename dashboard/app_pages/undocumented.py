"""Undocumented events and schema drift, each with a sample payload and the owner to notify."""

from __future__ import annotations

import streamlit as st

from dashboard import data, ui, views
from eventscope.findings.undocumented import (schema_drift, summarise_types, undocumented_events,
                                              validate_samples)

ctx = data.context()
st.title("Undocumented events & schema drift")
if ui.require_data(ctx):
    catalog, problem = data.catalog(ctx.catalog_path)
    with st.spinner("Comparing traffic with the catalog…"):
        events = data.events(ctx.url, ctx.window)
        summary = summarise_types(events)
    if catalog is None:
        ui.no_catalog(problem, "telling documented from undocumented events")
        st.subheader("Event kinds seen in this window")
        ui.table(views.times(summary, "first_ms", "last_ms"), "event-kinds")
        st.stop()
    samples = data.samples(ctx.url)
    found = undocumented_events(summary, catalog, data.attempts(ctx.url, ctx.window,
                                                                ctx.catalog_path), samples)
    drift = schema_drift(validate_samples(samples, catalog))
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
    examples = [i for i in list(table["sample_event_id"]) + list(drift_table["example_event_id"])
                if isinstance(i, str)]
    if examples:
        st.subheader("Sample payload")
        chosen = st.selectbox("Event", examples)
        details = data.event_details(ctx.url, (chosen,))
        kinds = dict(zip(events["id"], events["detail_type"]))
        ui.payload(details.get(chosen), views.declared_pii(catalog, kinds.get(chosen, "")),
                   ctx.reveal_pii)
