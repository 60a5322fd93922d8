"""Parsing EventBridge envelopes into bus events."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventscope.events import (RejectedRecord, VersionRule, envelope_of, parse_bus_event,
                               parse_time_ms, rule_for)
from tests.conftest import DATA


def _envelopes() -> list[dict]:
    lines = (DATA / "events" / "order-events.ndjson").read_bytes().splitlines()
    return [orjson.loads(line) for line in lines]


def test_envelope_fields_are_kept() -> None:
    """A real envelope keeps its id, source, detail-type, account, region and resources."""
    envelope = _envelopes()[1]
    event = parse_bus_event(envelope, 321)
    assert (event.id, event.source, event.detail_type) == (
        "0b9bd5c2-6f4f-4a0e-9d2e-4a8f5ae1c2f1", "com.shop.payments", "OrderPaid")
    assert (event.account, event.region, event.size_bytes) == ("123456789012", "eu-west-1", 321)
    assert orjson.loads(event.resources) == [
        "arn:aws:payments:eu-west-1:123456789012:payment/pay-9"]
    assert orjson.loads(event.detail) == envelope["detail"]


def test_version_comes_from_detail_version() -> None:
    """The event's version is detail.version, as a string; absent means None."""
    created, paid, _, shipped = (parse_bus_event(e, 1) for e in _envelopes())
    assert (created.version, paid.version, shipped.version) == ("1", "2", None)


def test_correlation_key_defaults_to_detail_order_id() -> None:
    """Without configuration the correlation key is detail.orderId."""
    assert parse_bus_event(_envelopes()[0], 1).correlation_key == "ord-1001"
    assert parse_bus_event(_envelopes()[3], 1).correlation_key is None


def test_correlation_paths_are_tried_in_order() -> None:
    """Configured paths are tried in order and the first present value wins."""
    paths = ("detail.orderId", "detail.shipment.order.id")
    assert parse_bus_event(_envelopes()[3], 1, paths).correlation_key == "ord-2002"
    assert parse_bus_event(_envelopes()[0], 1, paths).correlation_key == "ord-1001"


def test_account_may_be_absent() -> None:
    """An envelope without `account` is still a bus event."""
    assert parse_bus_event(_envelopes()[2], 1).account is None


def test_time_is_milliseconds_utc() -> None:
    """EventBridge times with Z, fractions, offsets or no zone become epoch milliseconds."""
    assert parse_time_ms("2024-05-01T10:00:00Z") == 1714557600000
    assert parse_time_ms("2024-05-01T12:00:00.250+02:00") == 1714557600250
    assert parse_time_ms("2024-05-01T10:00:00") == 1714557600000


@pytest.mark.parametrize(("change", "reason"), [
    ({"detail-type": None}, "missing_fields"),
    ({"id": ""}, "missing_fields"),
    ({"detail": "not an object"}, "invalid_detail"),
    ({"source": 7}, "invalid_field"),
    ({"time": "yesterday"}, "invalid_time"),
])
def test_broken_envelopes_are_rejected_with_a_reason(change: dict, reason: str) -> None:
    """Each kind of broken envelope is refused with its own reason code."""
    envelope = {**_envelopes()[0], **change}
    with pytest.raises(RejectedRecord) as raised:
        parse_bus_event(envelope, 1)
    assert raised.value.reason == reason


def test_envelope_round_trips() -> None:
    """A stored event gives back the envelope it came from."""
    envelope = _envelopes()[1]
    assert envelope_of(parse_bus_event(envelope, 1)) == envelope


# --- versions as the catalog reads them (`VersionRule`) ----------------------------------

@pytest.mark.parametrize(("rule", "detail", "detail_type", "expected"), [
    (VersionRule(), {"version": 2}, "OrderPaid", "2"),
    (VersionRule(), {}, "OrderPaid", None),
    (VersionRule(default="1"), {}, "OrderPaid", "1"),
    (VersionRule("none", "1"), {"version": 14801}, "ECS Task State Change", "1"),
    (VersionRule("detail.schemaVersion"), {"schemaVersion": "2", "version": 9}, "X", "2"),
    (VersionRule("detail.meta.v", "1"), {"meta": {"v": {"nested": 1}}}, "X", "1"),
    (VersionRule("detail-type-suffix"), {"version": "1"}, "OrderPaid.v2", "2"),
    (VersionRule("detail-type-suffix", "1"), {}, "OrderPaid", "1"),
    (VersionRule(), None, "OrderPaid", None),
])
def test_version_rule_reads_the_version(rule, detail, detail_type, expected) -> None:
    """The version comes from the rule's path, the suffix, or the default; never a revision."""
    assert rule.version(detail, detail_type) == expected


def test_parse_with_rules_stores_the_catalog_version() -> None:
    """An ECS-like event whose detail.version is a revision is stored at the rule's version."""
    envelope = {**_envelopes()[0], "source": "aws.ecs", "detail-type": "ECS Task State Change",
                "detail": {"version": 14801, "lastStatus": "RUNNING"}}
    rules = {("aws.ecs", "ECS Task State Change"): VersionRule("none", "1")}
    assert parse_bus_event(envelope, 10).version == "14801"
    assert parse_bus_event(envelope, 10, version_rules=rules).version == "1"


def test_suffix_rules_apply_to_suffixed_detail_types_only() -> None:
    """`OrderPaid.v2` finds OrderPaid's suffix rule; a path rule does not claim suffixed names."""
    suffix = {("s", "OrderPaid"): VersionRule("detail-type-suffix")}
    path = {("s", "OrderPaid"): VersionRule("detail.v")}
    assert rule_for(suffix, "s", "OrderPaid.v2") == VersionRule("detail-type-suffix")
    assert rule_for(path, "s", "OrderPaid.v2") == VersionRule()
    assert rule_for(suffix, "other", "OrderPaid.v2") == VersionRule()


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                     | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.sampled_from(["version", "v", "meta", "x"]), inner,
                                       max_size=3), max_leaves=10)
_RULES = st.builds(VersionRule, st.sampled_from(["detail.version", "detail.meta.v", "none",
                                                 "detail-type-suffix", "source"]),
                   st.none() | st.sampled_from(["1", "2"]))


@settings(max_examples=200, deadline=None)
@given(rule=_RULES, detail=_JSON, detail_type=st.text(max_size=20))
def test_version_rule_never_raises_and_gives_a_string_or_none(rule, detail, detail_type) -> None:
    """Any detail, any rule: a version string, or the default (possibly None); never a raise."""
    version = rule.version(detail, detail_type)
    assert version is None or (isinstance(version, str) and version != "")
    if rule.version_from == "none":
        assert version == rule.default
