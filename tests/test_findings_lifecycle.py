"""The order lifecycle: outcomes per event and consumer, gaps, and lookup by key, id or prefix."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from eventscope.catalog.loader import CatalogError, load_catalog
from eventscope.catalog.model import Lifecycle
from eventscope.cli import main
from eventscope.findings import load, read
from eventscope.findings.frames import resolve_consumers
from eventscope.findings.lifecycle import (expected_steps, inferred_gaps, missed_handling,
                                           order_lifecycle, outcome_of)
from eventscope.simulator import DEMO_CATALOG
from eventscope.records import BusEvent
from eventscope.store import Store, open_store
from tests.demo_shaped import DemoStore, build
from tests.findings_scenario import T0, attempts_frame, catalog, events_frame


def _life(with_catalog: bool = True) -> dict:
    cat = catalog() if with_catalog else None
    events = events_frame()
    events = events[events["correlation_key"] == "o-1"]
    return order_lifecycle("o-1", events, resolve_consumers(attempts_frame(), cat), cat)


def _outcomes(life: dict) -> list[tuple[str, list[tuple[str, str, int]]]]:
    return [(s["detail_type"], [(c["consumer"], c["outcome"], len(c["attempts"]))
                                for c in s["consumers"]]) for s in life["events"]]


def test_each_event_in_time_order_with_every_consumers_outcome() -> None:
    """ok, retried-then-ok, failed (two timeouts) and never-handled-though-subscribed."""
    assert _outcomes(_life()) == [
        ("OrderPlaced", [("Billing", "ok", 1), ("Warranty", "retried_then_ok", 2)]),
        ("OrderPaid", [("Billing", "failed", 2), ("Warranty", "ok", 1)]),
        ("OrderCancelled", [("Billing", "ok", 1), ("Loyalty", "never_handled", 0)]),
    ]


def test_skewed_log_clock_does_not_move_an_invocation_to_another_event() -> None:
    """Warranty's OrderPaid invocation started 200 ms before the event time; it stays on e2."""
    paid = _life()["events"][1]
    warranty = next(c for c in paid["consumers"] if c["consumer"] == "Warranty")
    assert warranty["attempts"][0]["start_ms"] == T0 + 59_800 < paid["time_ms"]


def test_consumer_that_missed_the_cancellation_is_a_gap() -> None:
    """Warranty handled OrderPlaced and OrderPaid but never OrderCancelled."""
    assert _life()["gaps"] == [{"kind": "missed_cancellation", "consumer": "Warranty",
                                "detail_type": "OrderCancelled", "event_id": "e3"}]


def test_without_catalog_consumers_are_functions_and_default_cancellations_apply() -> None:
    """No catalog: no never-handled rows, function names, OrderCancelled still a cancellation."""
    life = _life(with_catalog=False)
    assert _outcomes(life)[2] == ("OrderCancelled", [("billing-fn", "ok", 1)])
    assert [g["consumer"] for g in life["gaps"]] == ["warranty-fn"]


def test_missing_lifecycle_step_is_a_gap() -> None:
    """An order shipped without being paid lacks the OrderPaid step."""
    events = events_frame()
    events = events[events["id"] == "e1"].copy()
    shipped = events.assign(id="e9", detail_type="OrderShipped", time_ms=T0 + 5)
    import pandas as pd
    life = order_lifecycle("o-1", pd.concat([events, shipped]), attempts_frame().iloc[:0],
                           catalog())
    assert life["gaps"] == [{"kind": "missing_step", "lifecycle": "order",
                             "detail_type": "OrderPaid"}]


def test_outcome_of_attempt_sequences() -> None:
    """The outcome rules on their own."""
    assert [outcome_of(x) for x in ([], ["ok"], ["error", "ok"], ["timeout", "error"],
                                    ["ok", "ok"])] == [
        "never_handled", "ok", "retried_then_ok", "failed", "ok"]


# --- gaps from the catalog's declared steps, inferred ones, missed handling --------------------

def _declared(requires: dict[str, tuple[str, ...]]) -> Lifecycle:
    return Lifecycle("order", "detail.orderId", starts=("OrderCreated",),
                     advances=("OrderPaid", "ShipmentCreated", "OrderShipped", "InvoiceIssued"),
                     ends=("OrderDelivered",), cancellations=("OrderCancelled",),
                     requires=requires)


REQUIRES = {"OrderPaid": ("OrderCreated",), "InvoiceIssued": ("OrderPaid",),
            "OrderShipped": ("OrderPaid",), "OrderDelivered": ("OrderShipped",)}


def test_declared_requires_expect_only_what_a_reached_step_needs() -> None:
    """Delivered without shipping lacks OrderShipped (and through it nothing else it has);
    a step no step requires (ShipmentCreated) is never expected; a paid-then-cancelled
    order is not expected to ship."""
    lifecycle = _declared(REQUIRES)
    assert expected_steps(lifecycle, {"OrderCreated", "OrderPaid", "OrderDelivered"}) == [
        "OrderCreated", "OrderPaid", "OrderShipped"]
    assert "ShipmentCreated" not in expected_steps(
        lifecycle, {"OrderCreated", "OrderPaid", "OrderShipped", "OrderDelivered"})
    cancelled = {"OrderCreated", "OrderPaid", "InvoiceIssued", "OrderCancelled"}
    assert set(expected_steps(lifecycle, cancelled)) <= cancelled


def test_without_requires_the_advances_are_one_path() -> None:
    """The format before `requires`: advances up to the furthest one reached are expected."""
    assert expected_steps(_declared({}), {"OrderCreated", "OrderShipped"}) == [
        "OrderPaid", "ShipmentCreated", "OrderShipped"]


def test_a_missing_start_is_a_gap_when_none_was_seen() -> None:
    assert expected_steps(_declared(REQUIRES), {"OrderPaid"}) == ["OrderCreated"]


def test_inferred_steps_come_from_orders_with_the_same_last_step_and_say_so() -> None:
    """Nine of ten delivered orders were paid: paid is expected (90 %); invoiced in eight is
    not; orders ending elsewhere do not count."""
    similar = {f"o{i}": ["Created", "Paid", "Invoiced", "Delivered"] for i in range(8)}
    similar |= {"o8": ["Created", "Paid", "Delivered"], "o9": ["Created", "Delivered"],
                "x1": ["Created", "Cancelled"], "x2": ["Created", "Cancelled"]}
    gaps, basis = inferred_gaps(["Created", "Delivered"], similar)
    assert gaps == [{"kind": "missing_step", "lifecycle": "inferred", "detail_type": "Paid",
                     "basis": "inferred from 10 similar orders"}]
    assert basis.startswith("inferred from 10 similar orders (last step Delivered)")


def test_too_few_similar_orders_infer_nothing_and_say_why() -> None:
    gaps, basis = inferred_gaps(["Created", "Delivered"], {"o1": ["Created", "Delivered"]})
    assert gaps == [] and "too few to infer" in basis


def test_missed_handling_lists_never_handled_and_missed_cancellations() -> None:
    """Loyalty is subscribed to OrderCancelled and never handled it; Warranty handled the
    order's earlier events, never its cancellation: both at the cancellation's time."""
    life = _life()
    assert [(m["consumer"], m["detail_type"], m["event_id"], m["time_ms"])
            for m in missed_handling(life)] == [
        ("Loyalty", "OrderCancelled", "e3", T0 + 120_000),
        ("Warranty", "OrderCancelled", "e3", T0 + 120_000)]


# --- the demo-shaped company (tests/demo_shaped.py) -------------------------------------------

@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoStore:
    return build(tmp_path_factory.mktemp("demo"))


def _demo_life(demo: DemoStore, order: str, with_catalog: bool = True) -> dict:
    engine = open_store(demo.url).engine
    keys = read.find_orders(engine, order)
    assert keys == [order]
    return read.lifecycle(engine, order, demo.catalog if with_catalog else None)


def test_shipped_demo_orders_have_no_gaps_for_a_step_never_emitted(demo: DemoStore) -> None:
    """ShipmentCreated is catalogued but the company never emits it: no shipped order lacks
    it, nor any other step (the demo plants no skipped step)."""
    shipped = demo.orders_with("OrderShipped", without=("OrderReturned",))
    assert len(shipped) > 100
    for order in shipped[:40]:
        life = _demo_life(demo, order)
        assert [g for g in life["gaps"] if g["kind"] == "missing_step"] == [], order
        assert "declared lifecycle steps" in life["gaps_basis"]


def test_paid_then_cancelled_demo_orders_do_not_miss_shipping(demo: DemoStore) -> None:
    """A cancellation ends the path: OrderShipped, ShipmentCreated are not gaps."""
    cancelled = demo.orders_with("OrderPaid", "OrderCancelled")
    assert len(cancelled) >= 5
    for order in cancelled:
        assert [g for g in _demo_life(demo, order)["gaps"]
                if g["kind"] == "missing_step"] == [], order


def test_warranty_missing_the_cancellation_is_a_gap_and_a_missed_handling(
        demo: DemoStore) -> None:
    """Every cancelled demo order: warranty-handler handled OrderCreated, never the
    cancellation: a missed_cancellation gap and a missed handling at the cancellation."""
    for order in demo.orders_with("OrderCancelled")[:10]:
        life = _demo_life(demo, order)
        cancel = next(s for s in life["events"] if s["detail_type"] == "OrderCancelled")
        assert {"kind": "missed_cancellation", "consumer": "warranty-handler",
                "detail_type": "OrderCancelled", "event_id": cancel["id"]} in life["gaps"]
        assert any(m["consumer"] == "warranty-handler" and m["event_id"] == cancel["id"]
                   and m["time_ms"] == cancel["time_ms"] for m in missed_handling(life))


def test_without_a_catalog_a_skipped_step_is_inferred_from_similar_orders(
        demo: DemoStore, tmp_path: Path) -> None:
    """No catalog: a delivered order whose OrderShipped event is gone lacks it, said to be
    inferred from the similar (delivered) orders; its untouched neighbours lack nothing."""
    copy = tmp_path / "copy.db"
    shutil.copy(demo.url.removeprefix("sqlite:///"), copy)
    engine = sa.create_engine(f"sqlite:///{copy}")
    target, other = demo.orders_with("OrderShipped", "CustomerNotified",
                                     without=("OrderReturned",))[:2]
    with engine.begin() as conn:
        conn.execute(sa.text("delete from events where correlation_key = :k and detail_type = "
                             "'OrderShipped'"), {"k": target})
    life = read.lifecycle(engine, target, None)
    missing = [g for g in life["gaps"] if g["kind"] == "missing_step"]
    assert [g["detail_type"] for g in missing] == ["OrderShipped"]
    assert missing[0]["basis"].startswith("inferred from ")
    assert life["gaps_basis"].startswith("inferred from ")
    assert [g for g in read.lifecycle(engine, other, None)["gaps"]
            if g["kind"] == "missing_step"] == []


# --- properties ---------------------------------------------------------------------------------

DEMO_LIFECYCLES = load_catalog(DEMO_CATALOG).lifecycles
DEMO_STEPS = sorted({t for lc in DEMO_LIFECYCLES for t in lc.all_types})


@settings(max_examples=200, deadline=None)
@given(st.sets(st.sampled_from(DEMO_STEPS)))
def test_declared_gaps_are_unseen_required_steps_only(seen: set[str]) -> None:
    """Any set of the demo lifecycles' steps: a gap is never a step the order has, is a
    start or required (directly or through another) by a step it has, and never a step
    nothing requires."""
    for lifecycle in DEMO_LIFECYCLES:
        if not seen & set(lifecycle.all_types):
            continue
        required = {t for before in lifecycle.requires.values() for t in before}
        for step in expected_steps(lifecycle, seen):
            assert step in lifecycle.starts or step in required
        gaps = [g for g in expected_steps(lifecycle, seen) if g not in seen]
        assert not {"ShipmentCreated", "WarrantyRegistered"} & set(gaps)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("ABCDE"), max_size=6),
       st.dictionaries(st.text("xyz", min_size=1, max_size=3),
                       st.lists(st.sampled_from("ABCDE"), max_size=6), max_size=30))
def test_inferred_gaps_are_usual_steps_of_alike_orders(seen: list[str],
                                                        similar: dict[str, list[str]]) -> None:
    """Never raises; every inferred gap is a step the order lacks and at least 90 % of the
    orders with the same last step went through; the answer always says its basis."""
    gaps, basis = inferred_gaps(seen, similar)
    assert basis
    alike = [set(s) for s in similar.values() if s and seen and s[-1] == seen[-1]]
    for gap in gaps:
        assert gap["detail_type"] not in seen
        assert sum(gap["detail_type"] in kinds for kinds in alike) >= 0.9 * len(alike)
        assert gap["basis"] == f"inferred from {len(alike)} similar orders"


def test_the_cli_says_where_expected_steps_come_from(demo: DemoStore) -> None:
    """`eventscope lifecycle` on a shipped demo order: the basis line, and no missing step."""
    order = demo.orders_with("OrderShipped")[0]
    result = CliRunner().invoke(main, ["lifecycle", order, "--db", demo.url, "--catalog",
                                       str(DEMO_CATALOG)])
    assert result.exit_code == 0, result.output
    assert "expected steps: the catalog's declared lifecycle steps ('order', 'payment')" \
        in result.output
    assert "missing_step" not in result.output
    as_json = CliRunner().invoke(main, ["lifecycle", order, "--db", demo.url, "--json"])
    assert orjson.loads(as_json.output)["lifecycle"]["gaps_basis"].startswith("inferred from ")


def test_similar_orders_and_an_inferred_gap_on_both_engines(store: Store) -> None:
    """Six orders paid then delivered and one delivered unpaid, on SQLite and PostgreSQL:
    the latest orders with the last step are read (not the order itself), and without a
    catalog the unpaid one lacks OrderPaid, inferred from the six."""
    def event(n: int, key: str, kind: str, minute: int) -> BusEvent:
        return BusEvent(id=f"{key}-{n}", source="shop", detail_type=kind,
                        time_ms=T0 + minute * 60_000, detail="{}", size_bytes=2,
                        correlation_key=key)
    written = [e for i in range(6) for e in (
        event(0, f"o{i}", "OrderCreated", i), event(1, f"o{i}", "OrderPaid", i + 1),
        event(2, f"o{i}", "OrderDelivered", i + 2))]
    written += [event(0, "late", "OrderCreated", 20), event(1, "late", "OrderDelivered", 21)]
    store.write_batch(written, [])
    similar = load.similar_orders(store.engine, "OrderDelivered", "late")
    assert similar == {f"o{i}": ["OrderCreated", "OrderPaid", "OrderDelivered"]
                       for i in range(6)}
    life = read.lifecycle(store.engine, "late", None)
    assert [(g["detail_type"], g["basis"]) for g in life["gaps"]] == [
        ("OrderPaid", "inferred from 6 similar orders")]


def test_a_requires_naming_a_step_outside_its_lifecycle_is_a_catalog_mistake(
        tmp_path: Path) -> None:
    """`requires` may only name the lifecycle's own steps: the loader says where and what."""
    shutil.copytree(DEMO_CATALOG, tmp_path / "catalog")
    lifecycles = tmp_path / "catalog" / "lifecycles.yaml"
    lifecycles.write_text(lifecycles.read_text().replace(
        "OrderShipped: [OrderPaid]", "OrderShipped: [PaymentCaptured]"))
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path / "catalog")
    assert [str(p) for p in caught.value.problems] == [
        "lifecycles.yaml:17 lifecycles[0].requires.OrderShipped[0]: expected a step of "
        "lifecycle 'order', got 'PaymentCaptured'"]
