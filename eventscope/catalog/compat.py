"""Compatibility between schema versions, by Confluent Schema Registry's JSON Schema rules.

Owns diffing a writer schema against a reader schema (every difference classified with a kind
named as Confluent names it, whether a reader can still read what the writer wrote, and a
reason a person understands), and the modes built on it: BACKWARD (new reads old), FORWARD
(old reads new), FULL (both), their TRANSITIVE forms (against every earlier version), NONE.

Content models follow Confluent: an object is *open* when `additionalProperties` is absent or
true and it has no `patternProperties`; *closed* when `additionalProperties` is false;
*partially open* when `additionalProperties` is a schema or `patternProperties` exist. Adding
a property to an open writer breaks readers (old events may carry it with any type); removing
one from a closed reader breaks them (old events carry it, the reader refuses it).
"""

from __future__ import annotations

from collections.abc import Sequence
import re
from dataclasses import dataclass
from typing import Any

from referencing import Registry
from referencing._core import Resolver

from eventscope.catalog.model import Compatibility, EventType
from eventscope.catalog.schemas import BASE_URI, make_registry

MODES: tuple[Compatibility, ...] = (
    "NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE",
    "FULL", "FULL_TRANSITIVE",
)
_NUMERIC = {"integer", "number"}


@dataclass(frozen=True)
class Change:
    """One difference between a writer and a reader schema, seen from the reader."""

    path: str  # JSON pointer into the schemas, e.g. #/properties/currency
    kind: str  # Confluent's difference type, e.g. PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL
    compatible: bool  # can the reader still read everything the writer wrote?
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}: {self.reason}"


@dataclass(frozen=True)
class Verdict:
    """Whether a new version satisfies a mode, with the breaking changes and their direction."""

    mode: str
    compatible: bool
    breaking: tuple[tuple[str, str, Change], ...] = ()  # (direction, against version, change)

    def reasons(self) -> list[str]:
        return [f"{direction} vs v{against}: {change}" for direction, against, change
                in self.breaking]


@dataclass(frozen=True)
class VersionIssue:
    """A catalog version that breaks its event type's compatibility mode."""

    detail_type: str
    version: str
    verdict: Verdict

    def __str__(self) -> str:
        return (f"version {self.version} breaks {self.verdict.mode}: "
                + "; ".join(self.verdict.reasons()[:3])
                + (f" (+{len(self.verdict.breaking) - 3} more)"
                   if len(self.verdict.breaking) > 3 else ""))


class _Diff:
    """One diff run: resolvers for both sides, the current path, the changes found."""

    def __init__(self, writer: Resolver[Any], reader: Resolver[Any], writer_name: str,
                 reader_name: str) -> None:
        self.resolvers = [writer, reader]
        self.w, self.r = writer_name, reader_name
        self.changes: list[Change] = []
        self.path: list[str] = []
        self.seen: set[tuple[int, int, str]] = set()

    def add(self, kind: str, ok: bool, reason: str, *extra: str) -> None:
        path = "#/" + "/".join(self.path + list(extra)) if self.path or extra else "#"
        self.changes.append(Change(path, kind, ok, reason))

    def field(self, *extra: str) -> str:
        names = [p for i, p in enumerate(self.path + list(extra))
                 if i == 0 or (self.path + list(extra))[i - 1] == "properties"]
        shown = ".".join(n for n in names if n not in ("properties", "items"))
        return f"`{shown}`" if shown else "the event"


def diff(writer: Any, reader: Any, registry: Registry[Any] | None = None,
         writer_name: str = "old", reader_name: str = "new") -> list[Change]:
    """Every difference between a writer and a reader schema (Confluent's original/update).

    `$ref`s resolve through `registry` (plus the two schemas themselves); names are used in
    the reasons ("the new schema requires ...").
    """
    w_uri, r_uri = f"{BASE_URI}diff.{writer_name}.json", f"{BASE_URI}diff.{reader_name}.json"
    if writer_name == reader_name:
        r_uri = f"{BASE_URI}diff.{reader_name}.reader.json"
    pairs = [(w_uri, writer), (r_uri, reader)]
    combined = make_registry(pairs, registry)
    ctx = _Diff(combined.resolver(w_uri), combined.resolver(r_uri), writer_name, reader_name)
    _compare(ctx, writer, reader)
    return ctx.changes


def breaking(writer: Any, reader: Any, registry: Registry[Any] | None = None,
             writer_name: str = "old", reader_name: str = "new") -> list[Change]:
    """The differences that stop the reader from reading what the writer wrote."""
    return [c for c in diff(writer, reader, registry, writer_name, reader_name)
            if not c.compatible]


def check(previous: Sequence[tuple[str, Any]], new: Any, mode: str,
          registry: Registry[Any] | None = None, new_name: str = "new") -> Verdict:
    """Whether `new` satisfies `mode` against earlier (version, schema) pairs, oldest first."""
    if mode not in MODES:
        raise ValueError(f"unknown compatibility mode {mode!r}: expected one of {MODES}")
    if mode == "NONE" or not previous:
        return Verdict(mode, True)
    against = previous if mode.endswith("_TRANSITIVE") else previous[-1:]
    found: list[tuple[str, str, Change]] = []
    for version, old in against:
        old_name = f"v{version}"
        if mode.startswith(("BACKWARD", "FULL")):
            found += [("BACKWARD", version, c) for c in breaking(old, new, registry, old_name,
                                                                 new_name)]
        if mode.startswith(("FORWARD", "FULL")):
            found += [("FORWARD", version, c) for c in breaking(new, old, registry, new_name,
                                                                old_name)]
    return Verdict(mode, not found, tuple(found))


def check_versions(event_type: EventType, registry: Registry[Any] | None = None
                   ) -> list[VersionIssue]:
    """Each version of an event type that breaks the type's mode against its predecessors."""
    issues = []
    versions = event_type.versions
    for index in range(1, len(versions)):
        previous = [(v.version, v.schema) for v in versions[:index]]
        new = versions[index]
        verdict = check(previous, new.schema, event_type.compatibility, registry,
                        f"v{new.version}")
        if not verdict.compatible:
            issues.append(VersionIssue(event_type.detail_type, new.version, verdict))
    return issues


# --- the comparison, one keyword family at a time -----------------------------------------

def _compare(ctx: _Diff, writer: Any, reader: Any) -> None:
    writer, w_res = _resolve(ctx, 0, writer)
    reader, r_res = _resolve(ctx, 1, reader)
    key = (id(writer), id(reader), "/".join(ctx.path))
    if key in ctx.seen:
        return
    ctx.seen.add(key)
    saved = list(ctx.resolvers)
    ctx.resolvers = [w_res, r_res]
    try:
        if _booleans(ctx, writer, reader):
            return
        if _combined(ctx, writer, reader):
            return
        _types(ctx, writer, reader)
        _enums(ctx, writer, reader)
        _bounds(ctx, writer, reader)
        if _is_object(writer) or _is_object(reader):
            _objects(ctx, writer, reader)
        if _is_array(writer) or _is_array(reader):
            _arrays(ctx, writer, reader)
    finally:
        ctx.resolvers = saved


def _resolve(ctx: _Diff, side: int, schema: Any) -> tuple[Any, Resolver[Any]]:
    resolver = ctx.resolvers[side]
    for _ in range(32):
        if not (isinstance(schema, dict) and isinstance(schema.get("$ref"), str)):
            break
        resolved = resolver.lookup(schema["$ref"])
        rest = {k: v for k, v in schema.items() if k not in ("$ref", "$id", "$schema")}
        resolver = resolved.resolver
        contents = resolved.contents
        schema = {**contents, **rest} if rest and isinstance(contents, dict) else contents
    return schema, resolver


def _booleans(ctx: _Diff, writer: Any, reader: Any) -> bool:
    w_any = writer is True or writer == {}
    r_any = reader is True or reader == {}
    if writer == reader:
        return True
    if r_any:
        ctx.add("SCHEMA_EXTENDED", True, f"the {ctx.r} schema accepts anything at {ctx.field()}")
        return True
    if reader is False:
        ctx.add("SCHEMA_NARROWED", False, f"the {ctx.r} schema accepts nothing at {ctx.field()}")
        return True
    if writer is False:
        return True
    if w_any and not isinstance(reader, bool):
        ctx.add("SCHEMA_NARROWED", False, f"{ctx.field()} was unconstrained in the {ctx.w} "
                f"schema and is constrained in the {ctx.r} schema")
        return True
    return False


def _types(ctx: _Diff, writer: dict[str, Any], reader: dict[str, Any]) -> None:
    wt, rt = _type_set(writer), _type_set(reader)
    if rt is None or wt == rt:
        if rt is None and wt is not None and "type" in writer:
            ctx.add("TYPE_EXTENDED", True, f"{ctx.field()} type no longer restricted")
        return
    if wt is None:
        ctx.add("TYPE_NARROWED", False, f"{ctx.field()} now must be {_or(rt)}: "
                f"{ctx.w} events may hold other types")
        return
    uncovered = {t for t in wt if not _covered(t, rt)}
    if not uncovered:
        ctx.add("TYPE_EXTENDED", True, f"{ctx.field()} widened from {_or(wt)} to {_or(rt)}")
    elif uncovered != wt or (uncovered == {"number"} and "integer" in rt):
        ctx.add("TYPE_NARROWED", False, f"{ctx.field()} narrowed from {_or(wt)} to {_or(rt)}: "
                f"{ctx.w} events with {_or(uncovered)} are rejected")
    else:
        ctx.add("TYPE_CHANGED", False, f"{ctx.field()} changed type from {_or(wt)} to "
                f"{_or(rt)}: {ctx.r} readers reject {ctx.w} events")


def _type_set(schema: dict[str, Any]) -> set[str] | None:
    value = schema.get("type")
    if value is None:
        values = _enum_values(schema)  # an enum without a type still fixes the types
        return {_json_type(v) for v in values} if values else None
    return {value} if isinstance(value, str) else set(value)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    names = {str: "string", float: "number", dict: "object", list: "array"}
    return names.get(type(value), "null")


def _covered(name: str, types: set[str]) -> bool:
    return name in types or (name == "integer" and "number" in types)


def _or(types: set[str]) -> str:
    return " or ".join(sorted(types))


def _enums(ctx: _Diff, writer: dict[str, Any], reader: dict[str, Any]) -> None:
    we, re_ = _enum_values(writer), _enum_values(reader)
    if re_ is None or we == re_:
        if re_ is None and we is not None:
            ctx.add("ENUM_ARRAY_REMOVED", True, f"{ctx.field()} accepts any value now")
        return
    if we is None:
        ctx.add("ENUM_ARRAY_ADDED", False, f"{ctx.field()} restricted to {_list(re_)}: "
                f"{ctx.w} events may hold other values")
        return
    lost = [v for v in we if v not in re_]
    if not lost:
        ctx.add("ENUM_ARRAY_EXTENDED", True, f"{ctx.field()} accepts more values "
                f"({_list([v for v in re_ if v not in we])} added)")
    else:
        kind = "ENUM_ARRAY_NARROWED" if all(v in we for v in re_) else "ENUM_ARRAY_CHANGED"
        ctx.add(kind, False, f"{ctx.field()} no longer accepts {_list(lost)}: {ctx.w} events "
                f"with those values are rejected")


def _enum_values(schema: dict[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    return list(schema["enum"]) if isinstance(schema.get("enum"), list) else None


def _list(values: Sequence[Any]) -> str:
    return ", ".join(repr(v) for v in values)


# keyword: True when a larger reader value is more permissive (a maximum), else a minimum
_BOUNDS = {
    "maxLength": True, "minLength": False, "maximum": True, "minimum": False,
    "exclusiveMaximum": True, "exclusiveMinimum": False, "maxItems": True, "minItems": False,
    "maxProperties": True, "minProperties": False,
}


def _bounds(ctx: _Diff, writer: dict[str, Any], reader: dict[str, Any]) -> None:
    for keyword, upper in _BOUNDS.items():
        w, r = writer.get(keyword), reader.get(keyword)
        if w == r or not (r is None or isinstance(r, (int, float))):
            continue
        name = _snake(keyword)
        if r is None:
            ctx.add(f"{name}_REMOVED", True, f"{ctx.field()} {keyword} {w} dropped", keyword)
        elif w is None:
            ctx.add(f"{name}_ADDED", False, f"{ctx.field()} gained {keyword} {r}: {ctx.w} "
                    "events beyond it are rejected", keyword)
        elif (r > w) == upper:
            word = "INCREASED" if r > w else "DECREASED"
            ctx.add(f"{name}_{word}", True, f"{ctx.field()} {keyword} relaxed {w} -> {r}",
                    keyword)
        else:
            word = "INCREASED" if r > w else "DECREASED"
            ctx.add(f"{name}_{word}", False, f"{ctx.field()} {keyword} tightened {w} -> {r}: "
                    f"{ctx.w} events beyond it are rejected", keyword)
    for keyword in ("pattern", "multipleOf", "uniqueItems"):
        w, r = writer.get(keyword), reader.get(keyword)
        if w == r or (keyword == "uniqueItems" and not r and not w):
            continue
        name = _snake(keyword)
        if r is None or r is False:
            ctx.add(f"{name}_REMOVED", True, f"{ctx.field()} {keyword} dropped", keyword)
        else:
            ctx.add(f"{name}_{'ADDED' if w in (None, False) else 'CHANGED'}", False,
                    f"{ctx.field()} {keyword} now {r!r} (was {w!r}): {ctx.w} events may not "
                    "satisfy it", keyword)


def _snake(keyword: str) -> str:
    return "".join("_" + c if c.isupper() else c for c in keyword).upper()


def _is_object(schema: Any) -> bool:
    return isinstance(schema, dict) and ("object" in (_type_set(schema) or ()) or any(
        k in schema for k in ("properties", "required", "additionalProperties",
                              "patternProperties")))


def _is_array(schema: Any) -> bool:
    return isinstance(schema, dict) and ("array" in (_type_set(schema) or ()) or any(
        k in schema for k in ("items", "prefixItems")))


def _model(schema: dict[str, Any]) -> str:
    extra = schema.get("additionalProperties", True)
    if schema.get("patternProperties") or isinstance(extra, dict) and extra != {}:
        return "PARTIALLY_OPEN"
    return "CLOSED" if extra is False else "OPEN"


def _objects(ctx: _Diff, writer: dict[str, Any], reader: dict[str, Any]) -> None:
    w_props, r_props = writer.get("properties", {}), reader.get("properties", {})
    w_req, r_req = set(writer.get("required", [])), set(reader.get("required", []))
    for name in r_props.keys() & w_props.keys():
        _required_change(ctx, name, name in w_req, name in r_req, r_props[name])
    for name in sorted(r_props.keys() - w_props.keys()):
        _property_added(ctx, writer, name, r_props[name], name in r_req)
    for name in sorted(w_props.keys() - r_props.keys()):
        _property_removed(ctx, reader, name, w_props[name], name in r_req)
    for name in sorted(r_req - w_req - r_props.keys()):
        ctx.add("REQUIRED_ATTRIBUTE_ADDED", False, f"{ctx.field('properties', name)} required "
                f"by the {ctx.r} schema: {ctx.w} events may lack it", "required", name)
    for name in sorted(r_props.keys() & w_props.keys()):
        ctx.path += ["properties", name]
        _compare(ctx, w_props[name], r_props[name])
        del ctx.path[-2:]
    _additional(ctx, writer, reader)


def _required_change(ctx: _Diff, name: str, w_required: bool, r_required: bool,
                     r_schema: Any) -> None:
    field = ctx.field("properties", name)
    if w_required and not r_required:
        ctx.add("REQUIRED_ATTRIBUTE_REMOVED", True, f"{field} became optional for readers",
                "required", name)
    elif r_required and not w_required:
        if isinstance(r_schema, dict) and "default" in r_schema:
            ctx.add("REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED", True, f"{field} became required "
                    "with a default", "required", name)
        else:
            ctx.add("REQUIRED_ATTRIBUTE_ADDED", False, f"{field} became required in the "
                    f"{ctx.r} schema: {ctx.w} events may lack it", "required", name)


def _property_added(ctx: _Diff, writer: dict[str, Any], name: str, schema: Any,
                    required: bool) -> None:
    field, model = ctx.field("properties", name), _model(writer)
    if required and not (isinstance(schema, dict) and "default" in schema):
        kind = "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL" if model != "OPEN" \
            else "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
        ctx.add(kind, False, f"required field {field} is declared by the {ctx.r} schema but not "
                f"by the {ctx.w} schema: {ctx.w} events lack it, so readers on {ctx.r} break",
                "properties", name)
    elif model == "OPEN":
        if schema is True or schema == {}:
            ctx.add("PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL", True,
                    f"field {field} added, accepting anything", "properties", name)
        else:
            ctx.add("PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", False, f"field {field} is declared by the {ctx.r} "
                    f"schema but not by the open {ctx.w} schema (additionalProperties not "
                    f"false): {ctx.w} events may carry {field} with any type",
                    "properties", name)
    elif model == "CLOSED":
        ctx.add("OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", True, f"optional field "
                f"{field} is declared only by the {ctx.r} schema; the {ctx.w} schema is closed "
                "so its events never carry it",
                "properties", name)
    elif _covers(ctx, _extra_schema(writer, name), schema):
        ctx.add("PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", True,
                f"field {field} added, within what the {ctx.w} schema's additionalProperties "
                "allowed", "properties", name)
    else:
        ctx.add("PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", False,
                f"field {field} added, narrower than the {ctx.w} schema's additionalProperties:"
                f" {ctx.w} events may carry it with other values", "properties", name)


def _property_removed(ctx: _Diff, reader: dict[str, Any], name: str, schema: Any,
                      _required: bool) -> None:
    field, model = ctx.field("properties", name), _model(reader)
    if model == "OPEN":
        ctx.add("PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL", True, f"field {field} is declared "
                f"only by the {ctx.w} schema; the open {ctx.r} schema still accepts it", "properties", name)
    elif model == "CLOSED":
        if schema is False:
            ctx.add("PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL", True,
                    f"forbidden field {field} removed", "properties", name)
        else:
            ctx.add("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", False, f"field {field} "
                    f"is declared by the {ctx.w} schema but not by the closed {ctx.r} schema "
                    f"(additionalProperties: false): {ctx.w} events carrying it are rejected", "properties", name)
    elif _covers(ctx, schema, _extra_schema(reader, name)):
        ctx.add("PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", True,
                f"field {field} removed; the {ctx.r} schema's additionalProperties still "
                "accepts it", "properties", name)
    else:
        ctx.add("PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", False,
                f"field {field} removed and the {ctx.r} schema's additionalProperties does "
                f"not accept its {ctx.w} values", "properties", name)


def _extra_schema(schema: dict[str, Any], name: str) -> Any:
    for pattern, sub in (schema.get("patternProperties") or {}).items():
        if re.search(pattern, name):
            return sub
    return schema.get("additionalProperties", True)


def _covers(ctx: _Diff, writer: Any, reader: Any) -> bool:
    probe = _Diff(ctx.resolvers[0], ctx.resolvers[1], ctx.w, ctx.r)
    _compare(probe, writer, reader)
    return all(c.compatible for c in probe.changes)


def _additional(ctx: _Diff, writer: dict[str, Any], reader: dict[str, Any]) -> None:
    w, r = writer.get("additionalProperties", True), reader.get("additionalProperties", True)
    w_open, r_open = w is not False, r is not False
    if w_open and not r_open:
        ctx.add("ADDITIONAL_PROPERTIES_REMOVED", False, f"{ctx.field()} closed (additional"
                f"Properties: false): {ctx.w} events with undeclared fields are rejected",
                "additionalProperties")
    elif r_open and not w_open:
        ctx.add("ADDITIONAL_PROPERTIES_ADDED", True, f"{ctx.field()} opened to undeclared "
                "fields", "additionalProperties")
    elif w_open and r_open and w != r:
        ctx.path.append("additionalProperties")
        _compare(ctx, w, r)
        ctx.path.pop()


def _arrays(ctx: _Diff, writer: dict[str, Any], reader: dict[str, Any]) -> None:
    w, r = writer.get("items", True), reader.get("items", True)
    if w != r:
        ctx.path.append("items")
        _compare(ctx, w, r)
        ctx.path.pop()


def _combined(ctx: _Diff, writer: dict[str, Any], reader: dict[str, Any]) -> bool:
    keyword = next((k for k in ("anyOf", "oneOf") if k in writer or k in reader), None)
    if keyword is None:
        return False
    w_alts = writer.get(keyword) or writer.get("anyOf") or writer.get("oneOf") or [writer]
    r_alts = reader.get(keyword) or reader.get("anyOf") or reader.get("oneOf") or [reader]
    unmatched = [i for i, alt in enumerate(w_alts)
                 if not any(_covers(ctx, alt, r_alt) for r_alt in r_alts)]
    if unmatched:
        ctx.add("SUM_TYPE_NARROWED", False, f"{ctx.field()}: {len(unmatched)} of the {ctx.w} "
                f"schema's {keyword} alternatives are not accepted by the {ctx.r} schema",
                keyword)
    elif len(r_alts) > len(w_alts):
        ctx.add("SUM_TYPE_EXTENDED", True, f"{ctx.field()} accepts more alternatives", keyword)
    return True
