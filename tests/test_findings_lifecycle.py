"""The order lifecycle: outcomes per event and consumer, gaps, and lookup by key, id or prefix."""

from __future__ import annotations

from tests.findings_scenario import T0, attempts_frame, catalog, events_frame

from eventscope.findings.frames import resolve_consumers
from eventscope.findings.lifecycle import order_lifecycle, outcome_of


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
