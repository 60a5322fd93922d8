"""Contracts & catalog: contract results (pass / fail / not-checked totals, filter by
status), the catalog browser, duplicates, payload sizes and PII, deprecations. `?view=`
opens one section (results, catalog, duplicates, pii, deprecations), as the overview's links
do; `?status=`, `?consumer=` and `?type=` filter it."""

from __future__ import annotations

import time
from datetime import date

import streamlit as st

from eventscope.dashboard import data, figures, triage, ui, views
from eventscope.findings.deprecated import deprecated_from_summary
from eventscope.findings.payloads import payload_sizes_from_totals

VIEWS = {"results": "Contract results", "catalog": "Catalog", "duplicates": "Duplicates",
         "pii": "Payloads & PII", "deprecations": "Deprecations"}
STATUS_WORDS = {"fail": "failed", "not checked": "not checked", "pass": "passed"}


def seeded(key: str, param: str, allowed: list[str], default: object) -> None:
    """Seed a keyed widget from `?param=` when the key is new or the URL changed since this
    session wrote it (dstate's `ui.url_*` pattern, to be replaced by it once on main)."""
    shadow, in_url = f"{key}::url", st.query_params.get(param)
    if key not in st.session_state or (in_url is not None
                                       and in_url != st.session_state.get(shadow)):
        st.session_state[key] = (
            [v for v in in_url.split(",") if v in allowed] if isinstance(default, list)
            else in_url if in_url in allowed else default) if in_url is not None else default
        st.session_state[shadow] = in_url


def written(key: str, param: str, value: str | None) -> None:
    st.session_state[f"{key}::url"] = value
    ui.set_query(**{param: value})


ctx = data.context()
st.title("Contracts & catalog")
if ui.require_data(ctx):
    catalog, problem = data.catalog(ctx.catalog_path)
    seeded("contracts-view", "view", list(VIEWS), "results")
    view = st.segmented_control("Show", list(VIEWS), format_func=VIEWS.__getitem__,
                                key="contracts-view") or "results"
    written("contracts-view", "view", None if view == "results" else view)
    wanted_consumer, wanted_type = ui.query("consumer"), ui.query("type")
    if view == "results":
        contract = data.contract_results(ctx.url)
        if contract is None or contract.empty:
            ui.empty("No contract results in this store yet. Run the consumer contract tests:",
                     "eventscope contracts verify --db URL --catalog path/to/catalog")
        else:
            counts = triage.contract_counts(contract)
            for column, status in zip(st.columns(3), triage.CONTRACT_STATUSES):
                column.metric(STATUS_WORDS[status].capitalize(), triage.count(counts[status]))
            st.text(views.contract_totals(contract))
            statuses = list(triage.CONTRACT_STATUSES)
            seeded("contract-status", "status", statuses, [])
            chosen = st.multiselect("Status", statuses, key="contract-status",
                                    format_func=STATUS_WORDS.__getitem__,
                                    placeholder="all statuses")
            written("contract-status", "status", ",".join(chosen) or None)
            shown = views.only(contract, wanted_consumer, wanted_type)
            if wanted_consumer or wanted_type:
                st.caption("Filtered by the link that opened this page: "
                           + ", ".join(f"{k} {v}" for k, v in (("consumer", wanted_consumer),
                                                              ("type", wanted_type)) if v))
            table = triage.contract_table(shown, chosen, int(time.time() * 1000))
            if table.empty:
                st.caption("No contract check with this status.")
            ui.table(views.mask_columns(table, ("reason",), ctx.reveal_pii),
                     "contract-results")
    elif view == "catalog":
        if catalog is None:
            ui.no_catalog(problem, "the catalog browser")
        else:
            ui.table(views.catalog_table(catalog, date.today()), "catalog")
            names = [t.detail_type for t in catalog.event_types]
            chosen_type = st.selectbox("Event type", names, key="catalog-type")
            for version in views.type_versions(catalog, chosen_type):
                st.text(f"version {version['version']}")
                st.json(version["schema"], expanded=False)
                for example in version["examples"]:
                    st.json(example, expanded=False)
    else:
        with st.spinner("Loading event and invocation totals…"):
            totals = data.event_totals(ctx.url, ctx.window)
            handled = data.handled(ctx.url, ctx.window, ctx.catalog_path)
        if view == "duplicates":
            st.subheader("Events delivered or processed more than once (all data)")
            dupes = data.duplicates(ctx.url, ctx.catalog_path)
            if wanted_consumer:
                dupes = [d for d in dupes if d["consumer"] == wanted_consumer]
            ui.table(views.listed(dupes, ["consumer", "events", "delivered_more_than_once",
                                          "processed_twice", "examples"]), "duplicates")
            st.subheader(f"Producer re-sends (latest {data.RESEND_SAMPLE} events of each type)")
            ui.table(views.listed(data.producer_resends(ctx.url),
                                  ["source", "detail_type", "correlation_key", "event_ids"]),
                     "producer-resends")
        elif view == "pii":
            sizes = payload_sizes_from_totals(totals)
            if not sizes.empty:
                st.plotly_chart(figures.payload_sizes(sizes), width="stretch")
            ui.table(sizes, "payload-sizes", column_config={
                "max_share_of_limit": st.column_config.NumberColumn(
                    "max share of the 256 KB limit", format="percent")})
            st.subheader("PII fields and who receives them")
            pii = views.pii_table(data.pii_fields(ctx.url, ctx.window, ctx.catalog_path))
            ui.table(views.only(pii, None, wanted_type), "pii-fields")
        elif catalog is None:
            ui.no_catalog(problem, "deprecation countdowns")
        else:
            ui.table(views.listed(deprecated_from_summary(catalog, totals, handled, date.today()),
                                  ["source", "detail_type", "owner", "emitted", "consumers",
                                   "last_seen", "sunset", "days_to_sunset", "replacement"]),
                     "deprecated-in-use")
