"""The producer -> event type -> consumer graph: declared, subscribed and observed edges.

`build_graph` merges three views of who emits and who listens: the catalog (declared), the
bus rules (subscribed) and the traffic (observed: a source emitted a type; a consumer's logs
show it handled one), and classifies every edge. Exports: a stable JSON shape, Graphviz DOT
and Mermaid. Pure: no I/O.
"""

from __future__ import annotations

import json
from typing import Any

import networkx as nx
import pandas as pd

from eventscope.catalog.model import Catalog
from eventscope.findings.frames import FAILED, as_keys, clean

CONSISTENT = "consistent"
DECLARED_NEVER_OBSERVED = "declared_never_observed"
OBSERVED_UNDECLARED = "observed_undeclared"
SUBSCRIBED_NOT_DECLARED = "subscribed_not_declared"
NO_CATALOG = "no_catalog"


def producer_id(source: str) -> str:
    return f"producer:{source}"


def type_id(detail_type: str) -> str:
    return f"type:{detail_type}"


def consumer_id(name: str) -> str:
    return f"consumer:{name}"


def build_graph(events: pd.DataFrame, attempts: pd.DataFrame, catalog: Catalog | None = None,
                subscriptions: pd.DataFrame | None = None) -> nx.DiGraph[str]:
    """The graph of producers, event types and consumers, every edge classified."""
    graph: nx.DiGraph[str] = nx.DiGraph(catalog=catalog is not None)
    _add_observed(graph, events, attempts)
    return _finish(graph, catalog, subscriptions)


def _finish(graph: nx.DiGraph[str], catalog: Catalog | None,
            subscriptions: pd.DataFrame | None) -> nx.DiGraph[str]:
    if catalog is not None:
        _add_declared(graph, catalog)
    if subscriptions is not None:
        for row in subscriptions.itertuples(index=False):
            if row.detail_type and row.consumer:
                edge = _edge(graph, type_id(row.detail_type), consumer_id(row.consumer))
                edge["subscribed"] = True
                edge.setdefault("rules", set()).add(row.rule)
    for _, _, data in graph.edges(data=True):
        data["status"] = classify(data, catalog is not None)
        data["rules"] = sorted(data.get("rules", ()))
    return graph


def classify(edge: dict[str, Any], with_catalog: bool) -> str:
    """The status of one edge from where it is known from."""
    if not with_catalog:
        return NO_CATALOG
    if edge["declared"]:
        return CONSISTENT if edge["observed"] else DECLARED_NEVER_OBSERVED
    return SUBSCRIBED_NOT_DECLARED if edge["subscribed"] else OBSERVED_UNDECLARED


def _node(graph: nx.DiGraph[str], node: str) -> dict[str, Any]:
    if node not in graph:
        kind, name = node.split(":", 1)
        graph.add_node(node, kind=kind, name=name)
    return graph.nodes[node]


def _edge(graph: nx.DiGraph[str], a: str, b: str) -> dict[str, Any]:
    _node(graph, a)
    _node(graph, b)
    if not graph.has_edge(a, b):
        graph.add_edge(a, b, declared=False, subscribed=False, observed=False, count=0,
                       failed=0, last_seen_ms=None)
    return graph.edges[a, b]


def observed_summaries(events: pd.DataFrame, attempts: pd.DataFrame) -> dict[str, Any]:
    """The observed traffic the graph needs, from raw frames (see `summaries_from_totals`)."""
    emitted = events.groupby(["source", "detail_type"]).agg(
        count=("id", "size"), last_seen_ms=("time_ms", "max")).reset_index()
    handled = attempts[attempts["detail_type"].notna()].assign(
        is_failed=attempts["outcome"].isin(FAILED))
    by_edge = handled.groupby(["detail_type", "consumer"]).agg(
        count=("request_id", "size"), failed=("is_failed", "sum"),
        events=("event_id", "nunique"), last_seen_ms=("start_ms", "max")).reset_index()
    unattributed = attempts[attempts["detail_type"].isna()].groupby("consumer").size()
    return {"emitted": emitted, "handled": by_edge, "unattributed": unattributed,
            "consumers": list(attempts["consumer"].dropna().unique())}


def summaries_from_totals(emitted_totals: pd.DataFrame, calls: pd.DataFrame,
                          handling: pd.DataFrame) -> dict[str, Any]:
    """The same summaries from rollup totals (`load.load_event_totals`, `load_call_totals`,
    `load_handling_totals`, consumers resolved); `events` counts (function, event) pairs."""
    emitted = emitted_totals.groupby(["source", "detail_type"]).agg(
        count=("count", "sum"), last_seen_ms=("last_ms", "max")).reset_index()
    known = calls[calls["detail_type"].notna()]
    known = known.assign(failed=known["invocations"].where(known["outcome"].isin(FAILED), 0))
    by_edge = known.groupby(["detail_type", "consumer"]).agg(
        count=("invocations", "sum"), failed=("failed", "sum"),
        last_seen_ms=("last_ms", "max")).reset_index()
    pairs = handling[handling["detail_type"].notna()].groupby(
        ["detail_type", "consumer"])["events"].sum().rename("events").reset_index()
    keys = ["detail_type", "consumer"]
    by_edge = as_keys(by_edge, keys).merge(as_keys(pairs, keys), on=keys, how="left")
    by_edge["events"] = by_edge["events"].fillna(0).astype(int)
    unattributed = calls[calls["detail_type"].isna()].groupby("consumer")["invocations"].sum()
    return {"emitted": emitted, "handled": by_edge, "unattributed": unattributed,
            "consumers": list(calls["consumer"].dropna().unique())}


def build_graph_from_summaries(observed: dict[str, Any], catalog: Catalog | None = None,
                               subscriptions: pd.DataFrame | None = None) -> nx.DiGraph[str]:
    """`build_graph` from observed summaries (raw or rollup) instead of raw frames."""
    graph: nx.DiGraph[str] = nx.DiGraph(catalog=catalog is not None)
    _add_summaries(graph, observed)
    return _finish(graph, catalog, subscriptions)


def _add_observed(graph: nx.DiGraph[str], events: pd.DataFrame, attempts: pd.DataFrame) -> None:
    _add_summaries(graph, observed_summaries(events, attempts))


def _add_summaries(graph: nx.DiGraph[str], observed: dict[str, Any]) -> None:
    for row in observed["emitted"].itertuples(index=False):
        edge = _edge(graph, producer_id(row.source), type_id(row.detail_type))
        edge.update(observed=True, count=int(row.count), last_seen_ms=int(row.last_seen_ms))
    for row in observed["handled"].itertuples(index=False):
        edge = _edge(graph, type_id(row.detail_type), consumer_id(row.consumer))
        edge.update(observed=True, count=int(row.count), failed=int(row.failed),
                    events=int(row.events), last_seen_ms=int(row.last_seen_ms))
    unattributed = observed["unattributed"]
    for name in observed["consumers"]:
        _node(graph, consumer_id(name))["unattributed"] = int(unattributed.get(name, 0))


def _add_declared(graph: nx.DiGraph[str], catalog: Catalog) -> None:
    for event_type in catalog.event_types:
        _edge(graph, producer_id(event_type.source), type_id(event_type.detail_type))[
            "declared"] = True
        node = graph.nodes[type_id(event_type.detail_type)]
        node.update(owner=event_type.owner, status=event_type.status)
    for consumer in catalog.consumers:
        _node(graph, consumer_id(consumer.name))["team"] = consumer.team
        for subscription in consumer.subscriptions:
            _edge(graph, type_id(subscription.detail_type), consumer_id(consumer.name))[
                "declared"] = True


def graph_json(graph: nx.DiGraph[str]) -> dict[str, Any]:
    """The graph as {"nodes": [...], "edges": [...]}, sorted, every attribute JSON-ready."""
    nodes = [{"id": n, **{k: clean(v) for k, v in d.items()}}
             for n, d in sorted(graph.nodes.items())]
    edges = [{"source": a, "target": b, **{k: clean(v) for k, v in d.items()}}
             for a, b, d in sorted(graph.edges(data=True), key=lambda e: (e[0], e[1]))]
    return {"catalog": graph.graph.get("catalog", False), "nodes": nodes, "edges": edges}


_DOT_STYLE = {CONSISTENT: "solid", DECLARED_NEVER_OBSERVED: "dashed",
              OBSERVED_UNDECLARED: "bold", SUBSCRIBED_NOT_DECLARED: "dotted",
              NO_CATALOG: "solid"}
_DOT_SHAPE = {"producer": "box", "type": "ellipse", "consumer": "component"}


def to_dot(graph: nx.DiGraph[str]) -> str:
    """Graphviz DOT text; labels are JSON-quoted so no name can break out of its string."""
    lines = ["digraph eventscope {", "  rankdir=LR;"]
    for node, data in sorted(graph.nodes.items()):
        lines.append(f"  {json.dumps(node)} [label={json.dumps(data['name'])}, "
                     f"shape={_DOT_SHAPE[data['kind']]}];")
    for a, b, data in sorted(graph.edges(data=True), key=lambda e: (e[0], e[1])):
        lines.append(f"  {json.dumps(a)} -> {json.dumps(b)} [label={json.dumps(data['status'])}"
                     f", style={_DOT_STYLE[data['status']]}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


_MERMAID_ARROW = {CONSISTENT: "-->", DECLARED_NEVER_OBSERVED: "-.->",
                  OBSERVED_UNDECLARED: "==>", SUBSCRIBED_NOT_DECLARED: "-.->", NO_CATALOG: "-->"}


def _mermaid_label(text: str) -> str:
    escaped = "".join(ch if ch.isalnum() or ch in " ._-:/" else f"#{ord(ch)};" for ch in text)
    return f'"{escaped}"'


def to_mermaid(graph: nx.DiGraph[str]) -> str:
    """A Mermaid flowchart; node ids are generated, names are entity-escaped labels."""
    ids = {node: f"n{i}" for i, node in enumerate(sorted(graph.nodes))}
    lines = ["flowchart LR"]
    for node in sorted(graph.nodes):
        lines.append(f"  {ids[node]}[{_mermaid_label(graph.nodes[node]['name'])}]")
    for a, b, data in sorted(graph.edges(data=True), key=lambda e: (e[0], e[1])):
        lines.append(f"  {ids[a]} {_MERMAID_ARROW[data['status']]}|{data['status']}| {ids[b]}")
    return "\n".join(lines) + "\n"
