"""EventBridge event patterns: does a rule's pattern match an event? Pure, no AWS calls.

Owns the matching semantics of EventBridge content filtering, following AWS's documentation
("Content filtering in Amazon EventBridge event patterns" and "Comparison operators"):

- keys are ANDed; the values in a leaf array are ORed; `$or` takes a list of sub-patterns;
- nested objects in the pattern descend into the event; an event array matches when any of
  its elements matches (arrays of objects are searched element by element);
- exact values (string, number, boolean, null), `prefix`, `suffix` (each optionally with
  `equals-ignore-case`), `equals-ignore-case`, `wildcard` (`*`, with `\\*` a literal star),
  `anything-but` (a value, a list, or `prefix` / `suffix` / `equals-ignore-case` /
  `wildcard` inside), `numeric` (`<`, `<=`, `=`, `>=`, `>` pairs, all must hold), `exists`
  (leaf fields only; `false` also matches when a parent object is absent) and `cidr`;
- every operator except `exists: false` needs the field to be present.
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from eventscope.errors import EventscopeError

_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, "=": operator.eq, ">=": operator.ge, ">": operator.gt}
_NAMED = {"prefix", "suffix", "equals-ignore-case", "wildcard", "anything-but", "numeric",
          "exists", "cidr"}


class PatternError(EventscopeError):
    """An event pattern that is not valid EventBridge pattern syntax."""


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether `event` (an envelope, detail included) matches the EventBridge `pattern`."""
    if not isinstance(pattern, Mapping):
        raise PatternError("an event pattern must be a JSON object")
    return _match_object(pattern, event)


def _match_object(pattern: Mapping[str, Any], node: Any) -> bool:
    if not isinstance(pattern, Mapping):  # e.g. a `$or` branch that is not an object
        raise PatternError(f"a pattern must be a JSON object, not {type(pattern).__name__}")
    for key, sub in pattern.items():
        if key == "$or":
            if not isinstance(sub, list) or not sub:
                raise PatternError("$or needs a non-empty list of patterns")
            if not any(_match_object(option, node) for option in sub):
                return False
            continue
        values = _values_at(node, key)
        if isinstance(sub, Mapping):
            objects = [v for v in values if isinstance(v, Mapping)] or [{}]
            if not any(_match_object(sub, obj) for obj in objects):
                return False
        elif isinstance(sub, list):
            if not _match_leaf(sub, [v for v in values if not isinstance(v, Mapping)]):
                return False
        else:
            raise PatternError(f"pattern field {key!r} must be a list or an object, "
                               f"not {type(sub).__name__}")
    return True


def _values_at(node: Any, key: str) -> list[Any]:
    """The values under `key`, looking through arrays (of objects and of values)."""
    found: list[Any] = []
    for item in node if isinstance(node, list) else [node]:
        if isinstance(item, Mapping) and key in item:
            _flatten_into(item[key], found)
    return found


def _flatten_into(value: Any, found: list[Any]) -> None:
    if isinstance(value, list):
        for element in value:
            _flatten_into(element, found)
    else:
        found.append(value)


def _match_leaf(conditions: list[Any], values: list[Any]) -> bool:
    for condition in conditions:
        if isinstance(condition, Mapping):
            if _match_named(condition, values):
                return True
        elif isinstance(condition, list):
            raise PatternError("a pattern array cannot contain an array")
        elif any(_equal(condition, value) for value in values):
            return True
    return False


def _equal(expected: Any, value: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool) or expected is None or value is None:
        return expected is value or (type(expected) is type(value) and expected == value)
    if isinstance(expected, (int, float)) and isinstance(value, (int, float)):
        return float(expected) == float(value)
    return type(expected) is type(value) and expected == value


def _match_named(condition: Mapping[str, Any], values: list[Any]) -> bool:
    if len(condition) != 1:
        raise PatternError(f"a filter object has exactly one operator, got {sorted(condition)}")
    name, argument = next(iter(condition.items()))
    if name not in _NAMED:
        raise PatternError(f"unknown pattern operator {name!r}")
    if name == "exists":
        if not isinstance(argument, bool):
            raise PatternError("exists takes true or false")
        return bool(values) == argument
    test = _operator(name, argument)
    return any(test(value) for value in values)


def _operator(name: str, argument: Any) -> Callable[[Any], bool]:
    if name == "anything-but":
        return _anything_but(argument)
    if name == "numeric":
        return _numeric(argument)
    if name == "cidr":
        network = _network(argument)
        return lambda v: isinstance(v, str) and _in_network(v, network)
    return _string_test(name, argument)


def _string_test(name: str, argument: Any) -> Callable[[Any], bool]:
    """prefix, suffix, equals-ignore-case and wildcard, as a test on one value."""
    if isinstance(argument, Mapping) and name in ("prefix", "suffix"):
        folded = _string_arg(argument.get("equals-ignore-case"), f"{name} equals-ignore-case")
        folded = folded.casefold()
        if name == "prefix":
            return lambda v: isinstance(v, str) and v.casefold().startswith(folded)
        return lambda v: isinstance(v, str) and v.casefold().endswith(folded)
    text = _string_arg(argument, name)
    if name == "prefix":
        return lambda v: isinstance(v, str) and v.startswith(text)
    if name == "suffix":
        return lambda v: isinstance(v, str) and v.endswith(text)
    if name == "equals-ignore-case":
        return lambda v: isinstance(v, str) and v.casefold() == text.casefold()
    regex = _wildcard_regex(text)
    return lambda v: isinstance(v, str) and regex.fullmatch(v) is not None


def _anything_but(argument: Any) -> Callable[[Any], bool]:
    if isinstance(argument, Mapping):
        if len(argument) != 1:
            raise PatternError("anything-but takes one inner operator")
        name, inner = next(iter(argument.items()))
        if name not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
            raise PatternError(f"anything-but cannot contain {name!r}")
        tests = [_string_test(name, item) for item in (inner if isinstance(inner, list)
                                                        else [inner])]
        return lambda v: isinstance(v, str) and not any(test(v) for test in tests)
    excluded = argument if isinstance(argument, list) else [argument]
    return lambda v: not any(_equal(item, v) for item in excluded)


def _numeric(argument: Any) -> Callable[[Any], bool]:
    if not isinstance(argument, list) or not argument or len(argument) % 2:
        raise PatternError("numeric takes pairs of operator and number, e.g. [\">\", 0]")
    pairs = []
    for op, bound in zip(argument[::2], argument[1::2]):
        if op not in _NUMERIC or isinstance(bound, bool) or not isinstance(bound, (int, float)):
            raise PatternError(f"numeric: {op!r} {bound!r} is not an operator and a number")
        pairs.append((_NUMERIC[op], float(bound)))
    return lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool)
                      and all(compare(float(v), bound) for compare, bound in pairs))


def _string_arg(argument: Any, name: str) -> str:
    if not isinstance(argument, str):
        raise PatternError(f"{name} takes a string, not {argument!r}")
    return argument


@lru_cache(maxsize=512)
def _wildcard_regex(text: str) -> re.Pattern[str]:
    parts, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in "*\\":
            parts.append(re.escape(text[i + 1]))
            i += 2
        elif text[i] == "*":
            parts.append(".*")
            i += 1
        else:
            parts.append(re.escape(text[i]))
            i += 1
    return re.compile("".join(parts), re.DOTALL)


def _network(argument: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(_string_arg(argument, "cidr"), strict=False)
    except ValueError as exc:
        raise PatternError(f"cidr: {exc}") from None


def _in_network(value: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(value) in network
    except ValueError:
        return False


def listed_values(pattern: Mapping[str, Any], field: str) -> list[Any] | None:
    """The exact values a pattern lists for a top-level field (e.g. `detail-type`).

    None when the pattern accepts values it does not list: the field is absent, a branch of
    `$or` leaves it open, or it uses an operator such as prefix or anything-but.
    """
    branches = pattern.get("$or")
    if isinstance(branches, list) and field not in pattern:
        found: list[Any] = []
        for branch in branches:
            values = listed_values(branch, field) if isinstance(branch, Mapping) else None
            if values is None:
                return None
            found.extend(v for v in values if v not in found)
        return found
    values = pattern.get(field)
    if not isinstance(values, list) or any(isinstance(v, (Mapping, list)) for v in values):
        return None
    return list(values)
