"""Plotly figure builders for the dashboard: pure functions from findings results to figures.

No Streamlit here. Every string that may come from the bus (types, sources, consumers, error
messages) passes through `label` before it reaches a figure, because Plotly renders a subset
of HTML (<a href>, <b>, <br>) in labels and hover text; escaped, it shows as inert text.
"""

from __future__ import annotations

import html
import math
from typing import Any

import networkx as nx
import pandas as pd
import plotly.graph_objects as go

from eventscope.dashboard import graph_view
from eventscope.findings.lifecycle import missed_handling

OUTCOME_COLOURS = {"ok": "#2e7d32", "retried_then_ok": "#f9a825", "error": "#d32f2f",
                   "timeout": "#8e24aa", "failed": "#d32f2f", "never_handled": "#9e9e9e",
                   "event": "#1565c0"}
MISSED = "missed handling"
MARK_SYMBOLS = {"event": "square", MISSED: "circle-open"}
OUTCOME_COLOURS[MISSED] = "#d32f2f"
COVERAGE_CODES = {"": 0, "handled": 1, "subscribed": 2, "subscribed+handled": 3, "missing": 4}
COVERAGE_SHORT = {"": "", "handled": "handled", "subscribed": "subscribed",
                  "subscribed+handled": "✓", "missing": "MISSING"}
MAX_LABEL = 60


def label(text: Any) -> str:
    """Untrusted text made inert for Plotly (HTML-escaped) and cut to a readable length."""
    value = "" if text is None else str(text)
    if len(value) > MAX_LABEL:
        value = value[:MAX_LABEL - 1] + "…"
    return html.escape(value, quote=True)


def _layout(fig: go.Figure, height: int, **extra: Any) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), **extra)
    return fig


def events_timeseries(per_minute: pd.DataFrame) -> go.Figure:
    """Stacked bars of events per minute, one colour per detail-type."""
    fig = go.Figure()
    for detail_type, rows in per_minute.groupby("detail_type"):
        fig.add_bar(x=rows["minute"], y=rows["events"], name=label(detail_type),
                    hovertext=[label(detail_type)] * len(rows), hoverinfo="x+y+text")
    return _layout(fig, 320, barmode="stack", yaxis_title="events / minute",
                   legend_title_text="detail-type")


def graph_positions(graph: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Producers, types and consumers in three columns (`graph_view.layout`'s positions)."""
    return graph_view.layout(graph)[0]


def node_failure_rates(graph: dict[str, Any]) -> dict[str, float]:
    """Failed share of invocations per consumer node (and per type node, over its consumers)."""
    totals: dict[str, list[int]] = {}
    for edge in graph["edges"]:
        if edge["target"].startswith("consumer:"):
            for node in (edge["source"], edge["target"]):
                seen = totals.setdefault(node, [0, 0])
                seen[0] += edge.get("failed") or 0
                seen[1] += edge.get("count") or 0
    return {node: failed / count for node, (failed, count) in totals.items() if count}


# A click selects a point; Plotly would fade every other one: keep the graph readable.
_READABLE = dict(marker=dict(opacity=0.85), textfont=dict(color="#444"))
GRAPH_MARGIN = dict(l=10, r=10, t=70, b=50)  # t + b == graph_view.MARGIN_PX


def event_graph(graph: dict[str, Any], selected: str | None = None) -> go.Figure:
    """The producer -> type -> consumer graph in three layered columns, one row per
    `graph_view.ROW_PX` pixels: edges styled by where they are known from (declared,
    subscribed by a rule, observed; one legend entry per combination), width by volume, a
    clickable mark in each edge's middle; nodes coloured by failure rate, labels cut to
    `graph_view.LABEL_CHARS` (full names in the hover); ids ride along as customdata."""
    positions, rows = graph_view.layout(graph)
    with_catalog = bool(graph.get("catalog"))
    fig = go.Figure()
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for edge in graph["edges"]:
        groups.setdefault(graph_view.edge_style(edge, with_catalog), []).append(edge)
    for (colour, dash, name), edges in groups.items():
        _add_edges(fig, edges, positions, colour, dash, name, selected)
    rates = node_failure_rates(graph)
    nodes = graph["nodes"]
    focus = set(graph.get("focus") or [])
    fig.add_scatter(
        x=[positions[n["id"]][0] for n in nodes], y=[positions[n["id"]][1] for n in nodes],
        mode="markers+text", name="nodes", showlegend=False,
        text=["" if n["kind"] == "type" else label(graph_view.short(n["name"])) for n in nodes],
        textfont=dict(size=graph_view.FONT_PX),
        textposition=["middle left" if n["kind"] == "producer" else "middle right"
                      for n in nodes],
        customdata=[n["id"] for n in nodes],
        hovertext=[_node_hover(n, rates.get(n["id"])) for n in nodes], hoverinfo="text",
        selected=dict(marker=dict(opacity=1)), unselected=_READABLE,
        marker=dict(size=[18 if n["id"] == selected else 12 for n in nodes],
                    symbol=["square" if n["kind"] == "producer" else "circle"
                            if n["kind"] == "type" else "diamond" for n in nodes],
                    color=[rates.get(n["id"], 0.0) for n in nodes], colorscale="RdYlGn_r",
                    cmin=0, cmax=1,
                    line=dict(width=[3 if n["id"] in focus else 1 for n in nodes],
                              color="#333"),
                    colorbar=dict(title=dict(text="failure rate", side="right"),
                                  orientation="h", thickness=8, len=0.3, x=1.0,
                                  xanchor="right", y=0, yanchor="top")))
    for node in (n for n in nodes if n["kind"] == "type"):  # above the marker, on a white
        x, y = positions[node["id"]]  # ground: the edges crossing the middle column pass under
        fig.add_annotation(x=x, y=y, yshift=graph_view.FONT_PX + 2, showarrow=False,
                           text=label(graph_view.short(node["name"])),
                           font=dict(size=graph_view.FONT_PX, color="#333"),
                           bgcolor="rgba(255,255,255,0.9)", borderpad=1)
    fig.update_xaxes(visible=False, range=[-0.9, 2.9], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-rows, graph_view.TOP_ROWS], fixedrange=True)
    fig.update_layout(height=graph_view.height_px(rows), margin=GRAPH_MARGIN,
                      legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0),
                      clickmode="event+select", dragmode=False, hovermode="closest")
    return fig


def _add_edges(fig: go.Figure, edges: list[dict[str, Any]],
               positions: dict[str, tuple[float, float]], colour: str, dash: str, name: str,
               selected: str | None) -> None:
    """One legend entry for an edge kind: its lines (one trace per width) and a clickable
    mark in the middle of each edge (customdata: the edge's id)."""
    by_width: dict[float, tuple[list[float | None], list[float | None]]] = {}
    middles: dict[str, list[Any]] = {"x": [], "y": [], "id": [], "hover": [], "size": []}
    for edge in edges:
        (x0, y0), (x1, y1) = positions[edge["source"]], positions[edge["target"]]
        width = round(1 + math.log10(1 + (edge.get("count") or 0)), 1)
        xs, ys = by_width.setdefault(width, ([], []))
        xs += [x0, x1, None]
        ys += [y0, y1, None]
        edge_id = graph_view.edge_id(edge)
        middles["x"].append((x0 + x1) / 2)
        middles["y"].append((y0 + y1) / 2)
        middles["id"].append(edge_id)
        middles["hover"].append(_edge_hover(edge, name))
        middles["size"].append(12 if edge_id == selected else 7)
    for index, (width, (xs, ys)) in enumerate(sorted(by_width.items())):
        fig.add_scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", name=name,
                        line=dict(color=colour, width=width, dash=dash), legendgroup=name,
                        showlegend=index == 0)
    fig.add_scatter(x=middles["x"], y=middles["y"], mode="markers", name=name,
                    legendgroup=name, showlegend=False, customdata=middles["id"],
                    hovertext=middles["hover"], hoverinfo="text",
                    selected=dict(marker=dict(opacity=1)), unselected=_READABLE,
                    marker=dict(size=middles["size"], color=colour, symbol="circle"))


def _edge_hover(edge: dict[str, Any], kind: str) -> str:
    source, target = edge["source"].split(":", 1)[1], edge["target"].split(":", 1)[1]
    parts = [f"{label(source)} → {label(target)}", html.escape(kind),
             f"count: {graph_view.count_text(edge.get('count'))}"]
    if edge["target"].startswith("consumer:"):
        rate = graph_view.rate_text(int(edge.get("failed") or 0), int(edge.get("count") or 0))
        parts.append(f"failure rate: {rate}")
    if edge.get("rules"):
        parts.append(f"rules: {label(', '.join(edge['rules']))}")
    return "<br>".join(parts)


def _node_hover(node: dict[str, Any], rate: float | None) -> str:
    parts = [f"{node['kind']}: {label(node['name'])}"]
    for key in ("owner", "team", "status"):
        if node.get(key):
            parts.append(f"{key}: {label(node[key])}")
    if rate is not None:
        parts.append(f"failure rate: {rate:.1%}".replace("%", " %"))
    return "<br>".join(parts)


def failure_heatmap(matrix: pd.DataFrame) -> go.Figure:
    """Consumers x event types, cell colour the failure rate (blank: never handled). Each
    handled cell also holds an invisible square marker carrying (consumer, type) as
    customdata: a click selects it (plotly selects points of scatter traces, not heatmap
    cells), so a page can filter by the clicked cell."""
    xs, ys = [label(c) for c in matrix.columns], [label(i) for i in matrix.index]
    fig = go.Figure(go.Heatmap(
        z=matrix.values, x=xs, y=ys, colorscale="Reds", zmin=0, zmax=1,
        hovertemplate="consumer %{y}<br>type %{x}<br>failure rate %{z:.1%}<extra></extra>",
        colorbar=dict(title="rate")))
    cells = [(row, column) for row in range(len(ys)) for column in range(len(xs))
             if not pd.isna(matrix.iat[row, column])]
    fig.add_scatter(
        x=[xs[c] for _, c in cells], y=[ys[r] for r, _ in cells], mode="markers",
        customdata=[[str(matrix.index[r]), str(matrix.columns[c]),
                     f"{matrix.iat[r, c] * 100:.1f} %"] for r, c in cells],
        marker=dict(symbol="square", size=24, color="rgba(0,0,0,0)"),
        hovertemplate="consumer %{y}<br>type %{x}<br>failure rate %{customdata[2]}"
                      "<br>click to filter<extra></extra>",
        showlegend=False, name="cells")
    return _layout(fig, max(260, 28 * len(matrix.index) + 120), clickmode="event+select")


def failure_timeseries(per_bucket: pd.DataFrame) -> go.Figure:
    """Invocations and failed invocations per time bucket."""
    fig = go.Figure()
    fig.add_bar(x=per_bucket["bucket"], y=per_bucket["invocations"], name="invocations",
                marker_color="#90a4ae")
    fig.add_bar(x=per_bucket["bucket"], y=per_bucket["failed"], name="failed",
                marker_color="#d32f2f")
    return _layout(fig, 280, barmode="overlay")


def swimlane(lifecycle: dict[str, Any]) -> go.Figure:
    """One order's timeline: a lane per producer and per consumer; events on their producer's
    lane, every attempt on its consumer's lane coloured by outcome (retries are extra marks),
    a thin line from each event to its attempts; an empty red mark (trace `MISSED`) on a
    consumer's lane at a step's time where it was expected and never handled it
    (`lifecycle.missed_handling`: subscribed, or a missed cancellation)."""
    lanes: list[str] = []
    marks: dict[str, dict[str, list[Any]]] = {}

    def lane(name: str) -> str:
        if name not in lanes:
            lanes.append(name)
        return name

    def mark(kind: str, when: int, where: str, hover: str) -> None:
        bucket = marks.setdefault(kind, {"x": [], "y": [], "text": []})
        bucket["x"].append(pd.to_datetime(when, unit="ms", utc=True))
        bucket["y"].append(label(where))
        bucket["text"].append(hover)

    fig = go.Figure()
    for step in lifecycle["events"]:
        producer = lane(f"producer {step['source']}")
        mark("event", step["time_ms"], producer,
             f"{label(step['detail_type'])}<br>{label(step['id'])}")
        for consumer in step["consumers"]:
            where = lane(f"consumer {consumer['consumer']}")
            for number, attempt in enumerate(consumer["attempts"], start=1):
                mark(attempt["outcome"], attempt["start_ms"], where,
                     f"{label(step['detail_type'])} attempt {number}: {attempt['outcome']}"
                     f"<br>{label(attempt.get('error_type') or '')}")
                fig.add_scatter(x=[pd.to_datetime(step["time_ms"], unit="ms", utc=True),
                                   pd.to_datetime(attempt["start_ms"], unit="ms", utc=True)],
                                y=[label(producer), label(where)], mode="lines",
                                line=dict(color="#cfd8dc", width=1), hoverinfo="skip",
                                showlegend=False)
    for missed in missed_handling(lifecycle):
        mark(MISSED, missed["time_ms"], lane(f"consumer {missed['consumer']}"),
             f"{label(missed['detail_type'])}: {missed['why']}<br>{label(missed['event_id'])}")
    for kind, bucket in marks.items():
        fig.add_scatter(x=bucket["x"], y=bucket["y"], mode="markers", name=kind,
                        hovertext=bucket["text"], hoverinfo="text+x",
                        marker=dict(size=14, color=OUTCOME_COLOURS.get(kind, "#000"),
                                    symbol=MARK_SYMBOLS.get(kind, "circle"),
                                    line=dict(width=2.5, color=OUTCOME_COLOURS.get(kind,
                                                                                   "#000"))))
    fig.update_yaxes(categoryorder="array", categoryarray=[label(n) for n in reversed(lanes)])
    _layout(fig, max(260, 48 * len(lanes) + 100),
            legend=dict(orientation="h", y=1.02, yanchor="bottom"))
    fig.update_layout(margin=dict(l=10, r=10, t=50, b=10))
    return fig


def coverage_heatmap(matrix: pd.DataFrame) -> go.Figure:
    """The lifecycle coverage matrix as coloured cells, each with a short word a person can
    read at a glance (COVERAGE_SHORT) and its whole state on hover."""
    codes = matrix.apply(lambda column: column.map(COVERAGE_CODES))
    colours = [[0.0, "#ffffff"], [0.25, "#bbdefb"], [0.5, "#fff59d"], [0.75, "#a5d6a7"],
               [1.0, "#ef9a9a"]]
    fig = go.Figure(go.Heatmap(
        z=codes.values, x=[label(c) for c in matrix.columns], y=[label(i) for i in matrix.index],
        text=matrix.apply(lambda column: column.map(COVERAGE_SHORT)).values,
        customdata=matrix.values, texttemplate="%{text}", textfont=dict(size=13),
        colorscale=colours, zmin=0, zmax=4, xgap=2, ygap=2, showscale=False,
        hovertemplate="%{y} / %{x}: %{customdata}<extra></extra>"))
    return _layout(fig, max(240, 40 * len(matrix.index) + 140))


def payload_sizes(sizes: pd.DataFrame) -> go.Figure:
    """Mean and max envelope size per detail-type."""
    fig = go.Figure()
    names = [label(t) for t in sizes["detail_type"]]
    fig.add_bar(x=names, y=sizes["mean_bytes"], name="mean bytes")
    fig.add_bar(x=names, y=sizes["max_bytes"], name="max bytes")
    return _layout(fig, 300, barmode="group", yaxis_title="bytes")


def graph_from_json(graph: dict[str, Any]) -> nx.DiGraph[str]:
    """The networkx graph back from `graph_json` (for neighbour look-ups on a page)."""
    built: nx.DiGraph[str] = nx.DiGraph()
    for node in graph["nodes"]:
        built.add_node(node["id"], **node)
    for edge in graph["edges"]:
        built.add_edge(edge["source"], edge["target"], **edge)
    return built
