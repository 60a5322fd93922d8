"""The bus-rules collector: snapshots of `list_rules` + `list_targets_by_rule` with history.

Owns turning EventBridge's rule and target descriptions into `rule_snapshots` and
`rule_targets` rows (one snapshot time per run, so earlier snapshots stay as history). The
latest snapshot of a bus is read back by `eventscope.findings.load` (wrapped here for the
collector's callers). `rules_matching` answers "which rules receive this event?" with the
core matcher in `eventscope.patterns`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from eventscope.findings import load
from eventscope.patterns import matches
from eventscope.store import Store, rule_snapshots, rule_targets


@dataclass
class RulesSummary:
    """What one snapshot recorded."""

    bus: str
    snapshot_ms: int
    rules: int
    targets: int

    def as_dict(self) -> dict[str, Any]:
        return {"bus": self.bus, "snapshot_ms": self.snapshot_ms, "rules": self.rules,
                "targets": self.targets}


@dataclass
class RulesCounters:
    """What the rules loop of `collect all` has recorded."""

    snapshots: int = 0
    rules: int = 0
    targets: int = 0

    def add(self, summary: RulesSummary) -> None:
        self.snapshots += 1
        self.rules, self.targets = summary.rules, summary.targets

    def as_dict(self) -> dict[str, int]:
        return {"snapshots": self.snapshots, "rules": self.rules, "targets": self.targets}


def list_all_rules(events: Any, bus: str) -> list[dict[str, Any]]:
    """Every rule on the bus, across pages."""
    rules: list[dict[str, Any]] = []
    for page in events.get_paginator("list_rules").paginate(EventBusName=bus):
        rules.extend(page.get("Rules", []))
    return rules


def list_all_targets(events: Any, bus: str, rule: str) -> list[dict[str, Any]]:
    """Every target of one rule, across pages."""
    targets: list[dict[str, Any]] = []
    for page in events.get_paginator("list_targets_by_rule").paginate(Rule=rule,
                                                                      EventBusName=bus):
        targets.extend(page.get("Targets", []))
    return targets


def rule_row(bus: str, snapshot_ms: int, rule: Mapping[str, Any]) -> dict[str, Any]:
    """The `rule_snapshots` row of one rule as `list_rules` describes it. Pure."""
    return {"bus": bus, "rule_name": rule["Name"], "snapshot_ms": snapshot_ms,
            "arn": rule.get("Arn", ""), "state": rule.get("State", "UNKNOWN"),
            "event_pattern": rule.get("EventPattern"),
            "schedule_expression": rule.get("ScheduleExpression"),
            "description": rule.get("Description"), "managed_by": rule.get("ManagedBy")}


def target_row(bus: str, rule: str, snapshot_ms: int, target: Mapping[str, Any]) -> dict[str, Any]:
    """The `rule_targets` row of one target as `list_targets_by_rule` describes it. Pure."""
    retry = target.get("RetryPolicy") or {}
    return {"bus": bus, "rule_name": rule, "snapshot_ms": snapshot_ms,
            "target_id": target["Id"], "arn": target["Arn"],
            "dlq_arn": (target.get("DeadLetterConfig") or {}).get("Arn"),
            "retry_max_attempts": retry.get("MaximumRetryAttempts"),
            "retry_max_age_seconds": retry.get("MaximumEventAgeInSeconds"),
            "role_arn": target.get("RoleArn"), "input_mode": _input_mode(target)}


def _input_mode(target: Mapping[str, Any]) -> str:
    if "InputTransformer" in target:
        return "transformer"
    if "InputPath" in target:
        return "input_path"
    if "Input" in target:
        return "input"
    return "event"


def snapshot_rules(events: Any, store: Store, bus: str, now_ms: int | None = None) -> RulesSummary:
    """Record every rule of the bus and its targets as one snapshot, in one transaction."""
    snapshot_ms = int(time.time() * 1000) if now_ms is None else now_ms
    rules = list_all_rules(events, bus)
    rule_rows = [rule_row(bus, snapshot_ms, rule) for rule in rules]
    target_rows = [target_row(bus, rule["Name"], snapshot_ms, target)
                   for rule in rules for target in list_all_targets(events, bus, rule["Name"])]
    store.write_rows({rule_snapshots: rule_rows, rule_targets: target_rows})
    return RulesSummary(bus, snapshot_ms, len(rule_rows), len(target_rows))


def snapshot_buses(store: Store) -> list[str]:
    """The buses whose rules have been snapshotted (read by `eventscope.findings.load`)."""
    return load.rule_buses(store.engine)


def latest_rules(store: Store, bus: str) -> list[dict[str, Any]]:
    """The rules of the latest snapshot of a bus, each with a `targets` list."""
    return load.latest_rules(store.engine, bus)


def rules_matching(rules: list[dict[str, Any]], envelope: Mapping[str, Any]) -> list[str]:
    """Names of the enabled rules (from `latest_rules`) whose pattern matches the envelope."""
    return [rule["rule_name"] for rule in rules
            if rule["state"] == "ENABLED" and rule["event_pattern"]
            and matches(orjson.loads(rule["event_pattern"]), envelope)]


def subscription_rows(store: Store, bus: str) -> list[dict[str, Any]]:
    """Who is subscribed to what in the latest snapshot (`load.subscription_rows`)."""
    return load.subscription_rows(store.engine, bus)
