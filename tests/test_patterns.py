"""The EventBridge event-pattern matcher, operator by operator (AWS's documented semantics)."""

from __future__ import annotations

from typing import Any

import pytest

from eventscope.patterns import PatternError, matches

ORDER = {
    "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "OrderPlaced",
    "source": "com.shop.orders", "account": "123456789012", "time": "2025-06-02T10:15:00Z",
    "region": "eu-west-1", "resources": [],
    "detail": {"orderId": "ord-1", "amount": 120.5, "currency": "EUR", "status": "placed",
               "customer": {"tier": "gold", "email": None}, "tags": ["gift", "priority"],
               "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
               "sourceIp": "10.0.3.7", "file": "/srv/lib/app.py"},
}


@pytest.mark.parametrize("pattern, expected", [
    ({"source": ["com.shop.orders"]}, True),
    ({"source": ["com.shop.payments"]}, False),
    ({"source": ["com.shop.payments", "com.shop.orders"]}, True),
    ({"source": ["com.shop.orders"], "detail-type": ["OrderCancelled"]}, False),
    ({"detail": {"amount": [120.5]}}, True),
    ({"detail": {"customer": {"email": [None]}}}, True),
    ({"detail": {"missing": [None]}}, False),
])
def test_exact_values_and_and_or(pattern: dict[str, Any], expected: bool) -> None:
    """Keys are ANDed, values in a list ORed; null matches only a present null."""
    assert matches(pattern, ORDER) is expected


@pytest.mark.parametrize("pattern, expected", [
    ({"source": [{"prefix": "com.shop."}]}, True),
    ({"source": [{"prefix": "COM."}]}, False),
    ({"source": [{"prefix": {"equals-ignore-case": "COM.SHOP"}}]}, True),
    ({"detail": {"file": [{"suffix": ".py"}]}}, True),
    ({"detail": {"file": [{"suffix": {"equals-ignore-case": ".PY"}}]}}, True),
    ({"detail": {"currency": [{"equals-ignore-case": "eur"}]}}, True),
    ({"detail": {"amount": [{"prefix": "12"}]}}, False),
])
def test_prefix_suffix_and_ignore_case(pattern: dict[str, Any], expected: bool) -> None:
    """String operators apply to strings only, with the case-insensitive forms."""
    assert matches(pattern, ORDER) is expected


@pytest.mark.parametrize("pattern, expected", [
    ({"detail": {"status": [{"anything-but": "cancelled"}]}}, True),
    ({"detail": {"status": [{"anything-but": ["placed", "cancelled"]}]}}, False),
    ({"detail": {"amount": [{"anything-but": [120.5]}]}}, False),
    ({"detail": {"nothere": [{"anything-but": "x"}]}}, False),
    ({"region": [{"anything-but": {"prefix": "us-"}}]}, True),
    ({"detail": {"file": [{"anything-but": {"suffix": ".py"}}]}}, False),
    ({"detail": {"status": [{"anything-but": {"equals-ignore-case": "PLACED"}}]}}, False),
    ({"detail": {"file": [{"anything-but": {"wildcard": "*/lib/*"}}]}}, False),
])
def test_anything_but_forms(pattern: dict[str, Any], expected: bool) -> None:
    """anything-but with a value, a list, and prefix/suffix/ignore-case/wildcard inside."""
    assert matches(pattern, ORDER) is expected


@pytest.mark.parametrize("pattern, expected", [
    ({"detail": {"amount": [{"numeric": [">", 100, "<=", 200]}]}}, True),
    ({"detail": {"amount": [{"numeric": [">", 200]}]}}, False),
    ({"detail": {"amount": [{"numeric": ["=", 120.5]}]}}, True),
    ({"detail": {"currency": [{"numeric": [">", 0]}]}}, False),
])
def test_numeric(pattern: dict[str, Any], expected: bool) -> None:
    """Every comparison must hold, and only numbers compare."""
    assert matches(pattern, ORDER) is expected


@pytest.mark.parametrize("pattern, expected", [
    ({"detail": {"orderId": [{"exists": True}]}}, True),
    ({"detail": {"coupon": [{"exists": True}]}}, False),
    ({"detail": {"coupon": [{"exists": False}]}}, True),
    ({"detail": {"orderId": [{"exists": False}]}}, False),
    ({"detail": {"nested": {"deeper": [{"exists": False}]}}}, True),
    ({"detail": {"customer": [{"exists": True}]}}, False),  # exists works on leaves only
])
def test_exists(pattern: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, ORDER) is expected


@pytest.mark.parametrize("pattern, expected", [
    ({"detail": {"file": [{"wildcard": "/srv/*/app.py"}]}}, True),
    ({"detail": {"file": [{"wildcard": "/srv/*.txt"}]}}, False),
    ({"detail": {"file": [{"wildcard": "\\*"}]}}, False),
    ({"detail": {"sourceIp": [{"cidr": "10.0.0.0/16"}]}}, True),
    ({"detail": {"sourceIp": [{"cidr": "192.168.0.0/24"}]}}, False),
])
def test_wildcard_and_cidr(pattern: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, ORDER) is expected


@pytest.mark.parametrize("pattern, expected", [
    ({"detail": {"tags": ["gift"]}}, True),
    ({"detail": {"tags": ["sale"]}}, False),
    ({"detail": {"items": {"sku": ["B-2"]}}}, True),
    ({"detail": {"items": {"qty": [{"numeric": [">", 5]}]}}}, False),
    ({"detail": {"customer": {"tier": ["gold"]}}}, True),
    ({"$or": [{"source": ["x"]}, {"detail": {"status": ["placed"]}}]}, True),
    ({"$or": [{"source": ["x"]}, {"detail-type": ["y"]}]}, False),
    ({"source": ["com.shop.orders"], "$or": [{"detail": {"amount": [{"numeric": [">", 1000]}]}},
                                              {"detail": {"currency": ["EUR"]}}]}, True),
])
def test_arrays_nesting_and_or(pattern: dict[str, Any], expected: bool) -> None:
    """Event arrays match on any element, arrays of objects element-wise, $or any branch."""
    assert matches(pattern, ORDER) is expected


@pytest.mark.parametrize("pattern, message", [
    ({"source": "com.shop"}, "must be a list or an object"),
    ({"source": [{"starts-with": "x"}]}, "unknown pattern operator"),
    ({"detail": {"n": [{"numeric": [">"]}]}}, "pairs of operator and number"),
    ({"detail": {"n": [{"numeric": ["~", 1]}]}}, "is not an operator and a number"),
    ({"$or": []}, "non-empty list"),
    ({"source": [{"anything-but": {"numeric": [">", 1]}}]}, "cannot contain"),
])
def test_invalid_patterns_raise_a_clear_error(pattern: dict[str, Any], message: str) -> None:
    with pytest.raises(PatternError, match=message):
        matches(pattern, ORDER)


@pytest.mark.parametrize("pattern, expected", [
    ({"detail-type": ["A", "B"]}, ["A", "B"]),
    ({"source": ["s"]}, None),
    ({"detail-type": [{"prefix": "Order"}]}, None),
    ({"$or": [{"detail-type": ["A"]}, {"detail-type": ["B"]}]}, ["A", "B"]),
    ({"$or": [{"detail-type": ["A"]}, {"source": ["s"]}]}, None),
])
def test_listed_values(pattern: dict[str, Any], expected: list[str] | None) -> None:
    """The exact detail-types a pattern pins, or None when it leaves them open."""
    from eventscope.patterns import listed_values

    assert listed_values(pattern, "detail-type") == expected
