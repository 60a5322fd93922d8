"""Event graph: one team, event type or consumer and its neighbours (the whole graph only when
small), edges declared / subscribed by a bus rule / observed, a click opens the details."""

from __future__ import annotations

import time

import streamlit as st

from eventscope.dashboard import data, figures, graph_view, ui, views

PANEL_NAMES = 12  # names listed per heading in the details panel (the count says how many)


def _initial(key: str, value: object) -> None:
    """A keyed widget's first value (from the URL): set only while the key is absent, so a
    later run never resets what the user chose."""
    if key not in st.session_state:
        st.session_state[key] = value


def _panel(panel: dict[str, object]) -> None:
    """The details of a node or an edge: names go through st.text / dataframes only."""
    st.subheader("Details")
    st.text(str(panel["title"]))
    facts = panel["facts"]
    assert isinstance(facts, dict)
    st.text("\n".join(f"{name}: {value}" for name, value in facts.items()))
    for heading in ("producers", "types", "consumers", "rules"):
        names = panel[heading]
        assert isinstance(names, list)
        if names:
            st.caption(f"{heading.capitalize()} ({len(names):,})")
            more = len(names) - PANEL_NAMES
            st.text("\n".join(names[:PANEL_NAMES]) + (f"\n… and {more:,} more" if more > 0
                                                       else ""))
    links = panel["links"]
    assert isinstance(links, list)
    for text, page, params in links:
        st.page_link(f"app_pages/{page}.py", label=text,
                     query_params=ui.carried() | params)


ctx = data.context()
st.title("Event graph")
if ui.require_data(ctx):
    with st.spinner("Building the graph…"):
        catalog, problem = data.catalog(ctx.catalog_path)
        graph = data.graph(ctx.url, ctx.window, ctx.catalog_path)
    if problem:
        st.warning("The catalog could not be loaded: every edge is observed traffic.")
        st.code(problem, language=None)
    elif catalog is None:
        st.caption("No catalog loaded: every edge is observed traffic or a bus rule; "
                   "declared-vs-observed needs `--catalog PATH`.")
    for note in (graph_view.rules_state(graph), graph_view.traffic_note(graph)):
        if note:
            st.caption(note)
    reason = graph_view.empty_reason(graph)
    if reason:
        st.info(reason)
        st.stop()

    options = graph_view.focus_options(graph)
    older = ui.query("type")  # the links of earlier versions: ?type=OrderPaid
    asked = ui.query("focus") or ui.query("node") or (f"type:{older}" if older else "")
    if asked.startswith("edge:"):  # an edge: focus on where it starts
        asked = asked[len("edge:"):].partition(">")[0]
    _initial("graph-focus", asked or graph_view.default_focus(graph) or "")
    _initial("graph-hops", 2 if ui.query("hops") == "2" else 1)
    fits = len(graph["nodes"]) <= graph_view.WHOLE_GRAPH_MAX
    _initial("graph-whole", fits and ui.query("whole") == "1")
    chosen = st.session_state["graph-focus"]
    known = chosen in options
    left, middle, right = st.columns([3, 1, 1])
    focus = left.selectbox(
        "Focus on (type to search teams, event types, consumers, producers)",
        options if known else [chosen, *options], key="graph-focus",
        format_func=graph_view.focus_label)
    hops = middle.radio("Neighbours", [1, 2], key="graph-hops", horizontal=True,
                        format_func=lambda n: f"{n} hop{'s' if n > 1 else ''}")
    whole = right.toggle("Whole graph", key="graph-whole", disabled=not fits,
                         help=None if fits else
                         f"{len(graph['nodes']):,} nodes: too many to read at once; "
                         "pick a focus instead.")
    ui.set_query(focus=focus or None, hops="2" if hops == 2 else None,
                 whole="1" if whole else None)
    view = graph_view.whole(graph) if whole else graph_view.focused(graph, focus, hops)
    if not view["nodes"]:
        st.warning("Nothing in this window's graph matches this focus:")
        st.code(focus or "(none)", language=None)
        st.stop()
    if view["hidden"]:
        st.caption(f"{len(view['hidden']):,} more neighbours are not drawn (at most "
                   f"{graph_view.MAX_PER_COLUMN} per column): focus on one of them to see it.")

    details = graph_view.details_options(view)
    wanted = ui.query("node")
    _initial("node", wanted if wanted in details else "")
    drawing, side = st.columns([3, 1])
    selected = st.session_state.get("node") or None
    event = drawing.plotly_chart(figures.event_graph(view, selected), width="stretch",
                                 on_select="rerun", selection_mode="points", key="graph-chart",
                                 config={"displayModeBar": False})
    clicked = views.selected_point(event)
    if clicked and clicked != st.session_state.get("graph-clicked"):
        st.session_state["graph-clicked"] = clicked  # a new click, not the last run's
        if clicked in details:
            st.session_state["node"] = clicked
    if st.session_state.get("node") not in details:
        st.session_state["node"] = ""
    with side:
        picked = st.selectbox("Details for", [""] + details, key="node",
                              format_func=graph_view.details_label)
        now_ms = int(time.time() * 1000)
        panel = (graph_view.edge_panel(graph, picked, now_ms) if picked.startswith("edge:")
                 else graph_view.node_panel(graph, picked, now_ms) if picked else None)
        if panel:
            kind = graph_view.panel_type(graph, picked)
            _panel(graph_view.with_order_link(
                panel, kind, data.latest_order_of_type(ctx.url, ctx.window, kind)
                if kind else None))
        else:
            st.caption("Click a node or the mark in the middle of an edge for its producers, "
                       "consumers, rates, rules, owner and last activity.")
    ui.set_query(node=picked or None)
    if picked and not picked.startswith("edge:"):
        attributes, edges = views.node_details(graph, picked)
        ui.table(edges, "node-edges")
        for version in views.type_versions(catalog, attributes.get("name", "")):
            st.text(f"schema version {version['version']}")
            st.json(version["schema"], expanded=False)
    else:
        ui.table(views.listed(view["edges"], ["source", "target", "status", "known_from",
                                              "count", "failed", "rules"]), "graph-edges")
    problems = graph_view.rule_problems(graph)
    if problems:
        with st.expander(f"{len(problems):,} bus rules could not be read"):
            ui.table(views.listed(problems, ["bus", "rule", "problem"]), "graph-rule-problems")
