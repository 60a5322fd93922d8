"""Decoding untrusted JSON lines within limits."""

from __future__ import annotations

import pytest

from eventscope.decoding import decode_object, json_depth
from eventscope.events import RejectedRecord
from eventscope.limits import MAX_JSON_DEPTH, MAX_LINE_BYTES


@pytest.mark.parametrize(("raw", "reason"), [
    (b'{"id": ', "invalid_json"),
    (b"\xff\xfe{}", "not_utf8"),
    (b'{"message": "caf\xe9"}', "not_utf8"),
    (b"[1, 2]", "not_an_object"),
    (b'"just a string"', "not_an_object"),
    (b'{"a":' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1), "too_deep"),
    (b'{"a": "' + b"x" * MAX_LINE_BYTES + b'"}', "too_large"),
])
def test_bad_lines_are_rejected_with_their_reason(raw: bytes, reason: str) -> None:
    """Each kind of unusable line is refused with its own reason code."""
    with pytest.raises(RejectedRecord) as raised:
        decode_object(raw)
    assert raised.value.reason == reason


def test_deep_but_allowed_documents_pass() -> None:
    """A document exactly at the depth limit is accepted."""
    raw = b'{"a":' * (MAX_JSON_DEPTH - 1) + b"{}" + b"}" * (MAX_JSON_DEPTH - 1)
    assert json_depth(decode_object(raw)) == MAX_JSON_DEPTH


def test_json_depth_counts_arrays_and_objects() -> None:
    """Depth counts both containers; scalars add nothing."""
    assert json_depth(1) == 0
    assert json_depth({}) == 1
    assert json_depth({"a": [1, {"b": []}]}) == 4


@pytest.mark.parametrize("raw", [
    b'{"s": "1234567890[123456789012"}',  # a bracket joins two runs of a string's digits
    b'{"s": "-1234567890{1234567890"}',
    b'{"a": [12345678901234567890123], "b": {"c": -9223372036854775809}}',
    b'{"a": [1234567890, 123456789], "b": [[[1]]]}',
])
def test_the_one_pass_look_decides_as_the_full_decode(raw: bytes) -> None:
    """`checked_kept` (brackets dropped from its one pass over the text, digits as zeros)
    gives what `decode_object` gives, when a dropped bracket joins runs of digits too."""
    from eventscope.decoding import checked_kept, decode_unchecked
    assert checked_kept(raw, decode_unchecked(raw)) == decode_object(raw)
