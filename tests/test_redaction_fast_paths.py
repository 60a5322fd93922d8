"""Redaction's shortcuts find exactly what the plain walk finds, on any detail (hypothesis).

The plain walk looks at every string value and key with `may_hold_pii` and every long
integer. The shortcuts rule out whole details before it (`string_filter`: a key id, the
detectors tried on each run of number characters, e-mail-only documents), and ingest runs
on rows rather than `BusEvent`s. The details drawn here hold e-mail addresses, card numbers
(as text and as integers, negative too), phone numbers, AWS key ids and social security
numbers, in values, in keys and nested, beside control characters, quotes, backslashes,
Unicode digits and letters; lines are also written with escapes (`\\u0040` for "@").
"""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventscope.decoding import decode_object
from eventscope.events import bus_event_row, parse_bus_event
from eventscope.ingest_lines import Block, LineOptions, parse_block
from eventscope.records import event_of_row, event_row
from eventscope.redaction import (_DETECTORS, _TOKEN, RedactionSettings, may_hold_pii,
                                  redact_document, redact_event, redaction_rows, replace_pii,
                                  string_filter)

KEY = b"k" * 32
PII = ["ann@example.com", "a.b+c@mail.example.co.uk", "4111 1111 1111 1111",
       "4111-1111-1111-1111", "4111111111111111", "5555555555554444", "378282246310005",
       "+44 20 7946 0958", "+1 (415) 555-2671", "(415) 555-2671", "555.867.5309",
       "555-867-5309", "AKIAIOSFODNN7EXAMPLE", "ASIAABCDEFGHIJKLMNOP", "078-05-1120",
       "078 05 1120", "219-09-9999", "pii:email:0123456789abcdef", "x@y", "12345678",
       "0612345678", "557788052364", "2024-05-01T10:00:00.000Z", "ord-4259405278e4b98d",
       "4111111111111112", "+٤٤ ٢٠ ٧٩٤٦ ٠٩٥٨", "٤١١١١١١١١١١١١١١١"]
BESIDE = ["", " ", "\n", "\t", "\x01", "\x1f", '"', "\\", "x", "-", "+", "(", ".", "٣", "é",
          "A", "0", "9", "@", "中"]
PIECES = st.tuples(st.sampled_from(BESIDE), st.sampled_from(PII)
                   | st.text("0123456789 -+().@AKIASXYZab\n", max_size=24),
                   st.sampled_from(BESIDE)).map("".join)
INTEGERS = (st.sampled_from([4111111111111111, -4111111111111111, 5555555555554444,
                             -378282246310005, 4111111111111112, 1714557600000, 10**12])
            | st.integers(min_value=-(2**63), max_value=2**64 - 1))
SCALARS = (PIECES | INTEGERS | st.none() | st.booleans()
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8))
DETAILS = st.dictionaries(
    PIECES | st.text(max_size=5),
    st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                 | st.dictionaries(PIECES | st.text(max_size=5), inner, max_size=4),
                 max_leaves=12),
    max_size=6)


def plain_walk(detail: dict[str, Any], path: str = "$.detail") -> tuple[Any, list[Any]]:
    """The walk without a document-level shortcut: every string checked with `may_hold_pii`."""
    found: list[tuple[str, str]] = []
    return redact_document(copy.deepcopy(detail), path, set(), KEY, found, may_hold_pii), found


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DETAILS)
def test_the_document_filter_finds_what_the_plain_walk_finds(detail: dict[str, Any]) -> None:
    """Where `string_filter` rules a detail out the plain walk finds nothing; where it gives
    a narrower check, the walk with it replaces and reports what the plain walk does."""
    text = orjson.dumps(detail).decode()
    check = string_filter(text)
    plain, plain_found = plain_walk(detail)
    if check is None:
        assert plain_found == []
    else:
        found: list[tuple[str, str]] = []
        fast = redact_document(copy.deepcopy(detail), "$.detail", set(), KEY, found, check)
        assert (fast, found) == (plain, plain_found)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PII) | st.sampled_from(BESIDE), min_size=1, max_size=6)
       .map("".join))
def test_the_document_filter_finds_pii_packed_into_one_value(value: str) -> None:
    """The same, for one string of several candidates side by side (runs of number
    characters that touch, an e-mail beside a phone number)."""
    detail = {"v": value, value: [value]}
    check = string_filter(orjson.dumps(detail).decode())
    plain, plain_found = plain_walk(detail)
    found: list[tuple[str, str]] = []
    fast = (redact_document(copy.deepcopy(detail), "$.detail", set(), KEY, found, check)
            if check is not None else detail)
    assert (fast, found) == (plain, plain_found)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(PII) | st.sampled_from(BESIDE)
                | st.text("0123456789 -+().@AKIASXYZ٣", max_size=12), min_size=1, max_size=6)
       .map("".join), st.sampled_from(["<{}:{}>", "pii:{}:4111111111111111", "█"]))
def test_replace_pii_tries_a_detector_only_where_it_can_match(text: str, shape: str) -> None:
    """Skipping the detectors that cannot match the text as changed so far (no "@", no key
    prefix, too few digits) replaces and reports what trying every detector does, whatever
    the replacement puts in (a token whose hex digits look like a card, a non-ASCII mask)."""
    def replacement(value: str, name: str) -> str:
        return shape.format(name, len(value))

    def plain(value: str) -> tuple[str, list[str]]:
        fired: list[str] = []
        if not may_hold_pii(value):
            return value, fired
        for name, pattern, accept in _DETECTORS:
            def substitute(match: Any, name: str = name, accept: Any = accept) -> str:
                if _TOKEN.fullmatch(match.group()) or not accept(match):
                    return str(match.group())
                fired.append(name)
                return replacement(match.group(), name)
            value = pattern.sub(substitute, value)
        return value, fired
    assert replace_pii(text, replacement) == plain(text)


def plain_block(lines: list[bytes], redaction: RedactionSettings) -> tuple[list[Any], list[Any]]:
    """`parse_block`'s events the plain way: decode, `parse_bus_event`, `redact_event`, its row."""
    rows, records = [], []
    for raw in lines:
        event = parse_bus_event(decode_object(raw), len(raw))
        clean, found = redact_event(event, redaction)
        rows.append(event_row(clean))
        records += redaction_rows(found, 0)
    return rows, records


envelopes = st.fixed_dictionaries(
    {"id": st.sampled_from(["e1", "e2", "e3"]), "source": st.just("shop"),
     "detail-type": st.sampled_from(["OrderCreated", "X"]),
     "time": st.just("2024-05-01T10:00:00Z"), "detail": DETAILS},
    optional={"resources": st.lists(PIECES, max_size=2), "account": st.sampled_from(
        ["123456789012", 123456789012]), "region": st.just("eu-west-1")})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(envelopes, min_size=1, max_size=4), st.booleans(), st.booleans(),
       st.booleans())
def test_a_block_stores_the_rows_and_redactions_the_plain_path_gives(
        docs: list[dict[str, Any]], ascii_only: bool, escaped_at: bool, keep: bool) -> None:
    """Rows built straight from the decoded line, redacted on the row, equal the plain
    path's, with the same `redactions` rows; lines written with `\\uXXXX` escapes too."""
    lines = []
    for doc in docs:
        if "orderId" not in doc["detail"]:
            doc["detail"]["orderId"] = next(iter(PII))
        text = json.dumps(doc, ensure_ascii=ascii_only, separators=(",", ":"))
        lines.append((text.replace("@", "\\u0040") if escaped_at else text).encode())
    redaction = RedactionSettings(KEY, keep_originals=keep)
    parsed = parse_block(Block("f", 1, b"\n".join(lines)), LineOptions(redaction=redaction))
    stored = [{**row, "redacted_ms": 0} for row in parsed.redaction_rows]
    assert (parsed.event_rows, stored) == plain_block(lines, redaction)


@settings(max_examples=100, deadline=None)
@given(envelopes)
def test_an_events_row_is_the_row_of_its_bus_event(envelope: dict[str, Any]) -> None:
    """`bus_event_row` is `event_row(parse_bus_event(...))`, and `event_of_row` its inverse."""
    row = bus_event_row(envelope, 100)
    event = parse_bus_event(envelope, 100)
    assert row == event_row(event) and event_of_row(row) == event


def key_pattern_first(document: str) -> Any:
    """`string_filter` as written before the folded look for a key id prefix: the pattern
    searched over the whole text first, then the same number and e-mail checks."""
    from eventscope.redaction import (_ESCAPED_CONTROL, _KEY_PREFIX, _AtOnly, _encoded,
                                      _has_at, _may_hold_number, _numbers_match)
    if _KEY_PREFIX.search(document) is not None:
        return may_hold_pii
    encoded = _encoded(document)
    if _may_hold_number(document, encoded) and (
            _ESCAPED_CONTROL.search(document) is not None or _numbers_match(encoded)):
        return may_hold_pii
    if "@" not in document:
        return None
    return _has_at if "\\u" in document else _AtOnly(document.count("@"))


KEYISH = st.text(st.sampled_from("AKISDROXa0149 -().+@\\u"), max_size=30)


@settings(max_examples=1000, deadline=None)
@given(st.lists(KEYISH | st.sampled_from(PII) | st.sampled_from(BESIDE), max_size=5)
       .map("".join))
def test_the_folded_key_prefix_look_gives_what_the_pattern_first_gives(value: str) -> None:
    """AKIA, ASIA, AIDA and AROA folded to "AKKA" among the digits' translation (separators
    dropped) rule a document in or out exactly as the pattern searched first does."""
    text = orjson.dumps({"v": value, value: 1}).decode()
    fast, plain = string_filter(text), key_pattern_first(text)
    assert type(fast) is type(plain)
    assert fast is plain or getattr(fast, "ats", None) == getattr(plain, "ats", None)
