"""PII redaction before anything is stored: detectors, keyed hashing, and the record of it.

Owns finding personal data in an event's detail (fields the catalog declares as PII, and
values the detectors recognise: e-mail addresses, card numbers that pass the Luhn check,
phone numbers, AWS access key ids, US social security numbers; the only PII patterns in
eventscope: the dashboard masks free text with `mask_pii`, which finds exactly what
`scrub_text` replaces) and replacing it by a keyed hash token `pii:<detector>:<hex>`
(HMAC-SHA256 with a configured key, so equal values still correlate and nobody without the key
can test guesses). Values, object keys, the envelope's `resources` and the correlation key are
all looked at; so are quarantined raw inputs and consumers' error messages (`scrub_quarantined`,
`scrub_invocations`). Each replacement is reported as a `Redaction` (event, detail-type, JSON
path, detectors). With `keep_originals` the values are left as they are and only reported.
Checks on a detail's whole text (`string_filter`) spare the walk of details on which no
detector can fire, and narrow it to e-mail candidates where that is all there can be.
Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import orjson

from eventscope.records import BusEvent, Invocation, Quarantined

TOKEN_PREFIX = "pii:"
_TOKEN = re.compile(r"pii:[a-z_]+:[0-9a-f]{16}")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Card numbers start with a banking/financial major industry identifier (2-6), which also keeps
# epoch timestamps in seconds, milliseconds and microseconds (all starting with 1) out.
_CARD = re.compile(r"(?<![\w-])[2-6](?:[ -]?\d){12,18}(?![\w-])")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?"
                    r"\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
                    r"|\(\d{3}\)[ .-]?\d{3}[ .-]?\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?![\w])")
# The cheap pre-filter (`may_hold_pii`): digits become "0" and separators vanish, so a card or
# a phone number shows as a run of zeros. Plain C-level byte operations, no regex.
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0000000000")
_SEPARATORS = b" ().-"
# The same, with the letters after an AWS key id prefix's "A" as "K": each of AKIA, ASIA, AIDA
# and AROA shows as "AKKA", found by one `find` (the pattern is tried only then). Letters
# never become "0", so runs of zeros are those of `_DIGITS_AS_ZERO`.
_FOLDED = bytes.maketrans(b"0123456789KSIDRO", b"0000000000KKKKKK")
# An AWS key id's prefix: one pattern led by a literal scans several times faster than four
# substring tests.
_KEY_PREFIX = re.compile(r"A(?:KI|SI|ID|RO)A")
_AWS_KEY = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{16}(?![A-Z0-9])")
# A US social security number as written (AAA-GG-SSSS, dashes or spaces): the Social Security
# Administration never issues area 000, 666 or 900-999, group 00 or serial 0000.
_SSN = re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\w-])")


@dataclass(frozen=True)
class RedactionSettings:
    """The key, whether to keep originals, and the catalog's PII fields per detail-type."""

    key: bytes
    keep_originals: bool = False
    catalog_fields: Mapping[str, Sequence[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Redaction:
    """One value found to be PII: where, by what, and whether it was replaced."""

    event_id: str
    detail_type: str
    json_path: str
    detector: str
    replaced: bool


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def is_token(value: object) -> bool:
    """Whether a stored value is a PII token this module put in place of the original (its
    schema can no longer be checked: an object made one token, an e-mail past its `format`)."""
    return isinstance(value, str) and value.startswith(TOKEN_PREFIX)


def token(value: str, detector: str, key: bytes) -> str:
    """The keyed hash token that replaces a PII value: HMAC-SHA256 of it under `key`."""
    inner, outer = _keyed(key)
    inner = inner.copy()  # cheaper than keying HMAC again for every value
    inner.update(value.encode())
    outer = outer.copy()
    outer.update(inner.digest())
    return f"{TOKEN_PREFIX}{detector}:{outer.hexdigest()[:16]}"


@lru_cache(maxsize=8)
def _keyed(key: bytes) -> tuple[Any, Any]:
    """HMAC-SHA256 keyed with `key` (RFC 2104, as `hmac` builds it), fed nothing yet: the
    inner and outer SHA-256 states, copied for each value (two plain hash copies cost less
    than `hmac.HMAC.copy`'s)."""
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    return (hashlib.sha256(key.translate(hmac.trans_36)),
            hashlib.sha256(key.translate(hmac.trans_5C)))


def may_hold_pii(text: str) -> bool:
    """False when no detector can match the text (true for most payloads): a fast pre-filter."""
    if len(text) < 8:  # the shortest e-mail is 6 characters, a phone number 8 digits
        return len(text) > 5 and "@" in text
    return "@" in text or _may_hold_key_or_number(text)


def _may_hold_key_or_number(text: str) -> bool:
    """Whether an AWS key id, a card or a phone number may be in the text."""
    return _KEY_PREFIX.search(text) is not None or _may_hold_number(text, _encoded(text))


def _encoded(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:  # lone surrogates (undecodable bytes of a quarantined input)
        return text.encode("utf-8", "surrogatepass")


def _may_hold_number(text: str, encoded: bytes, digits: bytes | None = None) -> bool:
    """Whether a card, phone or social security number may be in the text (`encoded`);
    `digits`, when given, is `encoded.translate(_FOLDED, _SEPARATORS)`."""
    # `find`, not `in`: Python 3.11 tries a `bytes` needle of `in` as an integer first, and
    # builds (and drops) a TypeError each time.
    if digits is None:
        digits = encoded.translate(_DIGITS_AS_ZERO, _SEPARATORS)
    if "+" in text or "(" in text:  # a dialled number needs 8 digits
        return digits.find(b"00000000") >= 0
    if digits.find(b"000000000") < 0:  # 9: a social security number's digits
        return False
    if digits.find(b"0000000000") >= 0:  # 10: cards, other phone numbers
        return True
    shaped = encoded.translate(_DIGITS_AS_ZERO)  # AAA-GG-SSSS, dashes or spaces
    return shaped.find(b"000-00-0000") >= 0 or shaped.find(b"000 00 0000") >= 0


def string_filter(document: str) -> Callable[[str], bool] | None:
    """For a JSON document's text as orjson writes it, a check that passes every string value
    (or key) of it on which a detector can fire, as cheap as the document allows; None when
    no value can hold PII (nor an integer be a card number).

    orjson escapes nothing but quotes, backslashes and control characters, so digits,
    separators and capital letters stand in the text as in the values: a document without a
    key id or a long digit run anywhere has none in any value either. Where there are digit
    runs, the detectors are tried on each run (`_numbers_match`); when none matches, or the
    text has none, only values with an "@" (e-mail addresses) need a look.
    """
    encoded = _encoded(document)
    folded = encoded.translate(_FOLDED, _SEPARATORS)
    if folded.find(b"AKKA") >= 0 and _KEY_PREFIX.search(document) is not None:
        return may_hold_pii
    if _may_hold_number(document, encoded, folded) and (
            _ESCAPED_CONTROL.search(document) is not None or _numbers_match(encoded)):
        return may_hold_pii
    if "@" not in document:
        return None
    # Every "@" of JSON text is in a string (key or value) unless written as an escape.
    return _has_at if "\\u" in document else _AtOnly(document.count("@"))


# Every character a card, phone or social security number match can hold (digits, their
# separators, a dialled number's "+" and parentheses) becomes "0", and so does every byte of a
# non-ASCII character (a Unicode digit is a digit to the patterns): a match lies within one
# run of zeros at least 8 long (a phone number's digits), and the characters just outside
# the run are what the patterns' look-behind and look-ahead see.
_NUMBER_CHARS = bytes.maketrans(b"0123456789 ().-+" + bytes(range(128, 256)), b"0" * 144)
_NUMBER_RUN = re.compile(b"0" * 8 + b"+")
_ESCAPED_CONTROL = re.compile(r"\\[bfnrtu]")  # how orjson writes a control character
_NEGATIVE_CARD = re.compile(r"-([2-6]\d{12,18})(?!\d)")  # a card number as a negative integer


def _numbers_match(encoded: bytes) -> bool:
    """Whether a card, phone or social security number detector accepts a match in the text
    of a JSON document without escaped control characters (which would show a look-behind
    a letter where the value has none), or a negative integer is a card number: tried on each
    run of number characters with the character either side, not on the whole text."""
    for run in _NUMBER_RUN.finditer(encoded.translate(_NUMBER_CHARS)):
        start, end = run.span()
        if _too_plain(encoded[start:end]):
            continue
        window = encoded[max(start - 1, 0):end + 1].decode("utf-8", "surrogatepass")
        for _, pattern, accept in _NUMBER_DETECTORS:
            if any(accept(match) for match in pattern.finditer(window)):
                return True
        if any(_card_number(match.group(1)) for match in _NEGATIVE_CARD.finditer(window)):
            return True
    return False


_NUMBER_SEPARATORS = b" ().-+"
_PLUS, _OPENING = b"+("


def _too_plain(run: bytes) -> bool:
    """Whether no detector can match within a run of number characters (a date, an id's
    digits): fewer than 8 digits (a phone number's least), or without a "+" or "(" fewer than
    9 (a social security number's), or fewer than 13 (a card's) with no separator between
    them (a social security number and an undialled phone number have separators). A
    non-ASCII character counts as two or more digits here and is not `isdigit()`, so a run
    holding one (a Unicode digit, say) is never judged too plain wrongly."""
    digits = len(run.translate(None, _NUMBER_SEPARATORS))
    if digits < 8:
        return True
    if _PLUS in run or _OPENING in run:  # as integers: see `_may_hold_number`
        return False
    return digits < 9 or (digits < 13 and run.strip(_NUMBER_SEPARATORS).isdigit())


def _has_at(text: str) -> bool:
    return "@" in text


class _AtOnly:
    """`_has_at` for one document whose text holds `ats` "@" characters, none escaped: a walk
    that has met strings holding that many has met every string that can hold an e-mail."""

    __slots__ = ("ats",)

    def __init__(self, ats: int) -> None:
        self.ats = ats

    def __call__(self, text: str) -> bool:
        return "@" in text


def detect(value: Any) -> str | None:
    """The detector that recognises PII in one scalar value, or the kind a token names."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    if isinstance(value, int):
        return "card" if _card_number(str(abs(value))) else None
    if value.startswith(TOKEN_PREFIX) and _TOKEN.fullmatch(value):
        return value.split(":")[1]
    if not may_hold_pii(value):
        return None
    for name, pattern, accept in _DETECTORS:
        if any(accept(match) for match in pattern.finditer(value)):
            return name
    return None


def _card_number(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_valid(digits)


def _card_match(match: re.Match[str]) -> bool:
    return _card_number(re.sub(r"[ -]", "", match.group()))


_DETECTORS: tuple[tuple[str, re.Pattern[str], Callable[[re.Match[str]], bool]], ...] = (
    ("email", _EMAIL, lambda m: True),
    ("aws_key", _AWS_KEY, lambda m: True),
    ("card", _CARD, _card_match),
    ("ssn", _SSN, lambda m: True),
    ("phone", _PHONE, lambda m: sum(c.isdigit() for c in m.group()) >= 8),
)
_NUMBER_DETECTORS = tuple(d for d in _DETECTORS if d[0] in ("card", "ssn", "phone"))


def replace_pii(text: str, replacement: Callable[[str, str], str]) -> tuple[str, list[str]]:
    """The text with every value a detector recognises replaced by `replacement(value,
    detector)`, and the detectors that fired. Tokens already in the text are left as they are.

    The one place free text is searched for PII: the store's `scrub_text` and the dashboard's
    masking both call it, so a page never shows what the store would have redacted.
    """
    fired: list[str] = []
    if not may_hold_pii(text):
        return text, fired
    numbers: bool | None = None  # whether `_may_hold_number` passes the text as it is now
    for name, pattern, accept in _DETECTORS:
        # Each detector is tried only where it can match (in the text as changed so far).
        if name == "email":
            if "@" not in text:
                continue
        elif name == "aws_key":
            if _KEY_PREFIX.search(text) is None:
                continue
        else:
            if numbers is None:
                numbers = not text.isascii() or _may_hold_number(text, text.encode())
            if not numbers:
                continue
        before = len(fired)

        def substitute(match: re.Match[str], name: str = name,
                       accept: Callable[[re.Match[str]], bool] = accept) -> str:
            if _TOKEN.fullmatch(match.group()) or not accept(match):
                return match.group()
            fired.append(name)
            return replacement(match.group(), name)
        text = pattern.sub(substitute, text)
        if len(fired) > before:
            numbers = None
    return text, fired


def scrub_text(text: str, key: bytes) -> tuple[str, list[str]]:
    """The text with every detected value replaced by its token, and the detectors that fired."""
    return replace_pii(text, lambda value, name: token(value, name, key))


def mask_pii(text: str, mask: str) -> str:
    """The text as a page may show it: every value `scrub_text` would replace becomes `mask`."""
    return replace_pii(text, lambda value, name: mask)[0]


def redact_document(document: Any, path: str, declared: set[str], key: bytes,
                    found: list[tuple[str, str]],
                    maybe: Callable[[str], bool] = may_hold_pii) -> Any:
    """A JSON value with PII replaced; (path, detector) pairs appended to `found`.

    Objects and arrays are changed in place (give a freshly decoded document), scalars are
    replaced, and the value is returned. String values failing `maybe` (a pre-filter at least
    as wide as `may_hold_pii`, such as `string_filter`'s) are not looked at.
    """
    def replacement(value: str, detector: str) -> str:
        return token(value, detector, key)
    budget = [maybe.ats] if type(maybe) is _AtOnly and not declared else None
    return _redact(document, (None, path), declared, replacement, found, maybe, budget)


def mask_document(document: Any, path: str, declared: set[str], mask: str) -> Any:
    """A JSON value as a page may show it: what `redact_document` would replace becomes `mask`
    (a declared field whole, object or list included; a detected value where it stands).
    Changed in place like `redact_document` (give a freshly decoded document). Tokens already
    in it stay: they are what the store holds, not the value."""
    return _redact(document, (None, path), declared, lambda value, detector: mask, [],
                   may_hold_pii)


_Where = tuple[Any, str]  # (the parent's _Where or None, this node's path segment)
_Replace = Callable[[str, str], str]  # (value, detector) -> what stands in its place


def _redact(node: Any, where: _Where, declared: set[str], replacement: _Replace,
            found: list[tuple[str, str]], maybe: Callable[[str], bool],
            budget: list[int] | None = None) -> Any:
    """`redact_document`, with paths built only for containers and for what is found.

    `budget` (e-mail-only documents, `_AtOnly`): the "@" characters not yet met in a string;
    at zero the rest of the document holds no candidate and is not walked."""
    if declared and node is not None and _render(where) in declared:
        found.append((_render(where), "catalog"))
        return replacement(orjson.dumps(node).decode(), "catalog")
    kind = type(node)
    at_only = budget is not None or maybe is _has_at  # tested inline: cheaper than a call
    if kind is dict:
        for name in node:  # JSON object keys are strings; a loop is cheaper than any()
            if ("@" in name) if at_only else maybe(name):
                if budget is not None:
                    budget[0] -= sum(key.count("@") for key in node)
                node = _redact_keys(node, where, replacement, found)
                break
        children: Any = node.items()
        segment = ".{}".format
    elif kind is list:
        children, segment = enumerate(node), "[{}]".format
    else:
        return _redact_scalar(node, where, replacement, found)
    for name, child in children:
        if budget is not None and budget[0] <= 0:
            break  # every "@" of the document met: nothing further can be an e-mail
        child_kind = type(child)
        if not declared and child_kind is not dict and child_kind is not list:
            if child_kind is str:
                if ("@" not in child) if at_only else not maybe(child):
                    continue  # the common case, without a path
                if budget is not None:
                    budget[0] -= child.count("@")
            elif child_kind is not int or -10**12 < child < 10**12:
                continue  # only long integers can be card numbers
            new = _redact_scalar(child, (where, segment(name)), replacement, found)
        else:
            new = _redact(child, (where, segment(name)), declared, replacement, found, maybe,
                          budget)
        if new is not child:
            node[name] = new
    return node


def _redact_keys(node: dict[str, Any], where: _Where, replacement: _Replace,
                 found: list[tuple[str, str]]) -> dict[str, Any]:
    """The object with PII in its keys replaced (a new dict, members in their order); each
    replaced key is reported at the member's path, which names the token, never the value."""
    renamed: dict[str, Any] = {}
    for name, child in node.items():
        scrubbed, fired = replace_pii(name, replacement)
        if fired:
            found.extend((_render((where, f".{scrubbed}")), kind) for kind in dict.fromkeys(fired))
            name = scrubbed
        renamed[name] = child
    return renamed


def _redact_scalar(value: Any, where: _Where, replacement: _Replace,
                   found: list[tuple[str, str]]) -> Any:
    kind = type(value)
    if kind is str:
        scrubbed, fired = replace_pii(value, replacement)  # its own pre-filter first
        found.extend((_render(where), name) for name in dict.fromkeys(fired))
        return scrubbed if fired else value
    if kind is int and abs(value) >= 10**12 and _card_number(str(abs(value))):
        found.append((_render(where), "card"))
        return replacement(str(abs(value)), "card")
    return value


def _render(where: _Where) -> str:
    segments: list[str] = []
    current: _Where | None = where
    while current is not None:
        current, segment = current
        segments.append(segment)
    return "".join(reversed(segments))


def redact_event(event: BusEvent, settings: RedactionSettings) -> tuple[BusEvent, list[Redaction]]:
    """The event as it may be stored, and what was (or, keeping originals, would be) redacted."""
    changes, records = redact_fields(event, settings)
    return (replace(event, **changes) if changes else event), records


CORRELATION_KEY_PATH = "correlation_key"  # how a redacted correlation key is named in `redactions`


def redact_fields(event: BusEvent, settings: RedactionSettings,
                  detail: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[Redaction]]:
    """The fields of the event to store in place of the received ones (`detail`, `resources`,
    `correlation_key`; none when nothing is replaced or originals are kept), and what was (or,
    keeping originals, would be) redacted.

    The correlation key gets the token its value gets in the detail, so an order's events
    still share it and `stored_query` finds them. `detail`, when given, is the event's detail
    freshly decoded (what `orjson.loads(event.detail)` gives): it is walked, and changed, in
    place of decoding the text again.
    """
    return redact_parts(event.id, event.detail_type, event.detail, event.resources,
                        event.correlation_key, settings, detail)


def redact_parts(event_id: str, detail_type: str, detail_text: str, resources: str,
                 correlation_key: str | None, settings: RedactionSettings,
                 detail: dict[str, Any] | None = None
                 ) -> tuple[dict[str, Any], list[Redaction]]:
    """`redact_fields` of an event given as the fields it reads (ingest holds rows)."""
    fields = settings.catalog_fields.get(detail_type) if settings.catalog_fields else None
    declared = {_as_path(p) for p in fields} if fields else set()
    found: list[tuple[str, str]] = []
    new: dict[str, str] = {}
    key_token: str | None = None
    maybe = string_filter(detail_text) if not declared else may_hold_pii
    if maybe is not None:
        if detail is None:
            detail = orjson.loads(detail_text)
        key_token = _declared_token(detail, declared, correlation_key, settings.key)
        redacted = redact_document(detail, "$.detail", declared, settings.key, found, maybe)
        if found:
            new["detail"] = orjson.dumps(redacted).decode()
    if resources != "[]" and (maybe := string_filter(resources)) is not None:
        before = len(found)
        redacted = redact_document(orjson.loads(resources), "$.resources", set(), settings.key,
                                   found, maybe)
        if len(found) > before:
            new["resources"] = orjson.dumps(redacted).decode()
    # A key still found as a whole string in the redacted detail was a value left as it is.
    if correlation_key is not None and (settings.keep_originals or (
            f'"{correlation_key}"' not in new.get("detail", detail_text))):
        stored = key_token or stored_query(correlation_key, settings.key)
        if stored != correlation_key:
            found.append((CORRELATION_KEY_PATH, stored.split(":")[1]))
            new["correlation_key"] = stored
    if not found:
        return {}, []
    replaced = not settings.keep_originals
    records = [Redaction(event_id, detail_type, path, detector, replaced)
               for path, detector in dict.fromkeys(found)]
    return (new if replaced else {}), records


def _declared_token(detail: Any, declared: set[str], correlation_key: str | None,
                    key: bytes) -> str | None:
    """The catalog token of the correlation key when it is the value of a declared field."""
    if correlation_key is None or not declared:
        return None
    for path in declared:
        node: Any = {"$": {"detail": detail}}
        for part in path.split("."):  # `_as_path`'s form: $.detail.customer.email
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None and not isinstance(node, (dict, list)) and str(node) == correlation_key:
            return token(orjson.dumps(node).decode(), "catalog", key)
    return None


_TOKEN = re.compile(re.escape(TOKEN_PREFIX) + r"[a-z_]+:[0-9a-f]{16}")  # what `token` makes


def stored_query(value: str, key: bytes) -> str:
    """A value (an order id, a search) as the store holds it: tokens in place of what a
    detector recognises. Faces search with it and show it, never the value typed. Tokens
    already in the value are kept (a token's hex digits can look like a card number), so the
    stored form of a stored form is itself."""
    parts, start = [], 0
    for found in _TOKEN.finditer(value):
        parts += [scrub_text(value[start:found.start()], key)[0], found.group()]
        start = found.end()
    return "".join([*parts, scrub_text(value[start:], key)[0]])


def redact_events(events: Sequence[BusEvent], settings: RedactionSettings
                  ) -> tuple[list[BusEvent], list[Redaction]]:
    """`redact_event` over a batch."""
    kept: list[BusEvent] = []
    records: list[Redaction] = []
    for event in events:
        clean, found = redact_event(event, settings)
        kept.append(clean)
        records.extend(found)
    return kept, records


def scrub_invocations(invocations: list[Invocation], settings: RedactionSettings
                      ) -> list[Invocation]:
    """Invocations with PII in their error messages replaced (unless originals are kept)."""
    if settings.keep_originals:
        return invocations
    return [_scrubbed(invocation, settings.key) if invocation.error_message else invocation
            for invocation in invocations]


def _scrubbed(invocation: Invocation, key: bytes) -> Invocation:
    scrubbed, fired = scrub_text(invocation.error_message or "", key)
    return replace(invocation, error_message=scrubbed) if fired else invocation


def scrub_quarantined(items: list[Quarantined], settings: RedactionSettings) -> list[Quarantined]:
    """Quarantined inputs with PII in their raw bytes and explanation replaced (unless
    originals are kept). Bytes that are not UTF-8 are kept as they are."""
    if settings.keep_originals:
        return items
    return [_scrubbed_quarantine(item, settings.key) for item in items]


def _scrubbed_quarantine(item: Quarantined, key: bytes) -> Quarantined:
    raw, raw_fired = scrub_text(item.raw.decode("utf-8", "surrogateescape"), key)
    detail, detail_fired = scrub_text(item.detail, key)
    if not raw_fired and not detail_fired:
        return item
    return replace(item, raw=raw.encode("utf-8", "surrogateescape"), detail=detail)


def redaction_rows(found: Sequence[Redaction], now_ms: int) -> list[dict[str, Any]]:
    """`redactions` table rows (eventscope.tables) for what redaction found: one per field,
    its `detector` naming every detector that fired there, comma-separated."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in found:
        row = rows.get((r.event_id, r.json_path))
        if row is None:
            rows[(r.event_id, r.json_path)] = {
                "event_id": r.event_id, "json_path": r.json_path, "detail_type": r.detail_type,
                "detector": r.detector, "replaced": r.replaced, "redacted_ms": now_ms}
        elif r.detector not in row["detector"].split(","):
            row["detector"] += "," + r.detector
    return list(rows.values())


def is_redacted(detail: str) -> bool:
    """Whether a stored detail carries redaction tokens (and so cannot be replayed as sent)."""
    return _TOKEN.search(detail) is not None


def _as_path(dotted: str) -> str:
    """A catalog path (`detail.customer.email`) as the JSON path used here."""
    return "$." + dotted.removeprefix("$.")
