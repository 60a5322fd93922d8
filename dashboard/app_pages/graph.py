"""Event graph: producers -> event types -> consumers, declared vs observed, with details."""

from __future__ import annotations

import streamlit as st

from eventscope.dashboard import data, figures, ui, views

ctx = data.context()
st.title("Event graph")
if ui.require_data(ctx):
    with st.spinner("Building the graph…"):
        catalog, problem = data.catalog(ctx.catalog_path)
        graph = data.graph(ctx.url, ctx.window, ctx.catalog_path)
    if catalog is None:
        st.caption("No catalog loaded: every edge is observed traffic; declared-vs-observed "
                   "status needs `--catalog PATH`.")
    left, middle, right = st.columns(3)
    teams = left.multiselect("Team", sorted({n["team"] for n in graph["nodes"] if n.get("team")}))
    types = middle.multiselect("Event type", sorted(n["name"] for n in graph["nodes"]
                                                    if n["kind"] == "type"),
                               default=[t for t in [ui.query("type")] if t])
    statuses = right.multiselect("Edge status", sorted({e["status"] for e in graph["edges"]}))
    shown = views.filter_graph(graph, teams, types, statuses)
    ids = [n["id"] for n in shown["nodes"]]
    wanted = ui.query("node")
    event = st.plotly_chart(figures.event_graph(shown, wanted), width="stretch",
                            on_select="rerun", selection_mode="points", key="graph-chart")
    picked = views.selected_point(event) or wanted
    names = {n["id"]: f"{n['kind']}: {n['name']}" for n in shown["nodes"]}
    node = st.selectbox("Details for (or click a node)", [""] + ids,
                        index=(ids.index(picked) + 1) if picked in ids else 0,
                        format_func=lambda n: names.get(n, "(choose a node)"), key="node")
    ui.set_query(node=node or None, type=types[0] if len(types) == 1 else None)
    if node:
        attributes, edges = views.node_details(graph, node)
        st.json(attributes)
        ui.table(edges, "node-edges")
        for version in views.type_versions(catalog, attributes.get("name", "")):
            st.text(f"schema version {version['version']}")
            st.json(version["schema"], expanded=False)
    else:
        ui.table(views.listed(shown["edges"], ["source", "target", "status", "count", "failed",
                                               "rules"]), "graph-edges")
