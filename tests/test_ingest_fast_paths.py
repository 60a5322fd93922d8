"""The ingest path's shortcuts give what the plain path gives, on any input (hypothesis).

Each shortcut is compared with the plain way, written out here: a line decoded without the
look for big integers (`ingest_lines._classify`) against `decode_object(raw)` then the same
classification; a redaction walking the already decoded detail against one decoding
`event.detail` again; the e-mail-only walk tested inline against the same test as a call;
the AWS key prefix found by one pattern against four substring tests.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventscope.decoding import decode_object
from eventscope.events import RejectedRecord, is_bus_event, parse_bus_event
from eventscope.ingest_lines import (Block, LineOptions, checked_log_record, classify_line,
                                     parse_block, quarantine_item)
from eventscope.lambda_logs import parse_log_record
from eventscope.records import BusEvent, Invocation, Quarantined, event_of_row
from eventscope.redaction import (RedactionSettings, _has_at, _may_hold_key_or_number,
                                  redact_document, redact_fields)
from eventscope.replay_marker import is_echo

KEY = b"k" * 32
BIG = st.integers(min_value=2**64, max_value=10**30) | st.integers(max_value=-(2**63) - 1,
                                                                  min_value=-(10**30))
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63)
           | BIG | st.floats(allow_nan=False, allow_infinity=False)
           | st.sampled_from(["a@b.io", "x ann@example.com y", "4111 1111 1111 1111",
                              "AKIAABCDEFGHIJKLMNOP", "078-05-1120", "+44 20 7946 0958",
                              "ord-1", "", "plain"])
           | st.text(max_size=12))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=6) | st.sampled_from(["k@x.io"]), inner,
                                      max_size=4), max_leaves=20)


def plain_classify(raw: bytes) -> Any:
    """`classify_line` the plain way: the full decode, then the same decisions."""
    try:
        record = decode_object(raw)
        if is_bus_event(record):
            return None if is_echo(record) else parse_bus_event(record, len(raw))
        if "logGroupName" in record or "message" in record:
            return checked_log_record(record)
        raise RejectedRecord("unrecognised", "neither an EventBridge envelope nor a log record")
    except RejectedRecord as rejected:
        return quarantine_item("f", "line 1", rejected, raw)


def same_item(fast: Any, plain: Any) -> bool:
    """Equal as ingest uses them: a log record by what `parse_log_record` reads from it."""
    if type(fast) is dict and type(plain) is dict:
        return parse_log_record(fast) == parse_log_record(plain)
    return bool(fast == plain)


envelopes = st.fixed_dictionaries(
    {"id": st.sampled_from(["e1", "e2"]), "source": st.just("shop"),
     "detail-type": st.sampled_from(["OrderCreated", "X"]),
     "time": st.just("2024-05-01T10:00:00Z"),
     "detail": st.dictionaries(st.text(max_size=6), JSON, max_size=5)},
    optional={"resources": st.lists(JSON, max_size=3), "account": SCALARS, "replay-name": JSON})
log_records = st.fixed_dictionaries(
    {"logGroupName": st.just("/aws/lambda/f"), "logStreamName": st.just("s"),
     "timestamp": st.integers(min_value=0, max_value=2**63) | BIG,
     "message": st.sampled_from(["START RequestId: r1 Version: 1\n", "END RequestId: r1\n",
                                 "REPORT RequestId: r1\tDuration: 1.5 ms\t", '{"level":"x"}'])},
    optional={"eventId": st.text("0123456789", min_size=20, max_size=56), "ingestionTime": BIG,
              "extra": JSON})


def dumps(value: Any) -> bytes:
    """JSON text of a value with integers of any size (orjson refuses those beyond 64 bits)."""
    import json
    return json.dumps(value, separators=(",", ":")).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes | log_records | st.dictionaries(st.text(max_size=6), JSON, max_size=4))
def test_a_line_decoded_the_short_way_is_classified_as_the_plain_way_does(doc: Any) -> None:
    """Bus events (big integers kept exact), log records and quarantined lines come out the
    same whether or not the line was first decoded without the big-integer look."""
    raw = dumps(doc)
    assert same_item(classify_line(raw, "f", 1), plain_classify(raw))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40) | st.text(max_size=40).map(str.encode))
def test_any_bytes_are_classified_as_the_plain_way_does(raw: bytes) -> None:
    """Garbage lines too: the same quarantine record, reason and detail."""
    fast = classify_line(raw, "f", 1)
    assert same_item(fast, plain_classify(raw))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6) | st.sampled_from(["k@x.io"]), JSON, max_size=6),
       st.sampled_from([None, "a@b.io", "ord-1", "4111111111111111"]),
       st.booleans())
def test_redacting_the_decoded_detail_gives_what_redacting_its_text_gives(
        detail: dict[str, Any], key: str | None, keep: bool) -> None:
    """The fields to store and the redaction records are the same whether redaction walks
    the freshly decoded detail or decodes the stored text again."""
    text = orjson.dumps(decode_object(dumps(detail))).decode()  # as ingest holds it
    event = BusEvent("e1", "shop", "T", 0, text, len(text), correlation_key=key)
    redaction = RedactionSettings(KEY, keep_originals=keep)
    assert redact_fields(event, redaction, orjson.loads(text)) == redact_fields(event, redaction)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_the_inline_e_mail_test_finds_what_the_called_one_finds(document: Any) -> None:
    """The walk given `_has_at` (tested inline) replaces and reports what it does given any
    other function with the same answers."""
    inline: list[tuple[str, str]] = []
    called: list[tuple[str, str]] = []
    one = redact_document(copy.deepcopy(document), "$", set(), KEY, inline, _has_at)
    other = redact_document(copy.deepcopy(document), "$", set(), KEY, called,
                            lambda text: "@" in text)
    assert (one, inline) == (other, called)


def four_substring_tests(text: str) -> bool:
    """`_may_hold_key_or_number` as it was written before the pattern: four `in` tests."""
    if "AKIA" in text or "ASIA" in text or "AIDA" in text or "AROA" in text:
        return True
    return _may_hold_key_or_number(text.replace("A", "\u00c0"))  # the rest, no prefix left


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from("AKISDROX019 -+("), max_size=30))
def test_the_key_prefix_pattern_finds_what_four_substring_tests_find(text: str) -> None:
    """`_may_hold_key_or_number` answers as it did with `"AKIA" in text or ...`."""
    assert _may_hold_key_or_number(text) == four_substring_tests(text)


def test_a_block_stores_big_integers_of_events_exactly_and_reads_logs_beside_them() -> None:
    """A 25-digit number in an event's detail is kept as its digits; a log record with a
    56-digit id string beside it is read as usual."""
    event = (b'{"id":"e1","source":"s","detail-type":"T","time":"2024-05-01T10:00:00Z",'
             b'"detail":{"n":1234567890123456789012345}}')
    log = (b'{"logGroupName":"/aws/lambda/f","logStreamName":"s","timestamp":1714557600000,'
           b'"message":"START RequestId: r1 Version: 1\\n","eventId":"' + b"1" * 56 + b'"}')
    parsed = parse_block(Block("f", 1, event + b"\n" + log + b"\n"),
                         LineOptions(redaction=RedactionSettings(KEY)))
    assert [row[9] for row in parsed.event_rows] == ['{"n":"1234567890123456789012345"}']
    assert parsed.log_records == 1 and len(parsed.log_facts) == 1
    assert not [item for item in parsed.quarantined if isinstance(item, Quarantined)]


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_categories=["Cs"]), max_size=40), st.binary(max_size=70))
def test_a_token_is_the_hmac_of_its_value_under_the_key(value: str, key: bytes) -> None:
    """The copied keyed HMAC gives the token `hmac.new(key, value)` gives, for any key."""
    import hashlib
    import hmac

    from eventscope.redaction import token
    expected = hmac.new(key, value.encode(), hashlib.sha256)
    assert token(value, "email", key) == f"pii:email:{expected.hexdigest()[:16]}"


AT_TEXT = st.sampled_from(["a@b.io", "x ann@example.com y", "@", "a@@b", "no", "k@x.io z@y.io"])
AT_JSON = st.recursive(st.none() | st.integers(-10, 10) | AT_TEXT | st.text(max_size=5),
                       lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(AT_TEXT | st.text(max_size=4), inner, max_size=4),
                       max_leaves=25)


@settings(max_examples=400, deadline=None)
@given(AT_JSON)
def test_a_walk_that_stops_once_every_at_sign_is_met_finds_what_a_full_walk_finds(
        document: Any) -> None:
    """Given `string_filter`'s check for an e-mail-only document (which stops the walk once
    strings holding all the text's "@" characters have been met), redaction replaces and
    reports exactly what a walk of every value does."""
    from eventscope.redaction import string_filter
    text = orjson.dumps(document).decode()
    check = string_filter(text)
    if check is None or check is _has_at:
        return  # not an e-mail-only document: no early stop to compare
    early: list[tuple[str, str]] = []
    full: list[tuple[str, str]] = []
    one = redact_document(orjson.loads(text), "$", set(), KEY, early, check)
    other = redact_document(orjson.loads(text), "$", set(), KEY, full, lambda t: "@" in t)
    assert (one, early) == (other, full)


MESSAGES = st.sampled_from([
    "START RequestId: r1 Version: $LATEST\n", "END RequestId: r1\n",
    "REPORT RequestId: r1\tDuration: 84.35 ms\tBilled Duration: 85 ms\tMax Memory Used: 111 MB",
    '{"time":"t","type":"platform.start","record":{"requestId":"r1"}}',
    '{"level":"ERROR","message":"boom","function_request_id":"r1","correlation_id":"e1"}',
    "[ERROR] KeyError: 'x'\nTraceback (most recent call last):", "INIT_START Runtime", "",
    "2024-05-01T10:00:00.000Z r1 Task timed out after 3.00 seconds"]) | st.text(max_size=30)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20), st.text(max_size=30), st.integers(0, 2**63), MESSAGES)
def test_a_checked_log_record_reads_as_parse_log_record_reads_it(
        group: str, stream: str, timestamp: int, message: str) -> None:
    """The ingest's read of a record with its four fields checked gives `parse_log_record`'s
    facts."""
    from eventscope.lambda_logs import parse_checked_record
    record = checked_log_record({"logGroupName": group, "logStreamName": stream,
                                 "timestamp": timestamp, "message": message})
    assert parse_checked_record(record) == parse_log_record(record)


TEXTS = st.text(max_size=8) | st.sampled_from(["a\x00b", "\ud800", "x\udfffy", "é", ""])
INTS = st.integers(min_value=-(2**63), max_value=2**63 - 1) | BIG


@settings(max_examples=400, deadline=None)
@given(st.builds(Invocation, request_id=TEXTS, consumer=TEXTS, log_group=TEXTS,
                 log_stream=TEXTS, start_ms=INTS, outcome=st.sampled_from(["ok", "error"]),
                 event_id=st.none() | TEXTS, end_ms=st.none() | INTS,
                 duration_ms=st.none() | st.floats(allow_nan=False),
                 error_type=st.none() | TEXTS, error_message=st.none() | TEXTS,
                 max_memory_mb=st.none() | INTS, complete=st.booleans(),
                 log_format=st.sampled_from(["text", "json"])))
def test_an_invocation_is_made_storable_as_the_generic_record_walk_makes_it(
        invocation: Invocation) -> None:
    """The store's check of an invocation by one getter gives what `poison.clean_record`
    gives (text escaped, the very record when clean) or refuses what it refuses."""
    from eventscope import poison
    from eventscope.store import clean_invocation
    try:
        plain: Any = poison.clean_record(invocation)
    except poison.Unstorable as exc:
        plain = ("refused", str(exc))
    try:
        fast: Any = clean_invocation(invocation)
    except poison.Unstorable as exc:
        fast = ("refused", str(exc))
    assert fast == plain
    if plain is invocation:
        assert fast is invocation


def plain_time_ms(value: Any, now_ms: int) -> int | str:
    """`parse_time_ms` as written before its whole-second shortcut, or the refusal's text."""
    from eventscope.events import EARLIEST_TIME_MS, FUTURE_LEEWAY_MS
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return f"time {value[:40]!r} is not ISO 8601"
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        time_ms = int(parsed.timestamp() * 1000)
    except (OverflowError, ValueError):
        time_ms = EARLIEST_TIME_MS - 1
    if not EARLIEST_TIME_MS <= time_ms <= now_ms + FUTURE_LEEWAY_MS:
        return f"time {value[:40]!r} is outside 2000-01-01 .. a day from now"
    return time_ms


WHOLE_SECONDS = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2035, 12, 31)
                             ).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"))


def spoiled(value: str, position: int, text: str) -> str:
    """`value` with `text` written over it at `position`."""
    return value[:position] + text + value[position + len(text):]


TIMES = (WHOLE_SECONDS
         | st.builds(spoiled, WHOLE_SECONDS, st.sampled_from([0, 5, 8, 10, 11, 13, 14, 15, 16, 17,
                                                              18, 19]),
                     st.sampled_from(["60", "99", "24", "13", "32", "00", "٣", "5", " ", "-",
                                      "T", "Z", "+", ":"]))
         | st.builds(lambda value, end: value[:-1] + end, WHOLE_SECONDS,
                     st.sampled_from(["", "+00:00", "+05:30", "z", ".5Z", "ZZ"]))
         | st.text("0123456789-T:Z+.", max_size=22))


@settings(max_examples=1000, deadline=None)
@given(TIMES)
def test_a_whole_second_time_is_read_as_the_iso_parser_reads_it(value: str) -> None:
    """`2024-05-01T10:00:12Z` read from its cached minute plus its seconds gives what
    `datetime.fromisoformat` gives, and every other shape (or invalid hour, minute, second)
    is refused with the same reason."""
    from eventscope.events import parse_time_ms
    now_ms = 1_800_000_000_000
    try:
        fast: int | str = parse_time_ms(value, now_ms)
    except RejectedRecord as refused:
        fast = str(refused)
    assert fast == plain_time_ms(value, now_ms)


def nested(core: Any, shape: list[bool]) -> Any:
    """`core` wrapped in one list (True) or object (False) per entry of `shape`."""
    for in_list in reversed(shape):
        core = [core] if in_list else {"k": core}
    return core


DEEP = st.builds(nested, JSON | BIG | st.dictionaries(st.just("n"), BIG, max_size=1),
                 st.lists(st.booleans(), min_size=55, max_size=70))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["detail", "id", "n", "s"]), DEEP | JSON, min_size=1,
                       max_size=3),
       st.sampled_from(["", " ", "\n "]))
def test_a_kept_document_is_checked_as_decode_object_checks_it(doc: Any, space: str) -> None:
    """The one pass for depth and big integers (`checked_kept` after `decode_unchecked`)
    gives what `decode_object` gives, or refuses with the same reason and message, around
    the depth limit (objects and arrays) and with integers beyond 64 bits at any depth."""
    from eventscope.decoding import checked_kept, decode_unchecked
    import json
    raw = json.dumps(doc, separators=("," + space, ":" + space)).encode()

    def outcome(decode: Any) -> Any:
        try:
            return decode(raw)
        except RejectedRecord as refused:
            return (refused.reason, str(refused))
    assert outcome(lambda raw: checked_kept(raw, decode_unchecked(raw))) == outcome(
        decode_object)


LINE_KINDS = st.sampled_from([
    b'{"id":"e1","source":"s","detail-type":"T","time":"2024-05-01T10:00:00Z","detail":{}}',
    b'{"logGroupName":"/aws/lambda/f","logStreamName":"s","timestamp":1714557600000,'
    b'"message":"END RequestId: r1\\n"}',
    b"not json", b"", b" ", b"\t \t", b"\r", b"\r\r", b"{}", b"[1]"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(LINE_KINDS, st.sampled_from([b"", b"\r", b" ", b"\r\r"])),
                max_size=8), st.booleans(), st.integers(1, 5))
def test_a_block_reads_the_lines_splitting_on_newlines_gives(
        lines: list[tuple[bytes, bytes]], trailing: bool, first_line: int) -> None:
    """Lines found by `io.BytesIO` are those of `data.split(b"\\n")` with "\\r" stripped:
    the same items, numbered the same (blank, whitespace-only and "\\r"-ended lines among
    them, with or without a final newline)."""
    data = b"\n".join(line + end for line, end in lines) + (b"\n" if trailing else b"")
    parsed = parse_block(Block("f", first_line, data), LineOptions())
    events, quarantined, records, count = [], [], 0, 0
    for line_no, raw in enumerate(data.split(b"\n"), first_line):
        raw = raw.rstrip(b"\r")
        if not raw or (raw[0] in b" \t" and not raw.strip()):  # as parse_block skips
            continue
        count += 1
        item = classify_line(raw, "f", line_no)
        if isinstance(item, BusEvent):
            events.append(item)
        elif isinstance(item, Quarantined):
            quarantined.append(item)
        elif item is not None:
            records += 1
    assert parsed.lines == count
    assert [event_of_row(row) for row in parsed.event_rows] == events
    assert parsed.quarantined == quarantined and parsed.log_records == records


PATH_DOCS = st.recursive(SCALARS, lambda inner: st.dictionaries(
    st.sampled_from(["detail", "orderId", "order", "id", "a.b"]), inner, max_size=3)
    | st.lists(inner, max_size=2), max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["detail", "id", "orderId"]), PATH_DOCS, max_size=3),
       st.lists(st.sampled_from(["detail.orderId", "detail.order.id", "id", "detail",
                                 "orderId", "detail.a", "detail.a.b"]), max_size=3))
def test_the_first_value_is_what_looking_up_each_path_finds(doc: dict[str, Any],
                                                            paths: list[str]) -> None:
    """`first_value`, walking the paths inline, gives the first scalar `lookup` finds."""
    from eventscope.events import first_value, lookup
    plain = next((str(value) for value in (lookup(doc, path) for path in paths)
                  if value is not None and not isinstance(value, (dict, list))), None)
    assert first_value(doc, paths) == plain


def test_a_line_of_a_big_integer_alone_is_refused_as_the_exact_decode_names_it() -> None:
    """A top-level integer beyond 64 bits (or a list of one) is quarantined with the plain
    path's words, "JSON str" or "JSON list", not the float orjson makes of it."""
    for raw in (b"20000000000000000000", b"-9223372036854775809", b"[1,20000000000000000000]"):
        assert same_item(classify_line(raw, "f", 1), plain_classify(raw))
    assert classify_line(b"20000000000000000000", "f", 1).detail == (  # type: ignore[union-attr]
        "JSON str, not an object")
