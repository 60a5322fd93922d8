"""The producer -> type -> consumer graph: edge classification and exports."""

from __future__ import annotations

import json

from tests.findings_scenario import attempts_frame, catalog, events_frame, rules_frame

from eventscope.findings.frames import resolve_consumers
from eventscope.findings.graph import build_graph, graph_json, to_dot, to_mermaid


def _graph(with_catalog: bool = True):
    cat = catalog() if with_catalog else None
    return build_graph(events_frame(), resolve_consumers(attempts_frame(), cat), cat,
                       rules_frame() if with_catalog else None)


def test_every_edge_is_classified_against_catalog_rules_and_traffic() -> None:
    """Each edge's status follows from declared / subscribed / observed."""
    statuses = {(a, b): d["status"] for a, b, d in _graph().edges(data=True)}
    assert statuses == {
        ("producer:shop", "type:OrderPlaced"): "consistent",
        ("producer:payments", "type:OrderPaid"): "consistent",
        ("producer:shop", "type:OrderCancelled"): "consistent",
        ("producer:shop", "type:OrderShipped"): "declared_never_observed",
        ("producer:web", "type:ProductViewed"): "observed_undeclared",
        ("type:OrderPlaced", "consumer:Billing"): "consistent",
        ("type:OrderPlaced", "consumer:Warranty"): "consistent",
        ("type:OrderPlaced", "consumer:fraud-fn"): "subscribed_not_declared",
        ("type:OrderPaid", "consumer:Billing"): "consistent",
        ("type:OrderPaid", "consumer:Warranty"): "consistent",
        ("type:OrderCancelled", "consumer:Billing"): "consistent",
        ("type:OrderCancelled", "consumer:Loyalty"): "declared_never_observed",
    }


def test_edges_carry_counts_failures_and_last_seen() -> None:
    """Observed consumer edges count invocations, failed ones, events and the last start."""
    edge = _graph().edges["type:OrderPaid", "consumer:Billing"]
    assert (edge["count"], edge["failed"], edge["events"], edge["last_seen_ms"]) == (
        2, 2, 1, 1_700_000_062_000)
    assert _graph().edges["type:OrderPlaced", "consumer:fraud-fn"]["rules"] == ["orders-to-fraud"]


def test_event_without_consumer_and_consumer_without_events_are_nodes() -> None:
    """ProductViewed has no consumer; Loyalty has only a declared edge; email-fn only
    unattributed."""
    graph = _graph()
    assert graph.out_degree("type:ProductViewed") == 0
    assert [d["observed"] for _, _, d in graph.in_edges("consumer:Loyalty", data=True)] == [False]
    assert graph.in_degree("consumer:email-fn") == 0
    assert graph.nodes["consumer:email-fn"]["unattributed"] == 1
    assert graph.nodes["consumer:Billing"]["unattributed"] == 1


def test_without_catalog_consumers_are_functions_and_status_says_no_catalog() -> None:
    """With no catalog, nodes are function names and no edge pretends to be classified."""
    graph = _graph(with_catalog=False)
    assert "consumer:billing-fn" in graph and "consumer:Billing" not in graph
    assert {d["status"] for _, _, d in graph.edges(data=True)} == {"no_catalog"}


def test_json_export_is_plain_json_with_nodes_and_edges() -> None:
    """The JSON export round-trips through json and lists every node and edge."""
    data = json.loads(json.dumps(graph_json(_graph())))
    assert data["catalog"] is True
    assert len(data["edges"]) == 12
    assert {"id": "type:ProductViewed", "kind": "type", "name": "ProductViewed"} in data["nodes"]


def test_dot_and_mermaid_escape_hostile_names() -> None:
    """A detail-type with quotes and brackets cannot break the DOT or Mermaid syntax."""
    events = events_frame()
    events.loc[3, "detail_type"] = 'Evil"];x[label="pwn'
    graph = build_graph(events, attempts_frame())
    dot = to_dot(graph)
    assert '"type:Evil\\"];x[label=\\"pwn"' in dot
    mermaid = to_mermaid(graph)
    assert 'Evil#34;#93;#59;x#91;label#61;#34;pwn' in mermaid
    assert mermaid.count('"') % 2 == 0
