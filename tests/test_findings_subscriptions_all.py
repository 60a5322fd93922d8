"""Every order a missing subscription affected, not five: in the finding, the CLI's JSON and
its per-order listing, and the text that says how many there are and how to get them all."""

from __future__ import annotations

import csv
import io

import orjson
import pytest
from click.testing import CliRunner

from eventscope.cli import main
from eventscope.findings import read
from eventscope.findings.subscriptions import EXAMPLES
from eventscope.simulator import DEMO_CATALOG
from eventscope.store import open_store
from tests.demo_shaped import DemoStore, build


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
