"""What the Event graph page shows, from `graph_json`: pure functions, no Streamlit.

Owns the focus (one team, event type, consumer or producer and its neighbours, 1 or 2 hops,
bounded per column so a 40-team company stays readable), the layered layout (three columns,
a fixed row pitch, neighbours ordered next to what they connect to), the edge kinds (where an
edge is known from: declared in the catalog, subscribed by a bus rule, observed in traffic),
the details panel of a node or an edge, and the page's plain reasons for an empty view.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

FOCUS_KINDS = ("team", "type", "consumer", "producer")
COLUMNS = ("producer", "type", "consumer")
MAX_PER_COLUMN = 20  # nodes drawn per column in a focused view; the rest are listed
WHOLE_GRAPH_MAX = 60  # the whole graph is drawn only up to this many nodes
ROW_PX = 30  # vertical pitch of a row, in pixels (labels are FONT_PX high)
FONT_PX = 12
MARGIN_PX = 120  # legend above, colour scale below the rows
TOP_ROWS = 0.5  # room above the first row for a type's label
LABEL_CHARS = 24  # labels longer than this are cut; hover shows the full name

KIND_STYLES: dict[tuple[str, ...], tuple[str, str, str]] = {  # known_from -> colour, dash, name
    ("declared", "subscribed", "observed"): ("#2e7d32", "solid", "declared + rule + observed"),
    ("declared", "observed"): ("#66bb6a", "solid", "declared + observed"),
    ("subscribed", "observed"): ("#f9a825", "solid", "rule + observed, not declared"),
    ("observed",): ("#d32f2f", "solid", "observed only: not declared, no rule"),
    ("declared", "subscribed"): ("#1565c0", "dash", "declared + rule, never observed"),
    ("declared",): ("#9e9e9e", "dash", "declared only: no rule, never observed"),
    ("subscribed",): ("#8e24aa", "dot", "rule only: not declared, never observed"),
}
NO_CATALOG_STYLE = ("#607d8b", "solid", "observed (no catalog to compare)")


# --- focus ------------------------------------------------------------------------------

def teams(graph: dict[str, Any]) -> list[str]:
    """Every team named in the graph: consumers' teams and types' owners."""
    return sorted({str(n[key]) for n in graph["nodes"] for key in ("team", "owner")
                   if n.get(key)})


def focus_options(graph: dict[str, Any]) -> list[str]:
    """Every focus the page offers: `team:x`, then each node id (`type:y`, `consumer:z`,
    `producer:p`), sorted by kind then name (case-insensitive)."""
    order = {kind: index for index, kind in enumerate(FOCUS_KINDS)}
    options = [f"team:{t}" for t in teams(graph)] + [n["id"] for n in graph["nodes"]]
    return sorted(options, key=lambda o: (order.get(o.split(":", 1)[0], 9), o.lower()))


def focus_label(option: str) -> str:
    """A focus option for people: `type · OrderPaid`."""
    kind, _, name = option.partition(":")
    return f"{kind} · {name}" if name else "(choose a team, event type or consumer)"


def default_focus(graph: dict[str, Any]) -> str | None:
    """The event type with the most edges (ties: by name): what the page opens on."""
    degree: dict[str, int] = {n["id"]: 0 for n in graph["nodes"] if n["kind"] == "type"}
    for edge in graph["edges"]:
        for end in (edge["source"], edge["target"]):
            if end in degree:
                degree[end] += 1
    return min(degree, key=lambda n: (-degree[n], n)) if degree else None


def seeds(graph: dict[str, Any], focus: str) -> set[str]:
    """The nodes a focus names: a team's consumers and owned types, or the node itself."""
    kind, _, name = focus.partition(":")
    if kind == "team":
        return {n["id"] for n in graph["nodes"] if name in (n.get("team"), n.get("owner"))}
    return {n["id"] for n in graph["nodes"] if n["id"] == focus}


def focused(graph: dict[str, Any], focus: str, hops: int = 1) -> dict[str, Any]:
    """The focus and its neighbours up to `hops` edges away (either direction), with the
    producers of every type shown; at most MAX_PER_COLUMN nodes per column (the focus first,
    then the neighbours with the most traffic). `hidden` lists the neighbours left out."""
    start = seeds(graph, focus)
    around = _neighbours(graph)
    distance = {node: 0 for node in start}
    queue = deque(start)
    while queue:
        node = queue.popleft()
        if distance[node] < hops:
            for other in around.get(node, ()):
                if other not in distance:
                    distance[other] = distance[node] + 1
                    queue.append(other)
    for edge in graph["edges"]:  # where the shown types come from
        if edge["target"] in distance and edge["source"].startswith("producer:"):
            distance.setdefault(edge["source"], hops + 1)
    kept, hidden = _bounded(graph, distance)
    return {**_subgraph(graph, kept), "focus": sorted(start), "hidden": hidden}


def whole(graph: dict[str, Any]) -> dict[str, Any]:
    """The whole graph, as a view (nothing focused, nothing hidden)."""
    return {**graph, "focus": [], "hidden": []}


def _neighbours(graph: dict[str, Any]) -> dict[str, set[str]]:
    around: dict[str, set[str]] = {}
    for edge in graph["edges"]:
        around.setdefault(edge["source"], set()).add(edge["target"])
        around.setdefault(edge["target"], set()).add(edge["source"])
    return around


def _traffic(graph: dict[str, Any]) -> dict[str, int]:
    volume: dict[str, int] = {}
    for edge in graph["edges"]:
        for end in (edge["source"], edge["target"]):
            volume[end] = volume.get(end, 0) + int(edge.get("count") or 0)
    return volume


def _bounded(graph: dict[str, Any], distance: dict[str, int]) -> tuple[set[str], list[str]]:
    volume = _traffic(graph)
    kept: set[str] = set()
    hidden: list[str] = []
    for column in COLUMNS:
        ranked = sorted((n for n in distance if n.startswith(f"{column}:")),
                        key=lambda n: (distance[n], -volume.get(n, 0), n.lower()))
        kept.update(ranked[:MAX_PER_COLUMN])
        hidden.extend(ranked[MAX_PER_COLUMN:])
    return kept, sorted(hidden)


def _subgraph(graph: dict[str, Any], kept: set[str]) -> dict[str, Any]:
    return {**graph, "nodes": [n for n in graph["nodes"] if n["id"] in kept],
            "edges": [e for e in graph["edges"] if e["source"] in kept and e["target"] in kept]}


# --- layout -----------------------------------------------------------------------------

def layout(view: dict[str, Any]) -> tuple[dict[str, tuple[float, float]], int]:
    """Positions in three columns (x 0, 1, 2) and the number of rows: types sorted by name,
    producers and consumers ordered by where their types sit (fewer crossings); y in rows
    (0 at the top, negative downwards), every column spread over the same rows, so two nodes
    of a column are at least one row apart."""
    column: dict[str, list[str]] = {kind: [] for kind in COLUMNS}
    for node in view["nodes"]:
        column[node["kind"]].append(node["id"])
    rows = max([len(ids) for ids in column.values()] + [1])
    rank = {n: i for i, n in enumerate(sorted(column["type"], key=str.lower))}
    around = _neighbours(view)

    def centre(node: str) -> float:
        places = [rank[t] for t in around.get(node, ()) if t in rank]
        return sum(places) / len(places) if places else float(len(rank))

    ordered = {"type": sorted(column["type"], key=str.lower)}
    for kind in ("producer", "consumer"):
        ordered[kind] = sorted(column[kind], key=lambda n: (centre(n), n.lower()))
    positions: dict[str, tuple[float, float]] = {}
    for kind, ids in ordered.items():
        pitch = rows / max(len(ids), 1)
        for index, node in enumerate(ids):
            positions[node] = (float(COLUMNS.index(kind)), -(index + 0.5) * pitch)
    return positions, rows


def height_px(rows: int) -> int:
    """The figure height for that many rows (and the room for the top label): ROW_PX each,
    plus the margins."""
    return max(320, round((rows + TOP_ROWS) * ROW_PX) + MARGIN_PX)


def short(name: Any) -> str:
    """A label cut to LABEL_CHARS (the hover text carries the full name)."""
    text = "" if name is None else str(name)
    return text if len(text) <= LABEL_CHARS else text[:LABEL_CHARS - 1] + "…"


def edge_style(edge: dict[str, Any], with_catalog: bool) -> tuple[str, str, str]:
    """(colour, dash, legend name) of an edge from where it is known from."""
    known = tuple(edge.get("known_from") or ("observed",))
    if not with_catalog and "declared" not in known:
        if known == ("observed",):
            return NO_CATALOG_STYLE
        known = tuple(k for k in known if k != "declared")
    return KIND_STYLES.get(known, NO_CATALOG_STYLE)


def edge_id(edge: dict[str, Any]) -> str:
    """The selectable id of an edge: `edge:<source>><target>`."""
    return f"edge:{edge['source']}>{edge['target']}"


# --- details ----------------------------------------------------------------------------

def count_text(value: float | int | None) -> str:
    """A count for people: 987, 12.3k, 4.5M."""
    number = float(value or 0)
    for size, suffix, start in ((1e6, "M", 1e6), (1e3, "k", 1e4)):
        if abs(number) >= start:
            return f"{number / size:,.1f}{suffix}"
    return f"{int(number):,}"


def rate_text(failed: int, count: int) -> str:
    """A failure rate for people: `3.2 % (4 of 125)`, or `no invocations`."""
    if not count:
        return "no invocations"
    return f"{failed / count:.1%}".replace("%", " %") + f" ({failed:,} of {count:,})"


def ago_text(ms: int | None, now_ms: int) -> str:
    """When, for people: `2026-12-01 10:40 UTC (3 min ago)`, or `never`."""
    if ms is None:
        return "never"
    when = datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    seconds = max(0, (now_ms - ms) // 1000)
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min")):
        if seconds >= size:
            return f"{when} ({seconds // size} {unit} ago)"
    return f"{when} ({seconds} s ago)"


def _node(graph: dict[str, Any], node_id: str) -> dict[str, Any] | None:
    return next((n for n in graph["nodes"] if n["id"] == node_id), None)


def _names(ids: Iterable[str]) -> list[str]:
    return sorted({i.split(":", 1)[1] for i in ids}, key=str.lower)


def panel_type(graph: dict[str, Any], selected: str) -> str | None:
    """The event type a selection is about (a type node, or the type end of an edge), whose
    latest order the panel links to; None for producers and consumers."""
    ends = selected[len("edge:"):].split(">") if selected.startswith("edge:") else [selected]
    return next((end.split(":", 1)[1] for end in ends if end.startswith("type:")), None)


def with_order_link(panel: dict[str, Any], detail_type: str | None,
                    order: str | None) -> dict[str, Any]:
    """The panel with a link to the lifecycle of the latest order of its type (when any)."""
    if not (detail_type and order):
        return panel
    return {**panel, "links": [*panel["links"], (f"Latest {detail_type} order's lifecycle",
                                                 "lifecycle", {"order": order})]}


def node_panel(graph: dict[str, Any], node_id: str, now_ms: int) -> dict[str, Any] | None:
    """What the side panel says of a node: facts (owner team, status, volume, failure rate,
    last seen), its producers, consumers and types, the rules that route to or from it, and
    the pages filtered on it (page, query parameters). None for an unknown node."""
    node = _node(graph, node_id)
    if node is None:
        return None
    incoming = [e for e in graph["edges"] if e["target"] == node_id]
    outgoing = [e for e in graph["edges"] if e["source"] == node_id]
    handled = incoming if node["kind"] == "consumer" else outgoing
    count = sum(int(e.get("count") or 0) for e in (incoming if node["kind"] != "producer"
                                                    else outgoing))
    failed = sum(int(e.get("failed") or 0) for e in handled)
    calls = sum(int(e.get("count") or 0) for e in handled) if node["kind"] != "producer" else 0
    seen = [e["last_seen_ms"] for e in incoming + outgoing if e.get("last_seen_ms") is not None]
    facts = {"kind": node["kind"], "owner team": node.get("team") or node.get("owner") or "—"}
    if node.get("status"):
        facts["catalog status"] = node["status"]
    facts["events" if node["kind"] != "consumer" else "invocations"] = count_text(count)
    if node["kind"] != "producer":
        facts["failure rate"] = rate_text(failed, calls)
    facts["last seen"] = ago_text(max(seen) if seen else None, now_ms)
    return {"title": f"{node['kind']}: {node['name']}", "facts": facts,
            "producers": _names(e["source"] for e in incoming if node["kind"] == "type"),
            "types": _names([e["source"] for e in incoming if node["kind"] == "consumer"]
                            + [e["target"] for e in outgoing if node["kind"] == "producer"]),
            "consumers": _names(e["target"] for e in outgoing if node["kind"] == "type"),
            "rules": sorted({r for e in incoming + outgoing for r in e.get("rules") or []}),
            "links": _links(node["kind"], node["name"])}


def edge_panel(graph: dict[str, Any], selected: str, now_ms: int) -> dict[str, Any] | None:
    """What the side panel says of an edge: where it is known from, status, volume, failure
    rate, last seen, the rules routing it (filtered ones say so), links. None if unknown."""
    edge = next((e for e in graph["edges"] if edge_id(e) == selected), None)
    if edge is None:
        return None
    source, target = (_node(graph, edge["source"]) or {}), (_node(graph, edge["target"]) or {})
    count, failed = int(edge.get("count") or 0), int(edge.get("failed") or 0)
    facts = {"known from": " + ".join(edge.get("known_from") or []) or "—",
             "status": str(edge["status"]).replace("_", " "),
             "events" if source.get("kind") == "producer" else "invocations": count_text(count)}
    if target.get("kind") == "consumer":
        facts["failure rate"] = rate_text(failed, count)
        facts["owner team"] = target.get("team") or "—"
    else:
        facts["owner team"] = target.get("owner") or "—"
    facts["last seen"] = ago_text(edge.get("last_seen_ms"), now_ms)
    filtered = set(edge.get("filtered_rules") or [])
    rules = [f"{r} (filters on content: part of the type)" if r in filtered else r
             for r in edge.get("rules") or []]
    consumer = target.get("name") if target.get("kind") == "consumer" else None
    detail_type = target.get("name") if target.get("kind") == "type" else source.get("name")
    return {"title": f"{source.get('name')} → {target.get('name')}", "facts": facts,
            "producers": [source["name"]] if source.get("kind") == "producer" else [],
            "types": [detail_type] if detail_type else [],
            "consumers": [consumer] if consumer else [], "rules": rules,
            "links": _edge_links(consumer, detail_type)}


def _links(kind: str, name: str) -> list[tuple[str, str, dict[str, str]]]:
    """(label, page, query parameters) of the pages filtered on a node."""
    if kind == "consumer":
        return [("Failures of this consumer", "failures", {"consumer": name}),
                ("Its subscriptions", "subscriptions", {"consumer": name})]
    if kind == "type":
        return [("Failures on this type", "failures", {"type": name}),
                ("Who should listen to it", "subscriptions", {"type": name})]
    return []


def _edge_links(consumer: str | None, detail_type: str | None
                ) -> list[tuple[str, str, dict[str, str]]]:
    if consumer and detail_type:
        return [("Failures of this pair", "failures",
                 {"consumer": consumer, "type": detail_type}),
                ("Subscriptions of this consumer", "subscriptions", {"consumer": consumer})]
    return _links("type", detail_type) if detail_type else []


def details_options(view: dict[str, Any]) -> list[str]:
    """What the details box offers: the view's nodes, then its edges."""
    return ([n["id"] for n in sorted(view["nodes"], key=lambda n: (n["kind"], n["id"].lower()))]
            + [edge_id(e) for e in view["edges"]])


def details_label(option: str) -> str:
    """A details option for people: `type · OrderPaid` or `edge · OrderPaid → billing`."""
    if option.startswith("edge:"):
        source, _, target = option[len("edge:"):].partition(">")
        return f"edge · {source.split(':', 1)[-1]} → {target.split(':', 1)[-1]}"
    return focus_label(option) if option else "(click a node or an edge, or choose here)"


# --- plain reasons ----------------------------------------------------------------------

def rules_state(graph: dict[str, Any]) -> str | None:
    """Why no edge can be `subscribed`, in our words (None when rules route something)."""
    rules = graph.get("rules")
    if rules is None:
        return ("No bus rules collected: no edge can be shown as subscribed. Collect them with "
                "`eventscope collect rules --bus BUS`.")
    if not rules:
        return "The latest bus-rules snapshot has no enabled rule with an event pattern."
    if not any(e.get("subscribed") for e in graph["edges"]):
        return "No collected rule routes any event type of this graph to a target."
    return None


def rule_problems(graph: dict[str, Any]) -> list[dict[str, Any]]:
    """The rules whose pattern could not be read, with the reason (nothing drawn for them)."""
    return [{"bus": r["bus"], "rule": r["rule"], "problem": r["problem"]}
            for r in graph.get("rules") or [] if r.get("problem")]


def empty_reason(graph: dict[str, Any]) -> str | None:
    """Why the graph has nothing to draw (None when it has)."""
    if graph["nodes"]:
        return None
    if graph.get("catalog"):
        return "Nothing in this window and nothing in the catalog: no node to draw."
    return ("Nothing was emitted or handled in this window and no catalog is loaded: "
            "pick a longer window, or start the dashboard with `--catalog PATH`.")


def traffic_note(graph: dict[str, Any]) -> str | None:
    """What is missing from the picture when the window has events but no consumer logs."""
    consumer_edges = [e for e in graph["edges"] if e["target"].startswith("consumer:")]
    if graph["edges"] and not any(e.get("observed") for e in consumer_edges):
        return ("No consumer invocation in this window (no logs collected?): consumers come "
                "from the catalog and the bus rules only.")
    return None
