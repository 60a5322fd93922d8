"""The CLI and the dashboard give the same missing subscriptions, with the same evidence.

The article's warranty gap on a store with a bus-rules snapshot: the catalog says Warranty
listens to OrderCancelled, but the rule feeding warranty-handler routes OrderCreated only.
Before any order is cancelled only the rules show the gap; once one is, the data shows it
too. `eventscope subscriptions --json`, the dashboard's loader and what its pages render
must agree, on both engines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from eventscope.collectors.rules_collector import rule_row, target_row
from eventscope.dashboard import data
from eventscope.dashboard.views import Window
from eventscope.cli import main
from eventscope.records import BusEvent, Invocation
from eventscope.store import open_store
from eventscope.tables import rule_snapshots, rule_targets
from tests.dashboard_harness import page

CATALOG = str(Path(__file__).parent / "data" / "readmodel" / "catalog")
BUS, SOURCE, T0 = "shop-bus", "com.shop.orders", 1_714_550_400_000
ARN = "arn:aws:{service}:eu-west-1:123456789012:{kind}{name}"
RULES = {"warranty-orders": ("warranty-handler", ["OrderCreated"]),
         "billing-orders": ("billing-handler", ["OrderCreated", "OrderPaid", "OrderCancelled"])}


def _event(key: str, kind: str, at: int) -> BusEvent:
    return BusEvent(id=f"{key}-{kind}", source=SOURCE, detail_type=kind, time_ms=at,
                    detail=orjson.dumps({"orderId": key}).decode(), size_bytes=40, version="1",
                    correlation_key=key)


def _call(event: BusEvent, function: str) -> Invocation:
    return Invocation(f"{event.id}-{function}", function, f"/aws/lambda/{function}", "s",
                      event.time_ms + 250, "ok", event.id, duration_ms=20.0, complete=True)


AUDIT = {"audit-orders": ("audit-handler", ["OrderCreated"])}  # a target that never ran


def build_store(url: str, cancelled: bool, extra_rules: dict[str, Any] | None = None) -> str:
    """Two orders created, one paid (and, when `cancelled`, o-2 cancelled); Warranty handles
    the creations, Billing everything; the latest rules snapshot as in RULES (plus
    `extra_rules`)."""
    events = [_event("o-1", "OrderCreated", T0), _event("o-1", "OrderPaid", T0 + 60_000),
              _event("o-2", "OrderCreated", T0 + 120_000)]
    if cancelled:
        events.append(_event("o-2", "OrderCancelled", T0 + 180_000))
    calls = [_call(e, "billing-handler") for e in events]
    calls += [_call(e, "warranty-handler") for e in events if e.detail_type == "OrderCreated"]
    store = open_store(url)
    store.write_batch(events, calls)
    rules, targets = [], []
    for name, (function, kinds) in {**RULES, **(extra_rules or {})}.items():
        pattern = orjson.dumps({"source": [SOURCE], "detail-type": kinds}).decode()
        rules.append(rule_row(BUS, T0, {
            "Name": name, "State": "ENABLED", "EventPattern": pattern,
            "Arn": ARN.format(service="events", kind="rule/", name=f"{BUS}/{name}")}))
        targets.append(target_row(BUS, name, T0, {
            "Id": "t", "Arn": ARN.format(service="lambda", kind="function:", name=function)}))
    store.write_rows({rule_snapshots: rules, rule_targets: targets})
    store.engine.dispose()
    return url


def cli_missing(url: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(main, ["subscriptions", "--db", url, "--catalog", CATALOG,
                                       "--json"])
    assert result.exit_code == 0, result.output
    return orjson.loads(result.output)["missing"]


def shown_rows(missing: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What the subscriptions page's table must show for these findings."""
    return [(m["consumer"], m["detail_type"], m["lifecycle"], m["evidence"],
             ", ".join((m["static"] or {}).get("views", [])),
             (m["observed"] or {}).get("orders", 0),
             ", ".join((m["observed"] or {}).get("examples", []))) for m in missing]


@pytest.fixture
def dashboard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTSCOPE_CATALOG", CATALOG)


@pytest.mark.parametrize(("cancelled", "expected"), [
    (False, [("Warranty", "OrderCancelled", "order", "declarations", "bus_rules", 0, "")]),
    (True, [("Warranty", "OrderCancelled", "order", "declarations_and_data", "bus_rules", 1,
             "o-2")]),
], ids=["no-cancellation", "one-cancellation"])
def test_cli_and_dashboard_report_the_same_missing_subscriptions(
        store_url: str, cancelled: bool, expected: list[tuple[Any, ...]],
        monkeypatch: pytest.MonkeyPatch, dashboard_env: None) -> None:
    """Same rows, same evidence, from the rules snapshot (and the data once cancelled)."""
    url = build_store(store_url, cancelled)
    monkeypatch.setenv("EVENTSCOPE_DB", url)
    from_cli = cli_missing(url)
    assert shown_rows(from_cli) == expected
    loaded = data.missing_subscriptions(url, Window(None, None), CATALOG)
    assert orjson.loads(orjson.dumps(loaded)) == from_cli
    at = page("subscriptions")
    assert not at.exception
    table = at.dataframe[0].value
    assert [tuple(row) for row in table[["consumer", "detail_type", "lifecycle", "evidence",
                                         "declared_gap_in", "orders_affected",
                                         "example_orders"]].itertuples(index=False)] == expected
    overview = page("overview")
    assert {m.label: m.value for m in overview.metric}["Missing subscriptions"] == \
        str(len(from_cli))


def test_check_grades_the_gap_the_dashboard_shows(store_url: str) -> None:
    """`check` reads the same rules snapshot: its missing-subscription finding names the
    consumer and type the dashboard lists."""
    url = build_store(store_url, cancelled=False)
    result = CliRunner().invoke(main, ["check", "--db", url, "--catalog", CATALOG, "--json"])
    found = orjson.loads(result.output)["findings"]
    kinds = [f for f in found if f["kind"] == "missing_subscription"]
    shown = data.missing_subscriptions(url, Window(None, None), CATALOG)
    assert [(f["subject"]["consumer"], f["subject"]["detail_type"]) for f in kinds] == \
        [(m["consumer"], m["detail_type"]) for m in shown] == [("Warranty", "OrderCancelled")]


def test_cli_and_dashboard_draw_the_same_graph_with_the_rules(store_url: str) -> None:
    """`graph --json` and the dashboard's graph are the same document, with the rules'
    `subscribed` edges (the audit target never ran: subscribed, not declared)."""
    url = build_store(store_url, cancelled=True, extra_rules=AUDIT)
    result = CliRunner().invoke(main, ["graph", "--db", url, "--catalog", CATALOG, "--json"])
    from_cli = orjson.loads(result.output)
    shown = orjson.loads(orjson.dumps(data.graph(url, Window(None, None), CATALOG)))
    assert shown == from_cli
    audit = [e for e in from_cli["edges"] if e["target"] == "consumer:audit-handler"]
    assert [(e["source"], e["status"], e["rules"]) for e in audit] == [
        ("type:OrderCreated", "subscribed_not_declared", ["audit-orders"])]


def test_cli_and_dashboard_show_the_same_order_lifecycle_with_the_rules(
        store_url: str, monkeypatch: pytest.MonkeyPatch, dashboard_env: None) -> None:
    """A consumer the rules route OrderCreated to but that never ran is `never_handled` in
    `lifecycle --json` and on the Order lifecycle page alike."""
    url = build_store(store_url, cancelled=False, extra_rules=AUDIT)
    monkeypatch.setenv("EVENTSCOPE_DB", url)
    result = CliRunner().invoke(main, ["lifecycle", "o-1", "--db", url, "--catalog", CATALOG,
                                       "--json"])
    steps = orjson.loads(result.output)["lifecycle"]["events"]
    from_cli = {(s["id"], c["consumer"]): c["outcome"] for s in steps for c in s["consumers"]}
    assert from_cli[("o-1-OrderCreated", "audit-handler")] == "never_handled"
    table = page("lifecycle", order="o-1").dataframe[0].value.set_index("event_id")
    shown = {(event, consumer): outcome for event, row in table.iterrows()
             for consumer, outcome in row.items()
             if consumer not in ("time", "source", "detail_type", "version")
             and isinstance(outcome, str)}
    assert shown == from_cli
