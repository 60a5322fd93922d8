"""Pact message pacts (specification v2, v3 and v4) imported as consumer contracts.

Owns reading a message pact (v2/v3 `messages`, v4 `Asynchronous/Messages` interactions, in
every spelling the Pact tools write: `contents`/`content`, `metaData`/`metadata`,
`pactSpecification`/`pact-specification`) and turning each message into a subscription whose
contract is a JSON Schema (2020-12) of the message body that accepts exactly what Pact's own
matching accepts, as far as JSON Schema can say it:

- a value without a matching rule must equal the example (`const`); an object must have the
  example's keys (extra keys are allowed: messages are matched like responses); an array must
  have the example's length, each element matched at its own index;
- a rule applies to its path and cascades to every descendant without a better rule; the most
  specific path wins (Pact's weighting: `$` and names and indexes 2, `*` and `[*]` 1,
  multiplied, times the path length); `min`/`max` apply only where the rule is written;
- an array under a rule is matched element by element against the example's element at the
  same index, and beyond it against the first element (`eachLike`, `atLeastOneLike`, ...);
- several matchers on one path combine with AND (`allOf`) or OR (`anyOf`).

Example values of matched fields are kept as JSON Schema `examples`, never as constraints. The
module is pure: the CLI reads the files and writes the catalog.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from jsonschema import Draft202012Validator

from eventscope.catalog.model import Consumer, Subscription
from eventscope.errors import InputError

_MISSING = object()
_TYPE_KEYS = ("detail-type", "detailType", "detail_type", "eventType", "event-type",
              "event_type")
_SEMVER = (r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
           r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
           r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
           r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")
_DEFAULT_FORMATS = {"date": "yyyy-MM-dd", "time": "HH:mm:ss",
                    "timestamp": "yyyy-MM-dd'T'HH:mm:ssXXX"}


class Refused(InputError):
    """A message eventscope cannot turn into a contract; the message says why."""


@dataclass(frozen=True)
class ImportedMessage:
    """One message of the pact, the event type it was mapped to and how that was decided."""

    description: str
    detail_type: str
    type_from: str  # "--event-type", "metadata 'detail-type'", "envelope", "description", ...
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PactImport:
    """What one pact gives: the consumer, each imported message, each refused one (with why)."""

    consumer: Consumer
    specification: str
    messages: tuple[ImportedMessage, ...] = ()
    refused: tuple[str, ...] = ()


def consumer_id(name: str) -> str:
    """A pacticipant name as a catalog consumer id: letters, digits, `.`, `_`, `-` only.

    The id names the file `consumers/<id>.yaml`, so nothing in it can climb out of the folder.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_name)
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    cleaned = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)
    if not cleaned:
        raise InputError(f"pact consumer name {name!r} has no letter or digit to make an id of")
    return cleaned


def specification_version(pact: Mapping[str, Any]) -> str:
    """The pact's specification version, from any of the spellings the Pact tools write."""
    metadata = pact.get("metadata") or pact.get("metaData") or {}
    if not isinstance(metadata, Mapping):
        return ""
    for key in ("pactSpecification", "pact-specification", "pact_specification"):
        value = metadata.get(key)
        if isinstance(value, Mapping) and value.get("version") not in (None, ""):
            return str(value["version"])
    return str(metadata.get("pactSpecificationVersion") or "")


def import_pact(pact: Mapping[str, Any], known_types: Iterable[str] = (), team: str = "",
                event_types: Mapping[str, str] | None = None) -> PactImport:
    """The consumer a message pact describes, with one contract per event type.

    `event_types` maps a message description to its detail-type (the CLI's `--event-type`);
    otherwise a message's metadata (`detail-type`, `detailType`, `eventType`, ...) decides,
    then an EventBridge envelope in the body, and only then the description.
    """
    version = _check_version(pact)
    raw_name = (pact.get("consumer") or {}).get("name") if isinstance(
        pact.get("consumer"), Mapping) else None
    if not raw_name or not isinstance(raw_name, str):
        raise InputError("pact has no consumer name (consumer.name)")
    name = consumer_id(raw_name)
    known = sorted(set(known_types), key=len, reverse=True)
    imported: list[tuple[ImportedMessage, Subscription]] = []
    refused: list[str] = []
    for description, message in _messages(pact, version, refused):
        try:
            imported.append(_import_message(description, message, known, event_types or {}))
        except InputError as why:  # this message only: a bad rule, a non-JSON body, ...
            refused.append(f"message {description!r}: {why}")
    provider = (pact.get("provider") or {}).get("name", "?") if isinstance(
        pact.get("provider"), Mapping) else "?"
    described = f"imported from the Pact v{version} pact with {provider}"
    if name != raw_name:
        described += f" (Pact consumer name {raw_name!r})"
    consumer = Consumer(name=name, team=team or name, description=described,
                        subscriptions=_subscriptions([s for _, s in imported]))
    return PactImport(consumer, version, tuple(m for m, _ in imported), tuple(refused))


def _check_version(pact: Mapping[str, Any]) -> str:
    version = specification_version(pact)
    if not version:  # no metadata: tell by shape, as the Pact libraries do
        if "messages" in pact:
            return "3"
        if any(isinstance(i, Mapping) and "type" in i for i in pact.get("interactions") or []):
            return "4"
        raise InputError("not a message pact: no messages and no pactSpecification version")
    major = re.match(r"\s*v?(\d+)", version)
    if major is None or major.group(1) not in ("2", "3", "4"):
        raise InputError(f"Pact specification {version!r} is not supported "
                         "(message pacts are v2, v3 or v4)")
    return version


def _messages(pact: Mapping[str, Any], version: str,
              refused: list[str]) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for index, message in enumerate(pact.get("messages") or []):
        if not isinstance(message, Mapping):
            refused.append(f"message {index}: not a JSON object")
            continue
        body = message.get("contents", message.get("content", _MISSING))
        found.append((str(message.get("description") or f"message {index}"),
                      {"body": body, "content_type": None, "encoded": False,
                       "metadata": message.get("metaData") or message.get("metadata") or {},
                       "rules": message.get("matchingRules")}))
    for index, interaction in enumerate(pact.get("interactions") or []):
        if not isinstance(interaction, Mapping):
            refused.append(f"interaction {index}: not a JSON object")
            continue
        description = str(interaction.get("description") or f"interaction {index}")
        kind = interaction.get("type")
        if kind != "Asynchronous/Messages":
            refused.append(f"interaction {description!r}: a {kind or 'HTTP'} interaction, "
                           "not an asynchronous message")
            continue
        contents = interaction.get("contents", _MISSING)
        body, content_type, encoded = contents, None, False
        if isinstance(contents, Mapping):  # a v4 body: content, contentType, encoded
            body = contents.get("content", _MISSING)
            content_type = contents.get("contentType")
            encoded = contents.get("encoded", False)
        found.append((description, {"body": body, "content_type": content_type,
                                    "encoded": encoded,
                                    "metadata": interaction.get("metadata") or {},
                                    "rules": interaction.get("matchingRules")}))
    if not found and not refused:
        raise InputError(f"the Pact v{version} file has no messages")
    return found


def _import_message(description: str, message: dict[str, Any], known: list[str],
                    event_types: Mapping[str, str]) -> tuple[ImportedMessage, Subscription]:
    metadata = message["metadata"] if isinstance(message["metadata"], Mapping) else {}
    body = _body(message, metadata)
    rules = _body_rules(message["rules"])
    notes: list[str] = []
    envelope = isinstance(body, dict) and "detail" in body and "detail-type" in body
    if body is _MISSING:
        contract: dict[str, Any] = {}
        notes.append("no body: the contract puts no constraint on detail")
    elif envelope:  # a whole EventBridge event: the contract is about its detail
        contract = _Builder(rules, notes).contract(body["detail"], ["$", "detail"])
    else:
        contract = _Builder(rules, notes).contract(body, ["$"])
    detail_type, type_from = _detail_type(description, metadata, body if envelope else None,
                                          known, event_types)
    source = metadata.get("source") or (body.get("source") if envelope else None)
    return (ImportedMessage(description, detail_type, type_from, tuple(notes)),
            Subscription(detail_type, str(source) if isinstance(source, str) else None, (),
                         contract))


def _body(message: dict[str, Any], metadata: Mapping[str, Any]) -> Any:
    body, encoded = message["body"], message["encoded"]
    content_type = message["content_type"] or next(
        (str(v) for k, v in metadata.items() if k.lower() in ("contenttype", "content-type")),
        None)
    if body is _MISSING or body is None:
        return _MISSING
    if content_type and not _is_json(content_type):
        raise Refused(f"its body is {content_type}, not JSON: no JSON Schema contract")
    if encoded not in (False, None, "", "json"):
        raise Refused(f"its body is encoded ({encoded}), not JSON: no JSON Schema contract")
    if isinstance(body, str) and encoded == "json":
        try:
            return json.loads(body)
        except ValueError as exc:
            raise Refused(f"its body is marked as JSON but does not parse: {exc}") from None
    if body == "":
        raise Refused("its body is empty, which Pact reads as 'the body must be empty': no "
                      "EventBridge detail can be")
    return body


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind in ("application/json", "text/json") or kind.endswith("+json")


def _detail_type(description: str, metadata: Mapping[str, Any], envelope: dict[str, Any] | None,
                 known: list[str], event_types: Mapping[str, str]) -> tuple[str, str]:
    if description in event_types:
        return event_types[description], "--event-type"
    for key in _TYPE_KEYS:
        value = metadata.get(key)
        if isinstance(value, str) and value:
            return value, f"metadata {key!r}"
    if envelope is not None and isinstance(envelope.get("detail-type"), str):
        return envelope["detail-type"], "the body's EventBridge envelope"
    named = next((t for t in known if re.search(rf"(?<![\w-]){_escape(t)}(?![\w-])",
                                                description)), None)
    if named:
        return named, "the description (names a catalogued type; fallback)"
    return description, "the description (fallback)"


def _subscriptions(subscriptions: list[Subscription]) -> tuple[Subscription, ...]:
    """One subscription per event type: several messages of one type accept any of them."""
    merged: dict[str, Subscription] = {}
    for sub in subscriptions:
        seen = merged.get(sub.detail_type)
        if seen is None:
            merged[sub.detail_type] = sub
        elif not _same(seen.contract, sub.contract):
            first, other = seen.contract or {}, sub.contract or {}
            alternatives = first["anyOf"] if set(first) == {"anyOf"} else [first]
            contract = {} if {} in (*alternatives, other) else {"anyOf": [*alternatives, other]}
            merged[sub.detail_type] = Subscription(sub.detail_type, seen.source or sub.source,
                                                   (), contract)
    return tuple(merged.values())


def contract_schema(body: Any, matching_rules: Any = None) -> dict[str, Any]:
    """The JSON Schema a message body and its `matchingRules` (v2, v3 or v4 form) stand for.

    Raises `Refused` (an `InputError`) when no JSON Schema can say it.
    """
    return _Builder(_body_rules(matching_rules), []).contract(body, ["$"])


# --- matching rules -------------------------------------------------------------------------

@dataclass(frozen=True)
class _RuleList:
    matchers: tuple[dict[str, Any], ...]
    combine: str = "AND"


@dataclass
class _Rules:
    """Body matching rules: (path tokens, rule list), in the pact's order."""

    entries: list[tuple[tuple[tuple[str, Any], ...], _RuleList]] = field(default_factory=list)

    def best(self, path: list[str]) -> tuple[_RuleList, bool] | None:
        """The rule that governs `path` and whether it is cascaded from an ancestor."""
        chosen, score = None, 0
        for tokens, rule_list in self.entries:
            weight = _weight(tokens, path)
            if weight and weight * len(tokens) > score:
                chosen, score = (rule_list, len(tokens) != len(path)), weight * len(tokens)
        return chosen

    def exact(self, path: list[str]) -> list[dict[str, Any]]:
        """Every matcher written for exactly this path (Pact's `direct_matcher_defined`)."""
        return [m for tokens, rule_list in self.entries
                if len(tokens) == len(path) and _weight(tokens, path)
                for m in rule_list.matchers]


def _weight(tokens: tuple[tuple[str, Any], ...], path: list[str]) -> int:
    if len(path) < len(tokens):
        return 0
    weight = 1
    for (kind, value), fragment in zip(tokens, path):
        weight *= _token_weight(kind, value, fragment)
        if not weight:
            return 0
    return weight


def _token_weight(kind: str, value: Any, fragment: str) -> int:
    if kind == "root":
        return 2 if fragment == "$" else 0
    if kind == "field":
        return 2 if fragment == value else 0
    if kind == "index":
        return 2 if fragment.isdigit() and int(fragment) == value else 0
    if kind == "star_index":
        return 1 if fragment == "[*]" or fragment.isdigit() else 0
    return 1  # star


def _body_rules(matching_rules: Any) -> _Rules:
    """The body's rules from a v3/v4 `matchingRules` (category `body` or `content`) or a v2
    flat map (`$.body...` paths)."""
    rules = _Rules()
    if not isinstance(matching_rules, Mapping) or not matching_rules:
        return rules
    if str(next(iter(matching_rules))).startswith("$"):  # v2: one map, paths say the part
        body = {"$" + key[len("$.body"):]: rule for key, rule in matching_rules.items()
                if key == "$.body" or key.startswith(("$.body.", "$.body["))}
    else:
        body = matching_rules.get("body") or matching_rules.get("content") or {}
    return _parse_rules(body)


def _parse_rules(body: Any) -> _Rules:
    rules = _Rules()
    if not isinstance(body, Mapping):
        return rules
    for path, rule in body.items():
        rule_list = _rule_list(rule, str(path))
        if rule_list.matchers:  # an empty list says nothing; Pact's tools never write one
            rules.entries.append((_parse_path(str(path)), rule_list))
    return rules


def _rule_list(rule: Any, path: str) -> _RuleList:
    if isinstance(rule, Mapping) and "matchers" in rule:
        matchers = rule["matchers"] if isinstance(rule["matchers"], list) else []
        combine = str(rule.get("combine") or "AND").upper()
    elif isinstance(rule, Mapping):
        matchers, combine = [rule], "AND"
    else:
        raise InputError(f"matching rule for {path} is not a JSON object")
    return _RuleList(tuple(_matcher(m, path) for m in matchers),
                     "OR" if combine == "OR" else "AND")


_ALIASES = {"real": "decimal", "datetime": "timestamp", "min-type": "type", "max-type": "type",
            "min": "type", "max": "type", "not-empty": "notEmpty",
            "array-contains": "arrayContains", "each-key": "eachKey",
            "each-value": "eachValue", "content-type": "contentType",
            "status-code": "statusCode"}


def _matcher(matcher: Any, path: str) -> dict[str, Any]:
    """A matcher with its kind in `match`, guessed as Pact does when the key is missing."""
    if not isinstance(matcher, Mapping):
        raise InputError(f"a matcher for {path} is not a JSON object")
    found = dict(matcher)
    kind = found.get("match")
    if kind is None:
        kind = next((k for k in ("regex", "min", "max", "timestamp", "time", "date")
                     if k in found), None)
        if kind is None:
            raise InputError(f"a matcher for {path} has no 'match' and no regex/min/max/date")
    kind = _ALIASES.get(str(kind), str(kind))
    found["match"] = kind
    for bound in ("min", "max"):
        if bound in found:
            try:
                found[bound] = int(found[bound])
            except (TypeError, ValueError):
                raise InputError(f"{bound} of the matcher for {path} is not a number") from None
    return found


_PATH_TOKEN = re.compile(r"""\.\*|\[\*\]|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]|\["((?:[^"\\]|\\.)*)"\]
                             |\.([^.\[\]]+)""", re.VERBOSE)


def _parse_path(path: str) -> tuple[tuple[str, Any], ...]:
    """Pact's path expressions: `$`, `.name`, `['name']`, `[2]`, `[*]`, `.*`."""
    text = path if path.startswith("$") else "$." + path
    tokens: list[tuple[str, Any]] = [("root", None)]
    position = 1
    while position < len(text):
        found = _PATH_TOKEN.match(text, position)
        if found is None:
            raise InputError(f"matching rule path {path!r} is not a Pact path expression")
        whole, index, quoted, double, name = found.group(0), *found.groups()
        if whole in (".*",):
            tokens.append(("star", None))
        elif whole == "[*]":
            tokens.append(("star_index", None))
        elif index is not None:
            tokens.append(("index", int(index)))
        elif name is not None:
            tokens.append(("field", name))
        else:
            tokens.append(("field", re.sub(r"\\(.)", r"\1", quoted if quoted is not None
                                           else double)))
        position = found.end()
    return tuple(tokens)


# --- body + rules -> JSON Schema ------------------------------------------------------------

class _Builder:
    """Builds the JSON Schema of a body under its rules, mirroring Pact's body comparison."""

    def __init__(self, rules: _Rules, notes: list[str]) -> None:
        self.rules, self.notes = rules, notes

    def contract(self, body: Any, path: list[str]) -> dict[str, Any]:
        schema = self.node(body, path)
        errors = sorted(Draft202012Validator(schema).iter_errors(body), key=str)
        if errors:  # a pact whose own example breaks its own rules
            raise Refused(f"its example does not satisfy its own matching rules "
                          f"({errors[0].message})")
        return schema

    def node(self, value: Any, path: list[str]) -> dict[str, Any]:
        found = self.rules.best(path)
        if isinstance(value, dict):
            return self._object(value, path, found)
        if isinstance(value, list):
            return self._array(value, path, found)
        return self._leaf(value, path, found)

    def _object(self, value: dict[str, Any], path: list[str],
                found: tuple[_RuleList, bool] | None) -> dict[str, Any]:
        if found is None:
            return _object_schema(value, path, self, required=True)
        rule_list, cascaded = found
        return _combine([self._object_rule(m, cascaded, value, path)
                         for m in rule_list.matchers], rule_list.combine)

    def _object_rule(self, matcher: dict[str, Any], cascaded: bool, value: dict[str, Any],
                     path: list[str]) -> dict[str, Any]:
        kind = matcher["match"]
        if not cascaded and kind in ("values", "eachValue", "arrayContains"):
            builder = self._each_value(matcher, path) if kind == "eachValue" else self
            schema: dict[str, Any] = {"type": "object"}
            if value:
                schema["properties"] = {k: builder.node(v, [*path, k]) for k, v in value.items()}
                schema["additionalProperties"] = builder.node(next(iter(value.values())),
                                                              [*path, "*"])
            return schema
        schema = _object_schema(value, path, self, required=not any(
            m["match"] in ("values", "eachValue", "eachKey") for m in self.rules.exact(path)))
        schema.update(_collection_bounds(matcher, cascaded, value, path, "Properties"))
        keys = [m for m in self.rules.exact(path) if m["match"] == "eachKey"]
        key_schemas = [s for m in keys for r in _sub_matchers(m, path)
                       if (s := _key_schema(r)) != {}]
        if key_schemas:
            schema["propertyNames"] = _combine(key_schemas, "AND")
        return schema

    def _array(self, value: list[Any], path: list[str],
               found: tuple[_RuleList, bool] | None) -> dict[str, Any]:
        if found is None:
            if not value:
                return {"type": "array", "maxItems": 0}
            return {"type": "array", **_items([self.node(v, [*path, str(i)])
                                               for i, v in enumerate(value)], None),
                    "minItems": len(value), "maxItems": len(value)}
        if not value:
            return {"type": "array"}  # Pact checks nothing against an empty example
        rule_list, cascaded = found
        return _combine([self._array_rule(m, cascaded, value, path)
                         for m in rule_list.matchers], rule_list.combine)

    def _array_rule(self, matcher: dict[str, Any], cascaded: bool, value: list[Any],
                    path: list[str]) -> dict[str, Any]:
        kind = matcher["match"]
        if kind == "arrayContains":
            return {"type": "array", **_combine(
                [{"contains": c} for c in self._variants(matcher, value, path)], "AND")}
        if kind == "eachValue":
            if cascaded:
                return {"type": "array"}
            return {"type": "array", **self._each_value(matcher, path)._contents(value, path)}
        return {"type": "array", **_collection_bounds(matcher, cascaded, value, path, "Items"),
                **self._contents(value, path)}

    def _contents(self, value: list[Any], path: list[str]) -> dict[str, Any]:
        """Element i against the example's element i, later ones against the first."""
        return _items([self.node(v, [*path, str(i)]) for i, v in enumerate(value)],
                      self.node(value[0], [*path, "[*]"]))

    def _variants(self, matcher: dict[str, Any], value: list[Any],
                  path: list[str]) -> list[dict[str, Any]]:
        variants = matcher.get("variants") or [{"index": i} for i in range(len(value))]
        schemas = []
        for variant in variants:
            index = int(variant.get("index", 0)) if isinstance(variant, Mapping) else -1
            if not 0 <= index < len(value):
                raise Refused(f"arrayContains at {_show(path)} names variant {index}, "
                              f"which the example ({len(value)} item(s)) lacks")
            rules = variant.get("rules")
            sub = _parse_rules(rules) if rules else _Rules(
                [((("root", None),), _RuleList(({"match": "equality"},)))])
            schemas.append(_Builder(sub, self.notes).node(value[index], ["$"]))
        return schemas

    def _each_value(self, matcher: dict[str, Any], path: list[str]) -> _Builder:
        """eachValue: its own rules replace the pact's for everything below the path."""
        tokens = (*(_fragment_token(f) for f in path), ("star", None))
        return _Builder(_Rules([(tokens, _RuleList(tuple(_sub_matchers(matcher, path))))]),
                        self.notes)

    def _leaf(self, value: Any, path: list[str],
              found: tuple[_RuleList, bool] | None) -> dict[str, Any]:
        if found is None:
            return {"const": value}
        rule_list, _ = found
        schema = _combine([self._leaf_rule(m, value, path) for m in rule_list.matchers],
                          rule_list.combine)
        return {**schema, "examples": [value]}

    def _leaf_rule(self, matcher: dict[str, Any], value: Any, path: list[str]) -> dict[str, Any]:
        kind = matcher["match"]
        simple: dict[str, dict[str, Any]] = {
            "integer": {"type": "integer"}, "number": {"type": "number"},
            "decimal": {"type": "number"}, "null": {"type": "null"},
            "boolean": {"enum": [True, False, "true", "false"]},
            "notEmpty": {"not": {"enum": [None, "", [], {}]}},
            "semver": {"type": "string", "pattern": _SEMVER},
            "equality": {"const": value}, "values": {"const": value},
            "statusCode": {}, "eachKey": {}, "eachValue": {}, "arrayContains": {}}
        if kind in simple:
            if kind == "decimal":
                self._note("decimal matcher: any JSON number is accepted (JSON Schema cannot "
                           "tell 1.0 from 1)")
            return simple[kind]
        if kind == "type":
            return {"type": _json_type(value)}
        if kind in ("regex", "include"):
            return self._text_rule(matcher, value, path)
        if kind in ("date", "time", "timestamp"):
            return self._date_rule(matcher, kind, path)
        if kind == "contentType":
            raise Refused(f"contentType matcher at {_show(path)} checks binary data, "
                          "which a JSON Schema cannot")
        raise Refused(f"matcher {kind!r} at {_show(path)} is not a Pact matcher eventscope "
                      "knows (a plugin matcher?)")

    def _text_rule(self, matcher: dict[str, Any], value: Any, path: list[str]) -> dict[str, Any]:
        if matcher["match"] == "include":
            pattern = _escape(str(matcher.get("value", "")))
        else:
            pattern = str(matcher.get("regex", ""))
            try:
                re.compile(pattern)
            except re.error as exc:
                raise Refused(f"regex {pattern!r} at {_show(path)} does not compile: "
                              f"{exc}") from None
        if not isinstance(value, str):
            self._note(f"{matcher['match']} on the non-string value at {_show(path)}: only "
                       "its JSON type is checked")
            return {"type": _json_type(value)}
        if not re.search(pattern, value):
            self._note(f"{matcher['match']} at {_show(path)} does not match its own example "
                       f"{value!r}: only the type is checked")
            return {"type": "string"}
        return {"type": "string", "pattern": pattern}

    def _date_rule(self, matcher: dict[str, Any], kind: str, path: list[str]) -> dict[str, Any]:
        written = matcher.get("format") or matcher.get(kind) or matcher.get(
            "datetime" if kind == "timestamp" else kind)
        pattern = _java_format_regex(str(written or _DEFAULT_FORMATS[kind]))
        if pattern is None:
            self._note(f"{kind} format {written!r} at {_show(path)} is not understood: only "
                       "a string is required")
            return {"type": "string"}
        return {"type": "string", "pattern": pattern}

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def _object_schema(value: dict[str, Any], path: list[str], builder: _Builder,
                   required: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    if value and required:
        schema["required"] = list(value)
    if value:
        schema["properties"] = {k: builder.node(v, [*path, k]) for k, v in value.items()}
    return schema


def _collection_bounds(matcher: dict[str, Any], cascaded: bool, value: Any, path: list[str],
                       suffix: str) -> dict[str, Any]:
    """What a matcher says about the object/array itself (not its members)."""
    kind = matcher["match"]
    if kind == "equality":
        return {"const": value}
    if kind == "notEmpty":
        return {f"min{suffix}": 1}
    if kind == "type":
        return {f"{bound}{suffix}": matcher[bound] for bound in ("min", "max")
                if bound in matcher and not cascaded}
    if kind in ("regex", "values", "eachKey", "eachValue", "arrayContains"):
        return {}
    raise Refused(f"matcher {kind!r} at {_show(path)} applies to a "
                  f"{'list' if suffix == 'Items' else 'map'}, which it can never match")


def _items(prefix: list[dict[str, Any]], rest: dict[str, Any] | None) -> dict[str, Any]:
    """`prefixItems`/`items`, folded to one `items` when every position has the same schema."""
    if all(_same(p, rest if rest is not None else prefix[0]) for p in prefix):
        return {"items": rest if rest is not None else prefix[0]}
    return {"prefixItems": prefix, **({"items": rest} if rest is not None else {})}


def _combine(parts: list[dict[str, Any]], combine: str) -> dict[str, Any]:
    if combine == "OR":
        if not parts or {} in parts:
            return {}
        return parts[0] if len(parts) == 1 else {"anyOf": parts}
    parts = [p for p in parts if p != {}]
    if not parts:
        return {}
    merged: dict[str, Any] = {}
    for part in parts:
        if any(k in merged and not _same(merged[k], v) for k, v in part.items()):
            return {"allOf": parts}
        merged.update(part)
    return merged


def _escape(text: str) -> str:
    """A literal for a `pattern`, escaping only what ECMA-262 needs (`re.escape` also escapes
    `-` and spaces, which ECMA-262's unicode mode rejects outside a class)."""
    return re.sub(r"([\\^$.|?*+()\[\]{}])", r"\\\1", text)


def _same(one: Any, other: Any) -> bool:
    """Equal as JSON (Python's `False == 0` and `1 == 1.0` are not)."""
    return json.dumps(one, sort_keys=True) == json.dumps(other, sort_keys=True)


def _sub_matchers(matcher: dict[str, Any], path: list[str]) -> list[dict[str, Any]]:
    rules = matcher.get("rules") or []
    return [_matcher(r, _show(path)) for r in rules if isinstance(r, Mapping)]


def _key_schema(matcher: dict[str, Any]) -> dict[str, Any]:
    if matcher["match"] == "regex":
        return {"pattern": str(matcher.get("regex", ""))}
    if matcher["match"] == "include":
        return {"pattern": _escape(str(matcher.get("value", "")))}
    return {}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "array" if isinstance(value, list) else "object"


def _fragment_token(fragment: str) -> tuple[str, Any]:
    if fragment == "$":
        return ("root", None)
    if fragment.isdigit():
        return ("index", int(fragment))
    if fragment in ("[*]", "*"):
        return ("star_index" if fragment == "[*]" else "star", None)
    return ("field", fragment)


def _show(path: list[str]) -> str:
    shown = "$"
    for part in path[1:]:
        if part.isdigit() or part == "[*]":
            shown += part if part == "[*]" else f"[{part}]"
        elif part == "*" or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            shown += f".{part}"
        else:
            shown += "['" + part.replace("'", "\\'") + "']"
    return shown


_JAVA_FIELDS: dict[str, Callable[[int], str]] = {
    "y": lambda n: r"\d{4}" if n == 4 else r"\d{2}" if n == 2 else r"\d+",
    "u": lambda n: r"\d{4}" if n == 4 else r"\d{2}" if n == 2 else r"\d+",
    "M": lambda n: r"\d{2}" if n == 2 else r"\d{1,2}" if n == 1 else
    r"[A-Za-z]{3}" if n == 3 else r"[A-Za-z]+",
    "L": lambda n: r"\d{2}" if n == 2 else r"\d{1,2}" if n == 1 else r"[A-Za-z]+",
    "d": lambda n: r"\d{2}" if n == 2 else r"\d{1,2}",
    "D": lambda n: rf"\d{{{n},3}}",
    "H": lambda n: r"\d{2}" if n == 2 else r"\d{1,2}",
    "k": lambda n: r"\d{2}" if n == 2 else r"\d{1,2}",
    "K": lambda n: r"\d{2}" if n == 2 else r"\d{1,2}",
    "h": lambda n: r"\d{2}" if n == 2 else r"\d{1,2}",
    "m": lambda n: r"\d{2}" if n == 2 else r"\d{1,2}",
    "s": lambda n: r"\d{2}" if n == 2 else r"\d{1,2}",
    "S": lambda n: rf"\d{{{n}}}",
    "n": lambda n: r"\d+",
    "a": lambda n: r"(?:AM|PM|am|pm)",
    "E": lambda n: r"[A-Za-z]+",
    "X": lambda n: r"(?:Z|[+-]\d{2}(?::?\d{2})?)" if n == 1 else
    r"(?:Z|[+-]\d{4})" if n in (2, 4) else r"(?:Z|[+-]\d{2}:\d{2})",
    "x": lambda n: r"[+-]\d{2}(?::?\d{2})?" if n == 1 else
    r"[+-]\d{4}" if n in (2, 4) else r"[+-]\d{2}:\d{2}",
    "Z": lambda n: r"[+-]\d{4}" if n <= 3 else r"(?:Z|[+-]\d{2}:\d{2})" if n == 5 else
    r"[A-Z]{3}[+-]\d{2}:\d{2}",
    "z": lambda n: r"[A-Za-z][A-Za-z0-9/_+-]*",
}


def _java_format_regex(pattern: str) -> str | None:
    """A Java DateTimeFormatter pattern (what Pact's date matchers use) as an anchored regex,
    or None when it uses a field this translation does not know."""
    out, position = ["^"], 0
    while position < len(pattern):
        char = pattern[position]
        if char == "'":
            end = pattern.find("'", position + 1)
            if end == -1:
                return None
            literal = pattern[position + 1:end]
            out.append(_escape(literal) if literal else "'")
            position = end + 1
        elif char.isalpha():
            run = len(pattern) - position - len(pattern[position:].lstrip(char))
            if char not in _JAVA_FIELDS:
                return None
            out.append(_JAVA_FIELDS[char](run))
            position += run
        elif char in "[]{}#":
            return None
        else:
            out.append(_escape(char))
            position += 1
    return "".join(out) + "$"

def event_type_mapping(options: tuple[str, ...]) -> dict[str, str]:
    """`--event-type DESCRIPTION=TYPE` options as a description -> detail-type mapping."""
    mapping: dict[str, str] = {}
    for option in options:
        description, sep, detail_type = option.rpartition("=")
        if not sep or not description or not detail_type.strip():
            raise InputError(f"--event-type {option!r}: expected DESCRIPTION=TYPE")
        mapping[description] = detail_type.strip()
    return mapping


def keep_declared(consumer: Consumer, existing: Consumer | None, team: str) -> Consumer:
    """An imported consumer, keeping what the catalog already declares: its team, functions,
    rule targets and its subscriptions to event types the pacts do not cover."""
    if existing is None:
        return consumer
    covered = {s.detail_type for s in consumer.subscriptions}
    return replace(consumer, team=team or existing.team, functions=existing.functions,
                   rule_targets=existing.rule_targets,
                   subscriptions=tuple(s for s in existing.subscriptions
                                       if s.detail_type not in covered)
                   + consumer.subscriptions)
