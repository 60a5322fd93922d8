"""Bus rules: snapshots with history over moto's HTTP server, and the matcher vs moto's routing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from eventscope.collectors.rules_collector import latest_rules, rules_matching, snapshot_rules
from eventscope.patterns import matches
from eventscope.store import Store, rule_snapshots
from tests.conftest_aws import aws, clients, drain, make_bus_queue, moto_endpoint, put_events  # noqa: F401

CORPUS = json.loads((Path(__file__).parent / "data/collectors/pattern_corpus.json").read_text())
BUS = "shop-bus"


def envelope(entry: dict[str, Any]) -> dict[str, Any]:
    """The envelope EventBridge builds from a PutEvents entry, as a target receives it."""
    return {"version": "0", "id": "00000000-0000-0000-0000-000000000000",
            "detail-type": entry["DetailType"], "source": entry["Source"],
            "account": "123456789012", "time": "2025-06-02T10:15:00Z", "region": "us-east-1",
            "resources": [], "detail": entry["Detail"]}


def test_snapshot_records_rules_targets_dlq_and_retry_policy(aws: Any, store: Store) -> None:
    """A rule's pattern and state and its target's ARN, DLQ and retry policy are recorded."""
    events, sqs = clients(aws, "events", "sqs")
    url = make_bus_queue(events, sqs, BUS, "warranty", "warranty-orders",
                         {"source": ["com.shop.orders"], "detail-type": ["OrderCancelled"]})
    dlq = sqs.get_queue_attributes(QueueUrl=sqs.create_queue(QueueName="warranty-dlq")["QueueUrl"],
                                   AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    arn = sqs.get_queue_attributes(QueueUrl=url,
                                   AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_targets(Rule="warranty-orders", EventBusName=BUS, Targets=[{
        "Id": "q", "Arn": arn, "DeadLetterConfig": {"Arn": dlq},
        "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}}])
    events.put_rule(Name="paused", EventBusName=BUS, State="DISABLED",
                    EventPattern=json.dumps({"source": ["x"]}))
    summary = snapshot_rules(events, store, BUS)
    assert (summary.rules, summary.targets) == (2, 1)
    paused, warranty = latest_rules(store, BUS)
    assert paused["state"] == "DISABLED" and paused["targets"] == []
    target = warranty["targets"][0]
    assert (target["arn"], target["dlq_arn"], target["retry_max_attempts"],
            target["retry_max_age_seconds"]) == (arn, dlq, 3, 3600)
    assert json.loads(warranty["event_pattern"])["detail-type"] == ["OrderCancelled"]


def test_snapshots_keep_history(aws: Any, store: Store) -> None:
    """A later snapshot adds rows; the latest reflects a deleted rule, the earlier keeps it."""
    events, sqs = clients(aws, "events", "sqs")
    make_bus_queue(events, sqs, BUS, "a", "rule-a", {"source": ["a"]})
    make_bus_queue(events, sqs, BUS, "b", "rule-b", {"source": ["b"]})
    snapshot_rules(events, store, BUS, now_ms=1000)
    events.remove_targets(Rule="rule-b", EventBusName=BUS, Ids=["q"])
    events.delete_rule(Name="rule-b", EventBusName=BUS)
    snapshot_rules(events, store, BUS, now_ms=2000)
    assert [r["rule_name"] for r in latest_rules(store, BUS)] == ["rule-a"]
    history = store.select_rows(sa.select(rule_snapshots.c.rule_name, rule_snapshots.c.snapshot_ms))
    assert len(history) == 3


def test_rules_matching_names_the_rules_an_event_reaches(aws: Any, store: Store) -> None:
    """`rules_matching` on the stored snapshot answers which enabled rules receive an event."""
    events, sqs = clients(aws, "events", "sqs")
    make_bus_queue(events, sqs, BUS, "w", "warranty", {"detail-type": ["OrderCancelled"]})
    make_bus_queue(events, sqs, BUS, "all", "all-orders", {"source": [{"prefix": "com.shop.o"}]})
    snapshot_rules(events, store, BUS)
    cancelled = envelope({"Source": "com.shop.orders", "DetailType": "OrderCancelled",
                          "Detail": {}})
    placed = envelope({"Source": "com.shop.orders", "DetailType": "OrderPlaced", "Detail": {}})
    rules = latest_rules(store, BUS)
    assert rules_matching(rules, cancelled) == ["all-orders", "warranty"]
    assert rules_matching(rules, placed) == ["all-orders"]


def test_matcher_agrees_with_moto_routing(aws: Any) -> None:
    """For every corpus pattern, the events moto delivers to its queue are those we predict.

    Operators covered (all supported by moto 5.2's EventPattern): exact values incl. lists,
    null and the empty string, prefix, suffix (each also with equals-ignore-case),
    equals-ignore-case, anything-but (value, list, numbers, prefix, suffix,
    equals-ignore-case, wildcard inside), numeric (range and =), exists true/false,
    wildcard, $or, nested objects and arrays of scalars. Not covered, because moto does not
    implement them as AWS does: arrays of objects and cidr.
    """
    events, sqs = clients(aws, "events", "sqs")
    queues = {name: make_bus_queue(events, sqs, BUS, f"q-{name}", f"r-{name}", pattern)
              for name, pattern in CORPUS["patterns"].items()}
    entries = [dict(entry, Detail={**entry["Detail"], "caseId": case})
               for case, entry in CORPUS["events"].items()]
    put_events(events, BUS, entries)
    mismatches = {}
    for name, pattern in CORPUS["patterns"].items():
        delivered = {json.loads(m["Body"])["detail"]["caseId"] for m in drain(sqs, queues[name])}
        predicted = {e["Detail"]["caseId"] for e in entries if matches(pattern, envelope(e))}
        if delivered != predicted:
            mismatches[name] = {"moto": sorted(delivered), "matcher": sorted(predicted)}
    assert mismatches == {}
    assert all(any(matches(p, envelope(e)) for e in entries) for p in CORPUS["patterns"].values())


def test_collect_rules_command_on_a_missing_bus_is_one_line(aws: Any, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from eventscope.cli import main

    result = CliRunner().invoke(main, ["collect", "rules", "--bus", "nope", "--db",
                                       f"sqlite:///{tmp_path / 's.db'}", "--endpoint-url",
                                       aws.endpoint_url])
    assert result.exit_code == 2
    assert result.output.startswith("error: AWS refused the request: ResourceNotFoundException")


def test_subscription_rows_list_rule_type_and_target(aws: Any, store: Store) -> None:
    """One row per rule × listed detail-type × target; an open pattern gives None."""
    from eventscope.collectors.rules_collector import subscription_rows

    events, sqs = clients(aws, "events", "sqs")
    make_bus_queue(events, sqs, BUS, "warranty", "warranty-orders",
                   {"source": ["com.shop.orders"],
                    "detail-type": ["OrderPlaced", "OrderCancelled"]})
    make_bus_queue(events, sqs, BUS, "audit", "audit-all", {"source": [{"prefix": "com.shop"}]})
    snapshot_rules(events, store, BUS)
    rows = sorted(subscription_rows(store, BUS), key=lambda r: (r["rule"], str(r["detail_type"])))
    assert [(r["rule"], r["source"], r["detail_type"], r["consumer"]) for r in rows] == [
        ("audit-all", None, None, "audit"),
        ("warranty-orders", "com.shop.orders", "OrderCancelled", "warranty"),
        ("warranty-orders", "com.shop.orders", "OrderPlaced", "warranty")]


def test_archives_and_the_tap_are_not_consumers(aws: Any, store: Store) -> None:
    """An archive subscribes through a rule EventBridge manages (`ManagedBy`) and eventscope's
    tap through its own rule: both receive every event, and neither is one of the bus's
    consumers, so neither gives a subscription row nor a rule the graph matches; a
    consumer's rule beside them does."""
    from eventscope.collectors.rules_collector import subscription_rows
    from eventscope.collectors.tap import install_tap
    from eventscope.findings.read import bus_rules

    events, sqs = clients(aws, "events", "sqs")
    make_bus_queue(events, sqs, BUS, "warranty", "warranty-orders",
                   {"detail-type": ["OrderCancelled"]})
    bus_arn = events.describe_event_bus(Name=BUS)["Arn"]
    events.create_archive(ArchiveName="shop-archive", EventSourceArn=bus_arn)
    install_tap(sqs, events, BUS)
    snapshot_rules(events, store, BUS)
    assert {r["rule_name"] for r in latest_rules(store, BUS)} == {
        "Events-Archive-shop-archive", "eventscope-tap", "warranty-orders"}
    assert [(r["rule"], r["consumer"]) for r in subscription_rows(store, BUS)] == [
        ("warranty-orders", "warranty")]
    assert [(r["rule"], r["consumers"]) for r in bus_rules(store.engine) or []] == [
        ("warranty-orders", ["warranty"])]


def test_a_target_whose_arn_names_nothing_is_named_by_its_id() -> None:
    """An archive's managed rule targets `arn:aws:events:REGION:::`: were such a target
    shown, its name is the target's id, never an empty name."""
    from eventscope.findings.load import target_name
    assert target_name("arn:aws:events:eu-west-1:::", "Events-Archive-x") == "Events-Archive-x"
    assert target_name("arn:aws:sqs:eu-west-1:123456789012:orders", "q") == "orders"
    assert target_name("arn:aws:lambda:eu-west-1:123456789012:function:billing") == "billing"
