"""Every order a missing subscription affected, not five: in the finding, the CLI's JSON and
its per-order listing, and the text that says how many there are and how to get them all."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from eventscope.catalog.loader import load_catalog
from eventscope.catalog.model import Catalog
from eventscope.cli import main
from eventscope.findings import read
from eventscope.findings.columns import owner_name
from eventscope.findings.lifecycle import cancellation_types
from eventscope.findings.subscriptions import EXAMPLES
from eventscope.records import BusEvent, Invocation
from eventscope.simulator import DEMO_CATALOG
from eventscope.store import Store, open_store
from tests.demo_shaped import DemoStore, build
from tests.store_shapes import (CANCELLATIONS, EXAMPLE_CATALOG, FUNCTIONS, T0, StoreShape,
                                no_cancellation, store_shapes, write)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoStore:
    return build(tmp_path_factory.mktemp("demo"))


def _warranty(missing: list[dict], detail_type: str = "OrderCancelled") -> dict:
    return next(m for m in missing
                if (m["consumer"], m["detail_type"]) == ("warranty-handler", detail_type))


def _cli(demo: DemoStore, *args: str) -> str:
    result = CliRunner().invoke(main, ["subscriptions", "--db", demo.url, "--catalog",
                                       str(DEMO_CATALOG), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_finding_lists_every_cancelled_order_warranty_handled_before(
        demo: DemoStore) -> None:
    """warranty-handler handles every OrderCreated and no cancellation: every cancelled
    order of the simulation is affected, each once, latest cancellation first."""
    missing = read.missing_subscriptions(open_store(demo.url).engine, demo.catalog)
    for kind in ("OrderCancelled", "OrderReturned"):
        observed = _warranty(missing, kind)["observed"]
        expected = demo.orders_with(kind)
        assert len(expected) > EXAMPLES  # more than the examples: "all" is not "the first"
        assert observed["orders"] == len(expected)
        assert sorted(a["order"] for a in observed["affected"]) == expected
        times = [a["time_ms"] for a in observed["affected"]]
        assert times == sorted(times, reverse=True)
        assert observed["examples"] == expected[:EXAMPLES]


def test_affected_orders_flattens_every_finding(demo: DemoStore) -> None:
    missing = read.missing_subscriptions(open_store(demo.url).engine, demo.catalog)
    rows = read.affected_orders(missing)
    assert len(rows) == sum((m["observed"] or {}).get("orders", 0) for m in missing)
    assert {(r["consumer"], r["detail_type"]) for r in rows} == {
        ("warranty-handler", "OrderCancelled"), ("warranty-handler", "OrderReturned")}


def test_cli_json_lists_every_affected_order(demo: DemoStore) -> None:
    found = orjson.loads(_cli(demo, "--json"))["missing"]
    affected = _warranty(found)["observed"]["affected"]
    assert sorted(a["order"] for a in affected) == demo.orders_with("OrderCancelled")


def test_cli_text_gives_the_count_the_first_ones_and_how_to_get_all(demo: DemoStore) -> None:
    out = _cli(demo)
    cancelled = demo.orders_with("OrderCancelled")
    assert ",".join(cancelled[:EXAMPLES]) in out
    assert cancelled[EXAMPLES] not in out
    assert (f"warranty-handler / OrderCancelled: {len(cancelled):,} affected orders, the "
            "first shown; every one: eventscope subscriptions --orders (or --json)") in out


def test_cli_orders_lists_every_affected_order_as_csv(demo: DemoStore) -> None:
    rows = list(csv.DictReader(io.StringIO(_cli(demo, "--orders", "--csv"))))
    cancelled = [r["order"] for r in rows if r["detail_type"] == "OrderCancelled"]
    assert sorted(cancelled) == demo.orders_with("OrderCancelled")
    assert all(r["consumer"] == "warranty-handler" and r["cancelled"] for r in rows)


def test_cli_orders_table_has_a_row_per_order(demo: DemoStore) -> None:
    out = _cli(demo, "--orders")
    for order in demo.orders_with("OrderReturned"):
        assert order in out


def test_check_keeps_the_count_and_examples_not_every_order(demo: DemoStore) -> None:
    """`check`'s finding (what alerts send, an SNS message is at most 256 KB) carries the
    count and the first orders; the subscriptions command carries them all."""
    result = CliRunner().invoke(main, ["check", "--db", demo.url, "--catalog",
                                       str(DEMO_CATALOG), "--json"])
    assert result.exit_code == 1, result.output  # the demo's planted problems are found
    found = [f for f in orjson.loads(result.output)["findings"]
             if f["kind"] == "missing_subscription"
             and f["subject"]["detail_type"] == "OrderCancelled"]
    observed = found[0]["evidence"]["observed"]
    assert observed["orders"] == len(demo.orders_with("OrderCancelled"))
    assert len(observed["examples"]) == EXAMPLES and "affected" not in observed


# --- any store shape --------------------------------------------------------------------------

@pytest.fixture
def shapes_store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'shapes.db'}")
    yield opened
    opened.engine.dispose()


def _expected_affected(shape: StoreShape, catalog: Catalog | None) -> set[tuple[str, str, str]]:
    """(consumer, cancellation type, order): a consumer handled an earlier event of a
    cancelled order and never that cancellation (the rule, written out plainly)."""
    cancels = cancellation_types(catalog)
    by_id = {e.id: e for e in shape.events}
    handled = {(owner_name(i.consumer, catalog), i.event_id) for i in shape.invocations
               if i.event_id in by_id}
    return {(consumer, c.detail_type, c.correlation_key)
            for c in shape.events if c.detail_type in cancels and c.correlation_key
            for consumer, event_id in handled
            if by_id[event_id].correlation_key == c.correlation_key
            and by_id[event_id].time_ms < c.time_ms and (consumer, c.id) not in handled}


@st.composite
def cancelled_orders(draw: st.DrawFn) -> StoreShape:
    """Orders created, some cancelled or returned (before or after other events), handled
    by drawn functions of drawn events: shapes where consumers do miss cancellations."""
    kinds = st.sampled_from(["OrderCreated", "OrderPaid", *CANCELLATIONS])
    events = [BusEvent(id=f"e{n}", source="com.shop.orders", detail_type=draw(kinds),
                       time_ms=T0 - draw(st.integers(0, 4)) * 60_000,
                       detail='{"orderId":"x"}', size_bytes=100, version="1",
                       correlation_key=draw(st.sampled_from(["ord-1", "ord-2", None])))
              for n in range(draw(st.integers(1, 10)))]
    calls = [Invocation(request_id=f"r{n}", consumer=function,
                        log_group=f"/aws/lambda/{function}", log_stream="s",
                        start_ms=T0 + n, outcome=draw(st.sampled_from(["ok", "error"])),
                        event_id=draw(st.sampled_from([e.id for e in events] + [None])),
                        duration_ms=5.0, complete=True)
             for n, function in enumerate(draw(st.lists(st.sampled_from(FUNCTIONS[:4]),
                                                        min_size=2, max_size=14)))]
    return StoreShape(events, calls, EXAMPLE_CATALOG if draw(st.booleans()) else None)


def _empty_key_orders() -> StoreShape:
    """An event and a later cancellation whose correlation key is "" (no order), the first
    handled by a function that never handled the second (hypothesis found the SQL and pandas
    paths counted "" as an order)."""
    def event(n: int, kind: str) -> BusEvent:
        return BusEvent(id=f"e{n}", source="com.shop.orders", detail_type=kind,
                        time_ms=T0 + n * 60_000, detail="{}", size_bytes=100,
                        correlation_key="")
    return StoreShape(events=[event(0, "OrderCreated"), event(1, "OrderCancelled")],
                      invocations=[Invocation("r1", "warranty-handler",
                                              "/aws/lambda/warranty-handler", "s", T0, "ok",
                                              event_id="e0")])


@settings(max_examples=40, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(shape=store_shapes(max_events=10, max_invocations=12, rules=False) | cancelled_orders())
@example(shape=no_cancellation())
@example(shape=StoreShape())
@example(shape=_empty_key_orders())
def test_every_affected_order_and_only_those_on_any_store(shapes_store: Store,
                                                          shape: StoreShape) -> None:
    """Any store: never raises, and the affected orders listed are exactly the cancelled
    orders some consumer handled earlier and missed, each once, with its cancellation."""
    write(shapes_store, shape)
    catalog = load_catalog(shape.catalog) if shape.catalog else None
    missing = read.missing_subscriptions(shapes_store.engine, catalog)
    rows = read.affected_orders(missing)
    assert {(r["consumer"], r["detail_type"], r["order"]) for r in rows} == \
        _expected_affected(shape, catalog)
    assert len(rows) == len({(r["consumer"], r["detail_type"], r["order"]) for r in rows})
    events = {e.id: e for e in shape.events}
    assert all(events[r["event_id"]].correlation_key == r["order"]
               and events[r["event_id"]].detail_type == r["detail_type"]
               and events[r["event_id"]].time_ms == r["time_ms"] for r in rows)
