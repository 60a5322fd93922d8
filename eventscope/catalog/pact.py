"""Pact message pacts (specification v3 and v4) imported as consumer contracts.

Owns turning a message pact into a `Consumer`: each message (v3 `messages`, v4
`Asynchronous/Messages` interactions) becomes a subscription whose contract is a JSON Schema
of the message contents, with Pact's matching rules deciding how strict each field is: no rule
means equality (`const`), `type` means same JSON type (with `min`/`max` for arrays), `regex`,
`integer`, `decimal`/`number`, `boolean`, `include`, `values` and `null` map to their
schema equivalents. Every field present in the contents is required. The event type is the
message's `detail-type` metadata when present, else a catalogued type named in its
description, else the description itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from eventscope.catalog.model import Consumer, Subscription
from eventscope.errors import InputError


def import_pact(pact: Mapping[str, Any], known_types: Iterable[str] = (),
                team: str = "") -> Consumer:
    """The consumer a message pact describes, with one contract per message."""
    version = str(((pact.get("metadata") or {}).get("pactSpecification") or {})
                  .get("version", ""))
    if not version.startswith(("3", "4")):
        raise InputError(f"not a Pact v3/v4 file (pactSpecification {version or 'missing'})")
    consumer = str((pact.get("consumer") or {}).get("name", ""))
    if not consumer:
        raise InputError("pact has no consumer name")
    known = sorted(set(known_types), key=len, reverse=True)
    subscriptions = [_subscription(message, known, pact) for message in _messages(pact)]
    return Consumer(name=consumer, team=team or consumer, subscriptions=tuple(subscriptions),
                    description=f"imported from the pact with "
                                f"{(pact.get('provider') or {}).get('name', '?')}")


def _messages(pact: Mapping[str, Any]) -> list[dict[str, Any]]:
    if "messages" in pact:  # v3
        return [{"description": m.get("description", ""), "contents": m.get("contents"),
                 "rules": (m.get("matchingRules") or {}).get("body")
                 or (m.get("matchingRules") or {}).get("content") or {},
                 "metadata": m.get("metaData") or m.get("metadata") or {}}
                for m in pact["messages"]]
    found = []
    for interaction in pact.get("interactions", []):  # v4
        if interaction.get("type") != "Asynchronous/Messages":
            continue
        contents = interaction.get("contents") or {}
        rules = interaction.get("matchingRules") or {}
        found.append({"description": interaction.get("description", ""),
                      "contents": contents.get("content"),
                      "rules": rules.get("body") or rules.get("content") or {},
                      "metadata": interaction.get("metadata") or {}})
    return found


def _subscription(message: dict[str, Any], known: list[str],
                  pact: Mapping[str, Any]) -> Subscription:
    description = message["description"]
    metadata = dict(message["metadata"])
    contents = message["contents"]
    rules = message["rules"]
    if isinstance(contents, dict) and "detail" in contents and "detail-type" in contents:
        metadata.setdefault("detail-type", contents["detail-type"])
        metadata.setdefault("source", contents.get("source"))
        contents = contents["detail"]  # a whole envelope: the contract is about detail
        rules = {_strip_detail(k): v for k, v in rules.items() if k.startswith("$.detail")}
    detail_type = metadata.get("detail-type") or metadata.get("detailType") or next(
        (t for t in known if re.search(rf"\b{re.escape(t)}\b", description)), description)
    return Subscription(str(detail_type), metadata.get("source"), (),
                        contract_schema(contents, rules))


def _strip_detail(path: str) -> str:
    return "$" + path[len("$.detail"):] if path.startswith("$.detail") else path


def contract_schema(contents: Any, rules: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON Schema of message contents under Pact matching rules (v3 and v4 forms)."""
    normalised = {_norm(path): _matchers(rule) for path, rule in rules.items()}
    return _schema(contents, "$", normalised)


def _norm(path: str) -> str:
    path = re.sub(r"\['([^']+)'\]", r".\1", path)
    return path if path.startswith("$") else "$." + path


def _matchers(rule: Any) -> list[dict[str, Any]]:
    if isinstance(rule, dict) and "matchers" in rule:
        return list(rule["matchers"])
    return [rule] if isinstance(rule, dict) else []


def _rule_for(path: str, rules: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    if path in rules:
        return rules[path]
    wildcard = re.sub(r"\[\d+\]$", "[*]", path)
    return rules.get(wildcard, [])


def _schema(value: Any, path: str, rules: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    matchers = _rule_for(path, rules)
    if isinstance(value, dict):
        return {"type": "object", "required": list(value),
                "properties": {k: _schema(v, f"{path}.{k}", rules) for k, v in value.items()}}
    if isinstance(value, list):
        schema: dict[str, Any] = {"type": "array"}
        if value:
            schema["items"] = _schema(value[0], f"{path}[*]", rules) \
                if f"{path}[*]" in rules or any(m.get("match") == "type" for m in matchers) \
                else _schema(value[0], f"{path}[0]", rules)
        for matcher in matchers:
            if "min" in matcher:
                schema["minItems"] = matcher["min"]
            if "max" in matcher:
                schema["maxItems"] = matcher["max"]
        if not matchers and f"{path}[*]" not in rules:
            schema["const"] = value
        return schema
    if not matchers:
        return {"const": value}
    return _leaf(value, matchers[0])


_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}


def _leaf(value: Any, matcher: Mapping[str, Any]) -> dict[str, Any]:
    kind = matcher.get("match", "type")
    if kind == "regex":
        return {"type": "string", "pattern": matcher.get("regex", "")}
    if kind == "integer":
        return {"type": "integer"}
    if kind in ("decimal", "number"):
        return {"type": "number"}
    if kind == "boolean":
        return {"type": "boolean"}
    if kind == "null":
        return {"type": "null"}
    if kind == "include":
        return {"type": "string", "pattern": re.escape(str(matcher.get("value", "")))}
    if kind == "equality":
        return {"const": value}
    return {"type": _TYPES.get(type(value), "string")}
