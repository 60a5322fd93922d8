"""Contracts & catalog: contract results, the catalog browser, duplicates, payload sizes, PII."""

from __future__ import annotations

from datetime import date

import streamlit as st

from eventscope.dashboard import data, figures, ui, views
from eventscope.findings.deprecated import deprecated_from_summary
from eventscope.findings.payloads import payload_sizes_from_totals

ctx = data.context()
st.title("Contracts & catalog")
if ui.require_data(ctx):
    catalog, problem = data.catalog(ctx.catalog_path)
    results, browser, dupes, payloads, sunsets = st.tabs(
        ["Contract results", "Catalog", "Duplicates", "Payloads & PII", "Deprecations"])
    with results:
        contract = data.contract_results(ctx.url)
        if contract is None or contract.empty:
            ui.empty("No contract results in this store yet. Run the consumer contract tests:",
                     "eventscope contracts verify --db URL --catalog path/to/catalog")
        else:
            st.text(views.contract_totals(contract))
            ui.table(views.mask_columns(contract, tuple(contract.columns), ctx.reveal_pii),
                     "contract-results")
    with browser:
        if catalog is None:
            ui.no_catalog(problem, "the catalog browser")
        else:
            ui.table(views.catalog_table(catalog, date.today()), "catalog")
            names = [t.detail_type for t in catalog.event_types]
            chosen = st.selectbox("Event type", names)
            for version in views.type_versions(catalog, chosen):
                st.text(f"version {version['version']}")
                st.json(version["schema"], expanded=False)
                for example in version["examples"]:
                    st.json(example, expanded=False)
    with st.spinner("Loading event and invocation totals…"):
        totals = data.event_totals(ctx.url, ctx.window)
        handled = data.handled(ctx.url, ctx.window, ctx.catalog_path)
    with dupes:
        st.subheader("Events delivered or processed more than once (all data)")
        ui.table(views.listed(data.duplicates(ctx.url, ctx.catalog_path),
                              ["consumer", "events", "delivered_more_than_once",
                               "processed_twice", "examples"]), "duplicates")
        st.subheader(f"Producer re-sends (latest {data.RESEND_SAMPLE} events of each type)")
        ui.table(views.listed(data.producer_resends(ctx.url),
                              ["source", "detail_type", "correlation_key", "event_ids"]),
                 "producer-resends")
    with payloads:
        sizes = payload_sizes_from_totals(totals)
        if not sizes.empty:
            st.plotly_chart(figures.payload_sizes(sizes), width="stretch")
        ui.table(sizes, "payload-sizes")
        st.subheader("PII fields and who receives them")
        ui.table(views.pii_table(data.pii_fields(ctx.url, ctx.window, ctx.catalog_path)),
                 "pii-fields")
    with sunsets:
        if catalog is None:
            ui.no_catalog(problem, "deprecation countdowns")
        else:
            ui.table(views.listed(deprecated_from_summary(catalog, totals, handled, date.today()),
                                  ["source", "detail_type", "owner", "emitted", "consumers",
                                   "last_seen", "sunset", "days_to_sunset", "replacement"]),
                     "deprecated-in-use")
