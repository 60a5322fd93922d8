"""The producer -> event type -> consumer graph: declared, subscribed and observed edges.

`build_graph` merges three views of who emits and who listens: the catalog (declared), the
bus rules (subscribed) and the traffic (observed: a source emitted a type; a consumer's logs
show it handled one), and classifies every edge. A rule subscribes its targets to every type
whose (source, detail-type) its event pattern matches (`eventscope.patterns`: prefix,
anything-but, wildcard... as EventBridge matches them); conditions on other fields (the
detail's content) make the subscription `filtered`: the consumer gets part of the type.
Every edge says where it is known from (`known_from`: declared, subscribed, observed).
Exports: a stable JSON shape, Graphviz DOT and Mermaid. Pure: no I/O.
"""

from __future__ import annotations

import json
from typing import Any

import networkx as nx
import orjson
import pandas as pd

from eventscope.catalog.model import Catalog
from eventscope.findings.frames import FAILED, as_keys, clean
from eventscope.patterns import PatternError, listed_values, matches

CONSISTENT = "consistent"
DECLARED_NEVER_OBSERVED = "declared_never_observed"
OBSERVED_UNDECLARED = "observed_undeclared"
SUBSCRIBED_NOT_DECLARED = "subscribed_not_declared"
NO_CATALOG = "no_catalog"
KNOWN_FROM = ("declared", "subscribed", "observed")
ENVELOPE_FIELDS = ("source", "detail-type")


def producer_id(source: str) -> str:
    return f"producer:{source}"


def type_id(detail_type: str) -> str:
    return f"type:{detail_type}"


def consumer_id(name: str) -> str:
    return f"consumer:{name}"


def build_graph(events: pd.DataFrame, attempts: pd.DataFrame, catalog: Catalog | None = None,
                subscriptions: pd.DataFrame | None = None,
                rules: list[dict[str, Any]] | None = None) -> nx.DiGraph[str]:
    """The graph of producers, event types and consumers, every edge classified.

    `rules` are the bus rules (`read.bus_rules`: rule, bus, pattern, consumers), matched
    against every type of the graph; `subscriptions` are rows (SUBSCRIPTION_COLUMNS) naming
    their detail-type already."""
    graph: nx.DiGraph[str] = nx.DiGraph(catalog=catalog is not None)
    _add_observed(graph, events, attempts)
    return _finish(graph, catalog, subscriptions, rules)


def _finish(graph: nx.DiGraph[str], catalog: Catalog | None,
            subscriptions: pd.DataFrame | None,
            rules: list[dict[str, Any]] | None = None) -> nx.DiGraph[str]:
    if catalog is not None:
        _add_declared(graph, catalog)
    if subscriptions is not None:
        for row in subscriptions.itertuples(index=False):
            if row.detail_type and row.consumer:
                _subscribe(graph, row.detail_type, row.consumer, row.rule, False)
    graph.graph["rules"] = None if rules is None else _add_rules(graph, rules)
    for _, _, data in graph.edges(data=True):
        data["status"] = classify(data, catalog is not None)
        data["rules"] = sorted(data.get("rules", ()))
        data["filtered_rules"] = sorted(data.get("filtered_rules", ()))
        data["known_from"] = [kind for kind in KNOWN_FROM if data[kind]]
    return graph


def _subscribe(graph: nx.DiGraph[str], detail_type: str, consumer: str, rule: str,
               filtered: bool) -> None:
    edge = _edge(graph, type_id(detail_type), consumer_id(consumer))
    edge["subscribed"] = True
    edge.setdefault("rules", set()).add(rule)
    if filtered:
        edge.setdefault("filtered_rules", set()).add(rule)


def envelope_pattern(pattern: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The part of an event pattern about the envelope's source and detail-type (what a
    type is known by), and whether the pattern also filters on anything else (`$or` branches
    reduced the same way; a branch that pins neither leaves the whole `$or` open)."""
    kept: dict[str, Any] = {}
    filtered = False
    for key, value in pattern.items():
        if key in ENVELOPE_FIELDS:
            kept[key] = value
        elif key == "$or" and isinstance(value, list):
            branches = [envelope_pattern(b) if isinstance(b, dict) else ({}, True)
                        for b in value]
            filtered = filtered or any(f for _, f in branches)
            if branches and all(branch for branch, _ in branches):
                kept["$or"] = [branch for branch, _ in branches]
        else:
            filtered = True
    return kept, filtered


def rule_types(pattern: dict[str, Any], type_sources: dict[str, set[str | None]]
               ) -> list[str]:
    """The detail-types (of `type_sources`: type -> the sources known to emit it) whose
    envelope a rule's pattern matches; raises PatternError for a pattern AWS would refuse."""
    envelope, _ = envelope_pattern(pattern)
    listed = listed_values(envelope, "detail-type")  # exact values: only those can match
    candidates = (sorted(type_sources) if listed is None else
                  sorted({t for t in listed if isinstance(t, str) and t in type_sources}))
    found = []
    for detail_type in candidates:
        sources = type_sources[detail_type]
        if any(matches(envelope, {"detail-type": detail_type} if source is None else
                       {"source": source, "detail-type": detail_type})
               for source in sorted(sources, key=str)):
            found.append(detail_type)
    return found


def _add_rules(graph: nx.DiGraph[str], rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Subscribed edges from the rules' patterns; each rule described (types, problem)."""
    parsed = [_pattern(rule.get("pattern")) for rule in rules]
    for pattern, _ in parsed:  # a type a rule lists is a node even if never seen nor declared
        for listed in (listed_values(pattern, "detail-type") or []) if pattern else []:
            if isinstance(listed, str):
                _node(graph, type_id(listed))
    type_sources = _type_sources(graph)
    described = []
    for rule, (pattern, problem) in zip(rules, parsed):
        types: list[str] = []
        filtered = False
        if pattern is not None:
            filtered = envelope_pattern(pattern)[1]
            try:
                types = rule_types(pattern, type_sources)
            except PatternError as error:
                problem = f"not a valid event pattern: {error}"
        for detail_type in types:
            for consumer in rule.get("consumers") or []:
                _subscribe(graph, detail_type, consumer, rule["rule"], filtered)
        described.append({"rule": rule["rule"], "bus": rule.get("bus"),
                          "pattern": rule.get("pattern"),
                          "consumers": sorted(rule.get("consumers") or []),
                          "types": types, "filtered": filtered, "problem": problem})
    return sorted(described, key=lambda r: (str(r["bus"]), r["rule"]))


def _pattern(text: Any) -> tuple[dict[str, Any] | None, str | None]:
    if isinstance(text, dict):
        return text, None
    try:
        pattern = orjson.loads(text or "")
    except orjson.JSONDecodeError:
        return None, "the event pattern is not JSON"
    if not isinstance(pattern, dict):
        return None, "the event pattern is not a JSON object"
    return pattern, None


def _type_sources(graph: nx.DiGraph[str]) -> dict[str, set[str | None]]:
    """Every type node's name -> the producers known to emit it (None: no producer known)."""
    found: dict[str, set[str | None]] = {}
    for node, data in graph.nodes(data=True):
        if data["kind"] == "type":
            found[data["name"]] = {graph.nodes[p]["name"] for p in graph.predecessors(node)
                                   if graph.nodes[p]["kind"] == "producer"} or {None}
    return found


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
                               subscriptions: pd.DataFrame | None = None,
                               rules: list[dict[str, Any]] | None = None) -> nx.DiGraph[str]:
    """`build_graph` from observed summaries (raw or rollup) instead of raw frames."""
    graph: nx.DiGraph[str] = nx.DiGraph(catalog=catalog is not None)
    _add_summaries(graph, observed)
    return _finish(graph, catalog, subscriptions, rules)


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
    return {"catalog": graph.graph.get("catalog", False), "rules": graph.graph.get("rules"),
            "nodes": nodes, "edges": edges}


def edge_label(edge: dict[str, Any]) -> str:
    """An edge's status, where it is known from and the rules that route it, in one line."""
    text = f"{edge['status']} [{'+'.join(edge.get('known_from') or [])}]"
    return text + (f" rules: {', '.join(edge['rules'])}" if edge.get("rules") else "")


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
        lines.append(f"  {json.dumps(a)} -> {json.dumps(b)} [label={json.dumps(edge_label(data))}"
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
        lines.append(f"  {ids[a]} {_MERMAID_ARROW[data['status']]}|"
                     f"{_mermaid_label(edge_label(data))}| {ids[b]}")
    return "\n".join(lines) + "\n"
