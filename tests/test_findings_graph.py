"""The producer -> type -> consumer graph: edge classification and exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import networkx as nx
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.company_graph import company, write_catalog, write_store
from tests.findings_scenario import attempts_frame, catalog, events_frame, rules_frame
from tests.store_shapes import clear

from eventscope.catalog.loader import load_catalog
from eventscope.cli import main
from eventscope.findings import read, summaries

from eventscope.findings.frames import resolve_consumers
from eventscope.findings.graph import (build_graph, envelope_pattern, graph_json, rule_types,
                                       to_dot, to_mermaid)
from eventscope.patterns import matches
from eventscope.store import open_store


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


# --- bus rules: subscriptions from the rules' event patterns ---------------------------------

def _rule(name: str, pattern: object, *consumers: str) -> dict[str, Any]:
    """A rule as `read.bus_rules` gives it (the pattern as the collector stored it: JSON)."""
    return {"rule": name, "bus": "shop", "pattern": json.dumps(pattern),
            "consumers": list(consumers)}


def _ruled(*rules: dict[str, Any]) -> nx.DiGraph[str]:
    cat = catalog()
    return build_graph(events_frame(), resolve_consumers(attempts_frame(), cat), cat,
                       rules=list(rules))


def _subscribed(graph: nx.DiGraph[str], consumer: str) -> set[str]:
    return {graph.nodes[a]["name"] for a, _, d in graph.in_edges(f"consumer:{consumer}", data=True)
            if d["subscribed"]}


def test_a_prefix_on_the_detail_type_subscribes_every_matching_type_of_the_source() -> None:
    """{"source": ["shop"], "detail-type": [{"prefix": "Order"}]} (AWS's prefix matching)
    routes shop's Order* types, not payments' OrderPaid nor web's ProductViewed."""
    graph = _ruled(_rule("shop-orders", {"source": ["shop"],
                                         "detail-type": [{"prefix": "Order"}]}, "audit"))
    assert _subscribed(graph, "audit") == {"OrderPlaced", "OrderCancelled", "OrderShipped"}
    edge = graph.edges["type:OrderPlaced", "consumer:audit"]
    assert edge["rules"] == ["shop-orders"] and edge["status"] == "subscribed_not_declared"


def test_anything_but_excludes_the_listed_types() -> None:
    """"anything-but" a list of detail-types routes every other type the graph knows."""
    graph = _ruled(_rule("not-views", {"detail-type": [
        {"anything-but": ["ProductViewed", "OrderPaid"]}]}, "audit"))
    assert _subscribed(graph, "audit") == {"OrderPlaced", "OrderCancelled", "OrderShipped"}


def test_a_numeric_filter_on_the_detail_subscribes_the_type_as_filtered() -> None:
    """A numeric matcher on a detail field (AWS's `numeric: [">", 100]`) cannot be decided
    for a type: the consumer is subscribed to part of OrderPaid, and the edge says so."""
    graph = _ruled(_rule("big-payments", {"source": ["payments"], "detail": {
        "amount": [{"numeric": [">", 100, "<=", 5000]}]}}, "Billing"))
    edge = graph.edges["type:OrderPaid", "consumer:Billing"]
    assert _subscribed(graph, "Billing") == {"OrderPaid"}
    assert (edge["rules"], edge["filtered_rules"]) == (["big-payments"], ["big-payments"])
    assert edge["known_from"] == ["declared", "subscribed", "observed"]
    assert graph.graph["rules"][0]["filtered"] is True


def test_or_branches_subscribe_the_union_and_wildcards_match_sources() -> None:
    """$or of a wildcard source and an exact detail-type routes both branches' types."""
    graph = _ruled(_rule("either", {"$or": [{"source": [{"wildcard": "w*b"}]},
                                            {"detail-type": ["OrderCancelled"]}]}, "audit"))
    assert _subscribed(graph, "audit") == {"ProductViewed", "OrderCancelled"}


def test_a_pattern_aws_would_refuse_is_reported_and_draws_nothing() -> None:
    """An unknown operator and a pattern that is not an object: no edge, the reason kept."""
    graph = _ruled(_rule("bogus", {"detail-type": [{"startswith": "Order"}]}, "audit"),
                   {"rule": "broken", "bus": "shop", "pattern": "[1, 2", "consumers": ["x"]})
    assert "consumer:audit" not in graph and "consumer:x" not in graph
    problems = {r["rule"]: r["problem"] for r in graph.graph["rules"]}
    assert "unknown pattern operator 'startswith'" in problems["bogus"]
    assert problems["broken"] == "the event pattern is not JSON"


def test_a_type_a_rule_lists_is_a_node_even_if_never_seen() -> None:
    """A rule listing OrderRefunded (declared nowhere, never emitted) draws its edge."""
    graph = _ruled(_rule("refunds", {"detail-type": ["OrderRefunded"]}, "Billing"))
    assert graph.edges["type:OrderRefunded", "consumer:Billing"]["known_from"] == ["subscribed"]


def test_rules_never_collected_and_an_empty_snapshot_say_different_things() -> None:
    """`rules` is None without a snapshot, [] for a snapshot without pattern rules."""
    assert graph_json(_graph())["rules"] is None
    assert graph_json(_ruled())["rules"] == []


def test_known_from_names_every_view_of_an_edge() -> None:
    """Declared + subscribed + observed, declared only, observed only, subscribed only."""
    graph = _ruled(_rule("billing", {"detail-type": ["OrderPlaced", "OrderShipped"]},
                         "Billing"))
    known = {(a, b): d["known_from"] for a, b, d in graph.edges(data=True)}
    assert known["type:OrderPlaced", "consumer:Billing"] == ["declared", "subscribed",
                                                               "observed"]
    assert known["type:OrderShipped", "consumer:Billing"] == ["subscribed"]
    assert known["type:OrderCancelled", "consumer:Loyalty"] == ["declared"]
    assert known["producer:web", "type:ProductViewed"] == ["observed"]


def test_exports_name_the_rules_of_an_edge() -> None:
    """DOT and Mermaid labels carry where an edge is known from and its rules."""
    graph = _ruled(_rule("to-audit", {"detail-type": ["OrderPaid"]}, "audit"))
    assert ('"type:OrderPaid" -> "consumer:audit" [label="subscribed_not_declared '
            '[subscribed] rules: to-audit"' in to_dot(graph))
    assert "#91;subscribed#93; rules: to-audit\"| n" in to_mermaid(graph)


KNOWN = {"OrderPlaced": {"shop"}, "OrderPaid": {"payments"}, "OrderCancelled": {"shop"},
         "ProductViewed": {"web"}, "Unsourced": {None}}
NAMES = st.sampled_from(sorted(KNOWN) + ["Order", "shop", "web", "payments", ""])
CONDITION = st.one_of(
    NAMES, st.builds(lambda v: {"prefix": v}, NAMES), st.builds(lambda v: {"suffix": v}, NAMES),
    st.builds(lambda v: {"anything-but": v}, st.lists(NAMES, min_size=1, max_size=3)),
    st.builds(lambda v: {"wildcard": v + "*"}, NAMES),
    st.builds(lambda v: {"equals-ignore-case": v.upper()}, NAMES))
ENVELOPE = st.fixed_dictionaries({}, optional={
    "source": st.lists(CONDITION, min_size=1, max_size=3),
    "detail-type": st.lists(CONDITION, min_size=1, max_size=3)})
DETAIL = st.fixed_dictionaries({"detail": st.fixed_dictionaries({"amount": st.just(
    [{"numeric": [">", 0]}])})})
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                       lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.sampled_from(["source", "detail-type", "$or", "x"]),
                                         inner, max_size=3), max_leaves=10)


@settings(max_examples=150, deadline=None)
@given(pattern=JSONISH)
def test_any_stored_pattern_gives_an_answer_never_an_exception(pattern: object) -> None:
    """Whatever JSON a snapshot holds, the graph is built; a refused pattern has a reason."""
    graph = _ruled(_rule("any", pattern, "audit"))
    described = graph.graph["rules"][0]
    assert described["problem"] or isinstance(pattern, dict)
    assert not (described["problem"] and described["types"])


@settings(max_examples=150, deadline=None)
@given(envelope=ENVELOPE, detail=DETAIL)
def test_a_content_filter_never_changes_which_types_a_rule_routes(
        envelope: dict[str, Any], detail: dict[str, Any]) -> None:
    """Adding a detail condition keeps the routed types and marks the rule filtered."""
    plain = rule_types(envelope, KNOWN)
    assert rule_types({**envelope, **detail}, KNOWN) == plain
    assert envelope_pattern({**envelope, **detail}) == (envelope, True)


@settings(max_examples=150, deadline=None)
@given(first=ENVELOPE, second=ENVELOPE)
def test_or_routes_the_union_of_its_branches(first: dict[str, Any],
                                             second: dict[str, Any]) -> None:
    """{"$or": [a, b]} routes exactly the types a or b routes (AWS's $or semantics)."""
    union = set(rule_types(first, KNOWN)) | set(rule_types(second, KNOWN))
    assert set(rule_types({"$or": [first, second]}, KNOWN)) == union


@settings(max_examples=100, deadline=None)
@given(envelope=ENVELOPE)
def test_a_routed_type_is_one_an_event_of_it_would_match(envelope: dict[str, Any]) -> None:
    """Each routed type has a known source whose envelope the pattern matches; no other."""
    routed = set(rule_types(envelope, KNOWN))
    expected = {t for t, sources in KNOWN.items() for s in sources
                if matches(envelope, {"detail-type": t} if s is None else
                           {"source": s, "detail-type": t})}
    assert routed == expected


def _statements(url: str, teams: int, consumers: int, tmp: Path) -> tuple[int, Any]:
    """The statements `eventscope graph`'s read path runs on a generated company's store."""
    built = company(teams=teams, consumers=consumers)
    cat = load_catalog(str(write_catalog(tmp / f"catalog-{teams}", built)))
    store = open_store(write_store(url, built))
    run: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda *args: run.append(args[2]))
    try:
        graph = summaries.build_graph(store.engine, cat, rules=read.bus_rules(store.engine, cat))
    finally:
        store.engine.dispose()
    return len(run), graph


def test_the_graph_of_a_company_reads_the_same_few_statements_at_any_size(
        store_url: str, tmp_path: Path) -> None:
    """200 types, 300 consumers and 302 rules take as many statements as 20 types: one per
    rollup and per bus, never one per type, consumer or rule."""
    small, _ = _statements(store_url, 4, 30, tmp_path)
    clear(open_store(store_url))
    large, graph = _statements(store_url, 40, 300, tmp_path)
    assert large == small <= 20
    assert sum(1 for _, d in graph.nodes(data=True) if d["kind"] == "type") == 200
    assert graph.in_degree("consumer:company-archive") == 195  # all but the search team's


def test_graph_command_lists_where_each_edge_is_known_from_and_its_rules(
        tmp_path: Path) -> None:
    """`eventscope graph` (table) has the known_from and rules columns filled."""
    built = company(teams=4, consumers=30)
    url = write_store(f"sqlite:///{tmp_path / 'store.db'}", built)
    cat = write_catalog(tmp_path / "catalog", built)
    result = CliRunner().invoke(main, ["graph", "--db", url, "--catalog", str(cat)])
    assert result.exit_code == 0, result.output
    header = result.output.splitlines()[0].split()
    assert header[:5] == ["from", "to", "status", "known_from", "rules"]
    archived = [x.split() for x in result.output.splitlines() if " company-archive " in x]
    assert len(archived) == 20  # every type of the 4 teams; the archive never ran
    assert {(row[2], row[3], row[4]) for row in archived} == {
        ("subscribed_not_declared", "subscribed", "archive-all")}


def test_latest_order_of_a_type_is_its_newest_event_in_the_window(store_url: str) -> None:
    """The graph's lifecycle link: the newest event's order (else its id), None outside the
    window or for a type never seen."""
    from eventscope.findings import load
    from tests.findings_scenario import T0, bus_events
    store = open_store(store_url)
    store.write_batch(bus_events(), [])
    try:
        assert load.latest_order_of_type(store.engine, "OrderPaid") == "o-1"
        assert load.latest_order_of_type(store.engine, "ProductViewed") == "e4"  # no key
        assert load.latest_order_of_type(store.engine, "OrderPaid", T0 + 61_000) is None
        assert load.latest_order_of_type(store.engine, "Nope") is None
    finally:
        store.engine.dispose()
