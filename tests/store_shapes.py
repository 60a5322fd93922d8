"""Hypothesis strategies for random store contents, and writing them into a real store.

A `StoreShape` is what a store may hold on a day its authors did not plan for: any mix of
catalogued and unknown event types (AWS service types with spaces, `aws.*` and
`aws.partner/...` sources, odd names), versions present, absent or odd, events with and
without an order key or the fields the catalog expects, invocations of known and unknown
functions with every outcome, retries reusing a request id, unattributed invocations (no event
id, or an id not in the store), events without logs and logs without events, times inside and
outside the window, optionally the example catalog, a bus-rules snapshot and stored contract
results. The strategy shrinks towards an empty store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from eventscope import store as store_module
from eventscope.findings import load
from eventscope.records import BusEvent, Invocation
from eventscope.rollups import minute_of
from eventscope.store import Store, meta, metadata, rule_snapshots, rule_targets
from eventscope.tables import MINUTE_MS

EXAMPLE_CATALOG = Path(__file__).resolve().parent.parent / "eventscope" / "demo_catalog"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z: the newest event time a shape aims at
HOUR = 3_600_000
WINDOW = (T0 - HOUR, T0)  # the window the findings are asked about: [since, until)

KINDS = [  # (source, detail-type): catalogued ones, AWS service and partner ones, odd ones
    ("com.shop.orders", "OrderCreated"), ("com.shop.payments", "OrderPaid"),
    ("com.shop.logistics", "OrderShipped"), ("com.shop.orders", "OrderCancelled"),
    ("com.shop.orders", "OrderReturned"), ("com.shop.orders", "OrderPlaced"),  # deprecated
    ("com.shop.payments", "PaymentCaptured"),  # deprecated
    ("com.shop.payments", "OrderCreated"),  # a known type from the wrong source
    ("aws.ec2", "EC2 Instance State-change Notification"), ("aws.s3", "Object Created"),
    ("aws.partner/saas.example.com/acme/42", "Ticket Created"),
    ("aws.events", "Scheduled Event"), ("web", "ProductViewed"),
    ("shop", "Ördér «cancelled» <b>x</b>"), ("shop", "-=cmd|' /C calc'!A0"),
]
CANCELLATIONS = ("OrderCancelled", "OrderReturned")
VERSIONS = [None, "1", "2", "", "v3", "1.0.0", "٣", "null"]
ORDERS = [None, "ord-1", "ord-2", "ord-3", "o 4", ""]
FUNCTIONS = ["warranty-handler", "invoice-generator", "fraud-check", "billing-fn",
             "Shared Fn", "fn-ü", "crm-notifier"]
REQUEST_IDS = ["r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"]
ERRORS = [None, ("ValueError", "bad sku A-1"), ("Sandbox.Timedout", "Task timed out after 3.00 s"),
          ("KeyError", "'orderId' ann@example.com"), (None, "no type"), ("Error", None)]
PII = [None, "ann@example.com", "4111111111111111", "+44 20 7946 0958",
       "AKIAIOSFODNN7EXAMPLE", "1767225600000"]
NAMES = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
                min_size=1, max_size=12)  # PostgreSQL text holds no NUL
VALUES = st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53) | NAMES,
                      lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(NAMES, inner, max_size=3), max_leaves=6)
OFFSETS = st.integers(min_value=-3 * HOUR, max_value=5 * 60_000)  # in and out of WINDOW


@dataclass(frozen=True)
class Rule:
    """One rule of a bus-rules snapshot: the types its pattern lists (none: any) and targets."""

    name: str
    detail_types: tuple[str, ...]
    sources: tuple[str, ...]
    targets: tuple[str, ...]  # function names
    enabled: bool = True
    scheduled: bool = False


@dataclass
class StoreShape:
    """Random store contents: what a test writes and what it may expect back."""

    events: list[BusEvent] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    catalog: Path | None = None
    rules: list[Rule] | None = None
    contract_results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cancellations(self) -> list[BusEvent]:
        return [e for e in self.events if e.detail_type in CANCELLATIONS]

    def events_in_minutes(self, since_ms: int | None, until_ms: int | None) -> list[BusEvent]:
        """Events in [since, until) widened to whole minutes (the rollups' resolution)."""
        return [e for e in self.events if _in_minutes(e.time_ms, since_ms, until_ms)]

    def invocations_in_minutes(self, since_ms: int | None,
                               until_ms: int | None) -> list[Invocation]:
        return [i for i in self.invocations if _in_minutes(i.start_ms, since_ms, until_ms)]


def no_cancellation() -> StoreShape:
    """The shape that crashed `check`, `subscriptions` and two pages: an order created and
    handled, never cancelled (pinned as an explicit example of the property tests)."""
    created = BusEvent(id="e0", source="com.shop.orders", detail_type="OrderCreated",
                       time_ms=T0 - 60_000, detail='{"orderId":"ord-1"}', size_bytes=300,
                       version="1", correlation_key="ord-1")
    handled = Invocation(request_id="r1", consumer="warranty-handler",
                         log_group="/aws/lambda/warranty-handler", log_stream="s",
                         start_ms=T0 - 59_000, outcome="ok", event_id="e0", duration_ms=12.0,
                         complete=True)
    return StoreShape([created], [handled])


def unattributed_only() -> StoreShape:
    """Logs and no events: one invocation that names no event (crashed the graph page)."""
    call = Invocation(request_id="r1", consumer="warranty-handler",
                      log_group="/aws/lambda/warranty-handler", log_stream="s", start_ms=T0,
                      outcome="ok")
    return StoreShape([], [call])


def _in_minutes(ms: int, since_ms: int | None, until_ms: int | None) -> bool:
    if since_ms is not None and ms < minute_of(since_ms):
        return False
    return until_ms is None or ms < minute_of(until_ms + MINUTE_MS - 1)


@st.composite
def bus_events(draw: st.DrawFn, max_size: int = 10) -> list[BusEvent]:
    """Events with unique ids; kinds, versions, keys, payloads and times drawn at random."""
    count = draw(st.integers(min_value=0, max_value=max_size))
    kinds = draw(st.lists(st.sampled_from(KINDS) | st.tuples(NAMES, NAMES), min_size=1,
                          max_size=4, unique=True))
    found = []
    for index in range(count):
        source, detail_type = draw(st.sampled_from(kinds))
        version = draw(st.sampled_from(VERSIONS))
        key = draw(st.sampled_from(ORDERS))
        detail: dict[str, Any] = {}
        if key is not None and draw(st.booleans()):
            detail["orderId"] = key
        if version is not None and draw(st.booleans()):
            detail["version"] = version
        if draw(st.booleans()):
            detail[draw(NAMES)] = draw(VALUES)
        pii = draw(st.sampled_from(PII))
        if pii is not None:
            detail[draw(st.sampled_from(["email", "card", "note", "customer"]))] = (
                {"contact": [pii]} if draw(st.booleans()) else pii)
        text = orjson.dumps(detail).decode()
        found.append(BusEvent(
            id=f"e{index}" if draw(st.booleans()) else f"id-{index}-{detail_type[:6]}",
            source=source, detail_type=detail_type, time_ms=T0 + draw(OFFSETS), detail=text,
            size_bytes=draw(st.sampled_from([len(text) + 250, 300_000])), version=version,
            correlation_key=key, account=draw(st.sampled_from([None, "123456789012"])),
            region=draw(st.sampled_from([None, "eu-west-1"]))))
    return found


@st.composite
def invocations(draw: st.DrawFn, event_ids: list[str], max_size: int = 12) -> list[Invocation]:
    """Invocations with unique (request id, start); some retry, some name no or no known event."""
    count = draw(st.integers(min_value=0, max_value=max_size))
    targets = [None, "e-not-stored", *event_ids]
    seen: set[tuple[str, int]] = set()
    found = []
    for _ in range(count):
        request_id = draw(st.sampled_from(REQUEST_IDS))
        start = T0 + draw(OFFSETS)
        if (request_id, start) in seen:
            continue
        seen.add((request_id, start))
        function = draw(st.sampled_from(FUNCTIONS))
        outcome = draw(st.sampled_from(["ok", "error", "timeout"]))
        error = draw(st.sampled_from(ERRORS)) if outcome != "ok" else None
        duration = draw(st.one_of(st.none(), st.floats(min_value=0, max_value=900_000)))
        found.append(Invocation(
            request_id=request_id, consumer=function, log_group=f"/aws/lambda/{function}",
            log_stream="2026/01/01/[$LATEST]0123abcd", start_ms=start, outcome=outcome,
            event_id=draw(st.sampled_from(targets)),
            end_ms=None if duration is None else start + int(duration), duration_ms=duration,
            error_type=error[0] if error else None, error_message=error[1] if error else None,
            complete=draw(st.booleans())))
    return found


RULE_TYPES = sorted({kind for _, kind in KINDS})


@st.composite
def bus_rules(draw: st.DrawFn) -> list[Rule]:
    """A bus-rules snapshot: rules listing types (or none), to functions, some disabled."""
    rules = []
    for index in range(draw(st.integers(min_value=0, max_value=4))):
        rules.append(Rule(
            name=f"rule-{index}",
            detail_types=tuple(draw(st.lists(st.sampled_from(RULE_TYPES), max_size=3,
                                             unique=True))),
            sources=tuple(draw(st.lists(st.sampled_from(sorted({s for s, _ in KINDS})),
                                        max_size=2, unique=True))),
            targets=tuple(draw(st.lists(st.sampled_from(FUNCTIONS), min_size=1, max_size=2,
                                        unique=True))),
            enabled=index == 0 or draw(st.booleans()),
            scheduled=draw(st.booleans()) and index > 0))
    return rules


VIOLATIONS = st.sampled_from(["[]", '[{"path": "$.orderId", "message": "required"}]',
                              '["not a dict"]', '[{"no": "message"}]', ""])
CONTRACT_RESULTS = st.lists(st.fixed_dictionaries({
    "consumer": st.sampled_from(["warranty-handler", "fraud-check", "Unknown One"]),
    "detail_type": st.sampled_from([k for _, k in KINDS]),
    "version": st.sampled_from(["", "1", "2"]),
    "check_kind": st.sampled_from(["schema", "examples", "live", "junit"]),
    "passed": st.booleans(), "violations": VIOLATIONS,
    "summary": st.sampled_from(["{}", '{"checked": 3, "failed": 1}', '{"checked": 0}', ""]),
    "checked_ms": st.integers(T0 - HOUR, T0), "catalog_revision": st.just("r1"),
    "origin": st.sampled_from(["eventscope", "junit:report.xml"])}), max_size=3)


@st.composite
def store_shapes(draw: st.DrawFn, max_events: int = 10, max_invocations: int = 12,
                 catalog: bool | None = None, rules: bool | None = None) -> StoreShape:
    """Random store contents; `catalog`/`rules` True or False force them, None draws."""
    events = draw(bus_events(max_events))
    calls = draw(invocations([e.id for e in events], max_invocations))
    with_catalog = draw(st.booleans()) if catalog is None else catalog
    with_rules = draw(st.booleans()) if rules is None else rules
    return StoreShape(events, calls, EXAMPLE_CATALOG if with_catalog else None,
                      draw(bus_rules()) if with_rules else None, draw(CONTRACT_RESULTS))


def rule_rows(rules: list[Rule], bus: str = "shop",
              snapshot_ms: int = T0) -> dict[sa.Table, list[dict[str, Any]]]:
    """The `rule_snapshots` and `rule_targets` rows of a snapshot (the collector's shape)."""
    snapshots, targets = [], []
    for rule in rules:
        pattern: dict[str, Any] = {}
        if rule.sources:
            pattern["source"] = list(rule.sources)
        if rule.detail_types:
            pattern["detail-type"] = list(rule.detail_types)
        snapshots.append({
            "bus": bus, "rule_name": rule.name, "snapshot_ms": snapshot_ms,
            "arn": f"arn:aws:events:eu-west-1:123456789012:rule/{bus}/{rule.name}",
            "state": "ENABLED" if rule.enabled else "DISABLED",
            "event_pattern": None if rule.scheduled else orjson.dumps(pattern).decode(),
            "schedule_expression": "rate(5 minutes)" if rule.scheduled else None,
            "description": None, "managed_by": None})
        targets += [{"bus": bus, "rule_name": rule.name, "snapshot_ms": snapshot_ms,
                     "target_id": str(i),
                     "arn": f"arn:aws:lambda:eu-west-1:123456789012:function:{function}",
                     "dlq_arn": None, "retry_max_attempts": None, "retry_max_age_seconds": None,
                     "role_arn": None, "input_mode": "event"}
                    for i, function in enumerate(rule.targets)]
    return {rule_snapshots: snapshots, rule_targets: targets}


class EngineTracker:
    """Every engine `open_store` makes while installed, to dispose of them: commands and
    pages run in-process open their own, and undisposed ones keep PostgreSQL connections."""

    def __init__(self, monkeypatch: Any) -> None:
        self.engines: list[Engine] = []
        made = store_module.create_engine

        def tracked(url: str | None = None) -> Engine:
            engine = made(url)
            self.engines.append(engine)
            return engine

        monkeypatch.setattr(store_module, "create_engine", tracked)

    def dispose(self) -> None:
        load._store_of.cache_clear()
        for engine in self.engines:
            engine.dispose()
        self.engines.clear()


def clear(store: Store) -> None:
    """Delete every row but the store's own settings (`meta`), so one schema serves many
    examples (creating a PostgreSQL schema per example would dominate the run)."""
    with store.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table is not meta:
                conn.execute(table.delete())


def write(store: Store, shape: StoreShape) -> None:
    """Write a shape with the store's own write functions (empty after `clear`)."""
    clear(store)
    store.write_batch(shape.events, shape.invocations)
    if shape.rules is not None:
        store.write_rows(rule_rows(shape.rules))
    store.write_contract_results(shape.contract_results)
