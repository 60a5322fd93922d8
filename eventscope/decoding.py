"""Decoding one untrusted JSON document (an NDJSON line, an SQS message body) within limits.

Owns the checks every write path applies before looking inside a record: size, UTF-8, JSON
syntax, nesting depth, and that the top level is an object; and keeping integers exact: a JSON
integer outside 64 bits (which orjson would turn into a float, losing digits) is kept as the
string of its digits. Pure: no I/O.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from eventscope.events import RejectedRecord
from eventscope.limits import MAX_JSON_DEPTH, MAX_LINE_BYTES


def decode_object(raw: bytes, exact_integers: bool = True) -> dict[str, Any]:
    """The JSON object in `raw`, or `RejectedRecord` with the reason it is refused.

    `exact_integers=False` skips the look for integers beyond 64 bits (orjson makes them
    floats): for a caller that reads no number the document may hold but its own small ones
    (a log record's `timestamp`, refused when not an int either way) and decodes again
    (`checked_kept`) when it keeps the document.
    """
    return checked_depth(raw, decode_unchecked(raw, exact_integers))


def decode_unchecked(raw: bytes, exact_integers: bool = False) -> dict[str, Any]:
    """`decode_object` without the depth check, which the caller makes: `checked_depth`, or
    `checked_kept` for a document it keeps (the depth and the exact integers in one pass)."""
    if len(raw) > MAX_LINE_BYTES:
        raise RejectedRecord("too_large", f"{len(raw)} bytes, over the {MAX_LINE_BYTES} limit")
    try:
        value = orjson.loads(raw)
        if exact_integers and _may_hold_big_integer(raw):
            value = json.loads(raw, parse_int=_exact_int)
    except (orjson.JSONDecodeError, ValueError, RecursionError) as exc:
        if not _is_utf8(raw):
            raise RejectedRecord("not_utf8", "not valid UTF-8") from None
        raise RejectedRecord("invalid_json", f"invalid JSON: {exc}") from None
    if type(value) is not dict:
        if not exact_integers:  # refused as the exact decode names it (a big integer: str)
            return decode_unchecked(raw, exact_integers=True)
        raise RejectedRecord("not_an_object", f"JSON {type(value).__name__}, not an object")
    return value


def checked_depth(raw: bytes, value: dict[str, Any]) -> dict[str, Any]:
    """`value`, the object decoded from `raw`, unless nested deeper than the limit."""
    if _may_be_deep(raw) and json_depth(value) > MAX_JSON_DEPTH:
        raise _too_deep()
    return value


def checked_kept(raw: bytes, value: dict[str, Any]) -> dict[str, Any]:
    """What `decode_object(raw)` gives, for `value = decode_unchecked(raw)`: refused when too
    deep, decoded again (the full way) when an integer beyond 64 bits may have lost digits.
    One pass over the text serves both looks: digits become "0" and brackets are dropped, so
    the text shrinks by its brackets (which bound the depth) and every run of digits shows
    as zeros (dropped brackets may join two runs: the exact look, `_may_hold_big_integer`,
    decides)."""
    thin = raw.translate(_DIGITS_AS_ZERO, b"{[")
    if len(raw) - len(thin) > MAX_JSON_DEPTH and json_depth(value) > MAX_JSON_DEPTH:
        raise _too_deep()
    if thin.find(_DIGITS_19) >= 0 and _may_hold_big_integer(raw):  # 19 digits: either run
        return decode_object(raw)
    return value


def _too_deep() -> RejectedRecord:
    return RejectedRecord("too_deep", f"nested deeper than {MAX_JSON_DEPTH} levels")


# Digits become "0": a run of 20 is a number too long for 64 bits, or a string's digits.
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0000000000")
_RUN = b"0" * 20  # 20 digits: more than 2**64 - 1 has
_NEGATIVE_RUN = b"-" + b"0" * 19  # a negative of 19 digits may be below -2**63
_DIGITS_19 = b"0" * 19  # what both runs hold: one look for either
_BEFORE_NUMBER = b" \t\r\n-"
_NOT_A_NUMBER = b'"0123456789'  # a run after a quote is a string; after a digit, the same run
INT_RANGE = (-(2**63), 2**64 - 1)  # what orjson decodes exactly


def _may_hold_big_integer(raw: bytes) -> bool:
    """Whether a JSON number of 20 or more digits (or a negative one of 19, which may be
    below -2**63) may be in the text: such a run of digits not at the start of a string
    (CloudWatch's 56-digit `eventId` strings are the common case)."""
    shaped = raw.translate(_DIGITS_AS_ZERO)
    return _run_outside_strings(raw, shaped, _RUN) or (
        shaped.find(_NEGATIVE_RUN) >= 0 and _run_outside_strings(raw, shaped, _NEGATIVE_RUN))


def _run_outside_strings(raw: bytes, shaped: bytes, run: bytes) -> bool:
    """Whether `run` (in `shaped`) occurs in `raw` other than at the start of a string."""
    start = shaped.find(run)
    while start != -1:
        before = start - 1
        while before >= 0 and raw[before] in _BEFORE_NUMBER:
            before -= 1
        if before < 0 or raw[before] not in _NOT_A_NUMBER:
            return True
        start = shaped.find(run, start + len(run))
    return False


def _exact_int(digits: str) -> int | str:
    number = int(digits)
    return number if INT_RANGE[0] <= number <= INT_RANGE[1] else digits


def json_depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value (a scalar is 0, `{}` is 1), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = node.values()
        elif not isinstance(node, list):
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in node)
    return deepest


def _may_be_deep(raw: bytes) -> bool:
    """Cheap pre-check: a document with few brackets cannot be deeper than the limit."""
    return raw.count(b"{") + raw.count(b"[") > MAX_JSON_DEPTH


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
