"""Compatibility between schema versions, by Confluent Schema Registry's JSON Schema rules.

Owns diffing a writer schema against a reader schema (every difference classified with a kind
named as Confluent names it, a verdict, and a reason a person understands), and the modes built
on it: BACKWARD (new reads old), FORWARD (old reads new), FULL (both), their TRANSITIVE forms
(against every earlier version), NONE.

A verdict is one of three: "compatible" (every instance valid under the writer is valid under
the reader, as far as the rules prove), "incompatible" (a rule says readers may break), or
"cannot tell" (the checker cannot judge: an unresolvable `$ref`, a keyword it does not reason
about such as `if`/`propertyNames`, overlapping `oneOf` alternatives, a schema too large to
compare). "cannot tell" is never reported as compatible.

Content models follow Confluent: an object is *open* when `additionalProperties` (or, in its
absence, `unevaluatedProperties`) is absent or true and it has no `patternProperties`;
*closed* when it is false; *partially open* when it is a schema or `patternProperties` exist.
Arrays likewise with `additionalItems` / 2020-12 `items` after `prefixItems`. Where Confluent
would call a change compatible that a validator can reject (a value matching two `oneOf`
alternatives, a pattern property of an open model), the checker is stricter: a false
"compatible" is the one mistake it must not make. The exception, kept from Confluent, is a
newly required field with a `default`, which Confluent deems compatible (readers fill it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing._core import Resolver
from referencing.jsonschema import DRAFT4, DRAFT7, DRAFT202012

from eventscope.catalog.model import Compatibility, EventType
from eventscope.catalog.schemas import BASE_URI, make_registry

MODES: tuple[Compatibility, ...] = (
    "NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE",
    "FULL", "FULL_TRANSITIVE",
)
COMPATIBLE, INCOMPATIBLE, CANNOT_TELL = "compatible", "incompatible", "cannot tell"
_RANK = {COMPATIBLE: 0, CANNOT_TELL: 1, INCOMPATIBLE: 2}
_BUDGET = 20_000  # schema pairs compared in one diff before giving up ("cannot tell")
_MAX_DEPTH = 200

# keywords that never constrain an instance (annotations, structure)
_ANNOTATIONS = {
    "$schema", "$id", "id", "$anchor", "$dynamicAnchor", "$comment", "$defs", "definitions",
    "$vocabulary", "title", "description", "default", "examples", "deprecated", "readOnly",
    "writeOnly", "contentMediaType", "contentEncoding", "contentSchema", "format",
}
# constraint keywords the checker does not reason about: a reader that adds or changes one
# gets "cannot tell" (a writer's own extra constraint only narrows what it writes)
_UNSUPPORTED = {"if", "then", "else", "propertyNames", "$dynamicRef", "$recursiveRef"}
_COMBINATORS = ("allOf", "anyOf", "oneOf", "not")
_APPLICATORS = {*_COMBINATORS, "if", "then", "else", "dependentSchemas", "dependencies", "$ref"}
_CONSTRAINTS = {
    "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum",
    "exclusiveMinimum", "maxLength", "minLength", "pattern", "items", "prefixItems",
    "additionalItems", "unevaluatedItems", "contains", "minContains", "maxContains", "maxItems",
    "minItems", "uniqueItems", "properties", "patternProperties", "additionalProperties",
    "unevaluatedProperties", "required", "dependentRequired", "dependentSchemas",
    "dependencies", "maxProperties", "minProperties", "$ref", *_COMBINATORS, *_UNSUPPORTED,
}
_NUMERIC = {"integer", "number"}


@dataclass(frozen=True)
class Change:
    """One difference between a writer and a reader schema, seen from the reader."""

    path: str  # JSON pointer into the schemas, e.g. #/properties/currency
    kind: str  # Confluent's difference type, e.g. PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL
    verdict: str  # compatible | incompatible | cannot tell
    reason: str

    @property
    def compatible(self) -> bool:
        """Whether the reader can still read everything the writer wrote (proven)."""
        return self.verdict == COMPATIBLE

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "verdict": self.verdict,
                "compatible": self.compatible, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}: {self.reason}"


Found = tuple[tuple[str, str, Change], ...]  # (direction, against version, change)


@dataclass(frozen=True)
class Verdict:
    """Whether a new version satisfies a mode: the breaking changes and the undecided ones."""

    mode: str
    compatible: bool
    breaking: Found = ()
    undecided: Found = ()

    @property
    def status(self) -> str:
        """compatible, incompatible, or cannot tell (nothing breaks, something is undecided)."""
        if self.compatible:
            return COMPATIBLE
        return INCOMPATIBLE if self.breaking else CANNOT_TELL

    def reasons(self) -> list[str]:
        return [f"{direction} vs v{against}: {change}" for direction, against, change
                in self.breaking + self.undecided]


@dataclass(frozen=True)
class VersionIssue:
    """A catalog version that breaks its event type's mode, or that cannot be judged."""

    detail_type: str
    version: str
    verdict: Verdict

    def __str__(self) -> str:
        reasons = self.verdict.reasons()
        head = (f"version {self.version} breaks {self.verdict.mode}" if self.verdict.breaking
                else f"cannot tell whether version {self.version} satisfies "
                     f"{self.verdict.mode}")
        more = f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""
        return f"{head}: " + "; ".join(reasons[:3]) + more


# --- the public functions -------------------------------------------------------------------

def diff(writer: Any, reader: Any, registry: Registry[Any] | None = None,
         writer_name: str = "old", reader_name: str = "new") -> list[Change]:
    """Every difference between a writer and a reader schema (Confluent's original/update).

    `$ref`s resolve through `registry` (plus the two schemas themselves); names are used in
    the reasons ("the new schema requires ..."). Never raises on a schema: what it cannot
    judge is a change with the verdict "cannot tell".
    """
    w_uri, r_uri = f"{BASE_URI}diff.w.{writer_name}.json", f"{BASE_URI}diff.r.{reader_name}.json"
    writer, reader = _anonymous(writer), _anonymous(reader)
    try:
        base = make_registry([], registry)  # each side its own: shared $ids never cross
        writes = base.with_resource(w_uri, _resource(w_uri, writer)).crawl()
        reads = base.with_resource(r_uri, _resource(r_uri, reader)).crawl()
        ctx = _Diff(writes, writes.resolver(w_uri), reads.resolver(r_uri), writer_name,
                    reader_name)
    except Exception as exc:  # noqa: BLE001 - a schema referencing cannot load
        return [Change("#", "CANNOT_TELL", CANNOT_TELL, f"cannot load the schemas: {exc}")]
    try:
        _compare(ctx, writer, reader)
    except RecursionError:
        ctx.changes.append(Change("#", "CANNOT_TELL", CANNOT_TELL,
                                  "schemas nested too deeply to compare"))
    except Exception as exc:  # noqa: BLE001 - never a traceback, never "compatible"
        ctx.changes.append(Change("#", "CHECKER_ERROR", CANNOT_TELL,
                                  f"the checker failed: {type(exc).__name__}: {exc}"))
    return ctx.changes


def _resource(uri: str, schema: Any) -> Resource[Any]:
    """The schema as a resource of its declared draft, else 2020-12, else draft 7 or 4."""
    error: Exception | None = None
    for spec in (DRAFT202012, DRAFT7, DRAFT4):
        resource = Resource.from_contents(schema, default_specification=spec)
        try:
            Registry().with_resource(uri, resource).crawl()
            return resource
        except Exception as exc:  # noqa: BLE001 - e.g. tuple items read as 2020-12
            error = error or exc
    raise error or ValueError("unreadable schema")


def _anonymous(schema: Any) -> Any:
    """The schema without its root `$id`: two versions sharing one must not resolve as one."""
    if isinstance(schema, dict) and any(isinstance(schema.get(k), str) for k in ("$id", "id")):
        return {k: v for k, v in schema.items() if k not in ("$id", "id")}
    return schema


def breaking(writer: Any, reader: Any, registry: Registry[Any] | None = None,
             writer_name: str = "old", reader_name: str = "new") -> list[Change]:
    """The differences not proven safe: those that break readers and those undecided."""
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
            found += [("BACKWARD", version, c)
                      for c in breaking(old, new, registry, old_name, new_name)]
        if mode.startswith(("FORWARD", "FULL")):
            found += [("FORWARD", version, c)
                      for c in breaking(new, old, registry, new_name, old_name)]
    broken = tuple(f for f in found if f[2].verdict == INCOMPATIBLE)
    undecided = tuple(f for f in found if f[2].verdict == CANNOT_TELL)
    return Verdict(mode, not found, broken, undecided)


def check_versions(event_type: EventType, registry: Registry[Any] | None = None
                   ) -> list[VersionIssue]:
    """Each version of an event type that breaks (or cannot be judged against) its mode."""
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


def status_of(changes: Sequence[Change]) -> str:
    """The verdict of a list of changes: the worst of them (compatible when empty)."""
    return max((c.verdict for c in changes), key=_RANK.__getitem__, default=COMPATIBLE)


# --- the diff run ----------------------------------------------------------------------------

class _Undecidable(Exception):
    """The checker cannot judge this pair; the message is the reason."""


@dataclass
class _Shared:
    """State shared by a diff run and its probes: the budget and the pairs being compared."""

    registry: Registry[Any]
    steps: int = 0
    active: dict[tuple[int, int], int] = field(default_factory=dict)
    # synthesised schemas, kept alive for id(): (original, synthesised)
    keep: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)
    exhausted: bool = False


class _Diff:
    """One diff (or probe): resolvers for both sides, the current path, the changes found."""

    def __init__(self, registry: Registry[Any], writer: Resolver[Any], reader: Resolver[Any],
                 writer_name: str, reader_name: str, shared: _Shared | None = None) -> None:
        self.shared = shared or _Shared(registry)
        self.resolvers = [writer, reader]
        self.w, self.r = writer_name, reader_name
        self.changes: list[Change] = []
        self.path: list[str] = []
        self.depth = 0  # how many times the comparison descended into an instance's children

    def probe(self, swap: bool = False) -> _Diff:
        """A sub-run at the same place whose changes are kept apart (optionally sides swapped)."""
        w, r = (1, 0) if swap else (0, 1)
        names = (self.r, self.w) if swap else (self.w, self.r)
        sub = _Diff(self.shared.registry, self.resolvers[w], self.resolvers[r], *names,
                    shared=self.shared)
        sub.path, sub.depth = list(self.path), self.depth
        return sub

    def add(self, kind: str, verdict: str | bool, reason: str, *extra: str) -> None:
        if isinstance(verdict, bool):
            verdict = COMPATIBLE if verdict else INCOMPATIBLE
        parts = self.path + [p for e in extra for p in e.split("/")]
        self.changes.append(Change("#/" + "/".join(parts), kind, verdict, reason))

    def field(self, *extra: str) -> str:
        parts = self.path + list(extra)
        names = [p for i, p in enumerate(parts) if i > 0 and parts[i - 1] == "properties"]
        return f"`{'.'.join(names)}`" if names else "the event"

    @contextmanager
    def at(self, *parts: str, descend: bool = False) -> Iterator[None]:
        self.path += parts
        self.depth += descend
        try:
            yield
        finally:
            del self.path[len(self.path) - len(parts):]
            self.depth -= descend

    def validator(self, side: int, schema: Any) -> Any:
        """A validator of `schema` resolving `$ref`s as that side does (its own registry)."""
        # _resolver: jsonschema's (private) argument for a prepared referencing resolver,
        # absent from its stubs
        return Draft202012Validator(schema, _resolver=self.resolvers[side])  # type: ignore[call-arg]


def _compare(ctx: _Diff, writer: Any, reader: Any) -> None:
    """Record every difference between `writer` and `reader` at the current path."""
    try:
        ctx.shared.steps += 1
        if ctx.shared.steps > _BUDGET or len(ctx.path) > _MAX_DEPTH:
            if ctx.shared.exhausted:
                return
            ctx.shared.exhausted = True
            raise _Undecidable("the schemas are too large or too deeply nested to compare")
        writer, w_res = _resolve(ctx, ctx.resolvers[0], writer)
        reader, r_res = _resolve(ctx, ctx.resolvers[1], reader)
        key = (id(writer), id(reader))
        if key in ctx.shared.active:
            if ctx.shared.active[key] == ctx.depth:
                raise _Undecidable("a schema refers to itself without describing a value")
            return  # a recursive pair: proven for smaller values, so it holds (induction)
        saved = ctx.resolvers
        ctx.shared.active[key] = ctx.depth
        ctx.resolvers = [w_res, r_res]
        try:
            _compare_resolved(ctx, writer, reader)
        finally:
            ctx.resolvers = saved
            del ctx.shared.active[key]
    except _Undecidable as reason:
        ctx.add("CANNOT_TELL", CANNOT_TELL, f"cannot tell at {ctx.field()}: {reason}")


def _resolve(ctx: _Diff, resolver: Resolver[Any], schema: Any) -> tuple[Any, Resolver[Any]]:
    """Follow `$ref`s; a `$ref` beside other constraints becomes an allOf of both."""
    for _ in range(64):
        if not isinstance(schema, dict):
            return schema, resolver
        for keyword in ("$dynamicRef", "$recursiveRef"):
            if keyword in schema:
                raise _Undecidable(f"{keyword} is not supported")
        ref = schema.get("$ref")
        if not isinstance(ref, str):
            return schema, resolver
        rest = {k: v for k, v in schema.items() if k not in _ANNOTATIONS and k != "$ref"}
        if rest:
            return _synthesised(ctx, schema, {"allOf": [{"$ref": ref}, rest]}), resolver
        try:
            resolved = resolver.lookup(ref)
        except Exception:  # noqa: BLE001 - referencing raises several kinds
            raise _Undecidable(f"cannot resolve $ref {ref!r}") from None
        schema, resolver = resolved.contents, resolved.resolver
    raise _Undecidable("a chain of $refs does not end")


def _synthesised(ctx: _Diff, original: Any, made: dict[str, Any]) -> dict[str, Any]:
    for source, result in ctx.shared.keep:
        if source is original:
            return result
    ctx.shared.keep.append((original, made))
    return made


def _constrains(schema: Any) -> bool:
    return schema is False or (isinstance(schema, dict)
                               and any(k in _CONSTRAINTS for k in schema))


def _compare_resolved(ctx: _Diff, w: Any, r: Any) -> None:
    if not _constrains(r) or w is False:
        return  # the reader accepts anything, or the writer writes nothing
    if r is False:
        ctx.add("TYPE_CHANGED", False, f"the {ctx.r} schema accepts nothing at {ctx.field()}")
        return
    if not isinstance(r, dict) or not isinstance(w, (dict, bool)):
        raise _Undecidable("a schema is neither an object nor a boolean")
    if w is True:
        w = {}
    if w == r and "$ref" not in json.dumps(w, default=str):
        return
    if "const" in w or "enum" in w:
        _writer_values(ctx, w, r)
    elif any(k in w or k in r for k in _COMBINATORS):
        _combined(ctx, w, r)
    else:
        _plain(ctx, w, r)


# --- const and enum: a finite writer is checked value by value --------------------------------

def _values(schema: dict[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    return list(schema["enum"]) if isinstance(schema.get("enum"), list) else None


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _valid(ctx: _Diff, side: int, schema: Any, value: Any) -> bool:
    try:
        return bool(ctx.validator(side, schema).is_valid(value))
    except RecursionError:
        raise _Undecidable("validating a value recursed without end") from None
    except Exception as exc:  # noqa: BLE001 - unresolvable refs, bad regexes
        raise _Undecidable(f"cannot validate against the schema ({exc})") from None


def _writer_values(ctx: _Diff, w: dict[str, Any], r: dict[str, Any]) -> None:
    values = [v for v in _values(w) or [] if _valid(ctx, 0, w, v)]
    lost = [v for v in values if not _valid(ctx, 1, r, v)]
    keyword = "const" if "const" in r else "enum"
    r_values = _values(r)
    if r_values is None:
        if lost:
            ctx.add("TYPE_CHANGED", False, f"{ctx.field()} values {_list(lost)} are rejected by "
                    f"the {ctx.r} schema")
        elif "enum" in w or "const" in w:
            ctx.add("PRODUCT_TYPE_NARROWED", True, f"{ctx.field()} no longer restricted to "
                    f"{_list(values)}")
        return
    w_keys, r_keys = {_key(v) for v in values}, {_key(v) for v in r_values}
    if w_keys <= r_keys and not lost:
        if w_keys != r_keys:
            ctx.add("ENUM_ARRAY_EXTENDED", True, f"{ctx.field()} accepts more values", keyword)
    elif lost:
        kind = "ENUM_ARRAY_NARROWED" if r_keys < w_keys else "ENUM_ARRAY_CHANGED"
        ctx.add(kind, False, f"{ctx.field()} no longer accepts {_list(lost)}: {ctx.w} events "
                "with those values are rejected", keyword)


def _list(values: Sequence[Any]) -> str:
    return ", ".join(_key(v) for v in values)


# --- allOf, anyOf, oneOf, not ---------------------------------------------------------------

def _conjuncts(schema: dict[str, Any], writer: bool) -> list[tuple[str, Any]]:
    """A schema as a conjunction: its own keywords, each allOf item, each group, the not."""
    base = {k: v for k, v in schema.items() if k not in _COMBINATORS}
    if writer:  # properties evaluated by siblings are unknown here: read the writer as open
        base = {k: v for k, v in base.items()
                if k not in ("unevaluatedProperties", "unevaluatedItems")}
    parts: list[tuple[str, Any]] = [("base", base)] if _constrains(base) else []
    parts += [(f"allOf/{i}", s) for i, s in enumerate(schema.get("allOf") or [])]
    parts += [(k, schema[k]) for k in ("anyOf", "oneOf") if isinstance(schema.get(k), list)]
    if "not" in schema:
        parts.append(("not", schema["not"]))
    return parts


def _combined(ctx: _Diff, w: dict[str, Any], r: dict[str, Any]) -> None:
    w_parts, r_parts = _conjuncts(w, True), _conjuncts(r, False)
    results = [_reader_part(ctx, w, w_parts, name, part) for name, part in r_parts]
    _name_combination(ctx, w, r, all(results))


def _reader_part(ctx: _Diff, w: dict[str, Any], w_parts: list[tuple[str, Any]], name: str,
                 part: Any) -> bool:
    """Check the writer against one conjunct of the reader; True when proven compatible."""
    if name in ("anyOf", "oneOf"):
        probe = ctx.probe()
        _reader_choice(probe, w, w_parts, part, name == "oneOf")
    elif name == "not":
        probe = ctx.probe()
        _reader_not(probe, w_parts, part)
    else:
        probe = _writer_cover(ctx, w_parts, part)
    ctx.changes += probe.changes
    return status_of(probe.changes) == COMPATIBLE


def _writer_cover(ctx: _Diff, w_parts: list[tuple[str, Any]], target: Any) -> _Diff:
    """A probe showing one writer conjunct (or every branch of one writer group) within target."""
    attempts = []
    for name, part in w_parts:
        probe = ctx.probe()
        if name in ("anyOf", "oneOf"):
            for branch in part:
                _compare(probe, branch, target)
        elif name == "not":
            continue  # a negation says little about what the writer writes
        else:
            _compare(probe, part, target)
        if status_of(probe.changes) == COMPATIBLE:
            return probe
        attempts.append(probe)
    if not attempts:
        probe = ctx.probe()
        _compare(probe, {}, target)
        return probe
    return min(attempts, key=lambda p: _RANK[status_of(p.changes)])


def _reader_choice(ctx: _Diff, w: dict[str, Any], w_parts: list[tuple[str, Any]],
                   branches: list[Any], exclusive: bool) -> None:
    """The writer within a reader anyOf (or oneOf: within exactly one alternative)."""
    group = next(((n, p) for n, p in w_parts if n in ("anyOf", "oneOf")), None)
    pieces = [(i, b) for i, b in enumerate(group[1])] if group else [(None, w)]
    keyword = "oneOf" if exclusive else "anyOf"
    for index, piece in pieces:
        attempts = []
        for j, branch in enumerate(branches):
            probe = ctx.probe()
            _compare(probe, piece, branch)
            if exclusive and status_of(probe.changes) == COMPATIBLE:
                for k, other in enumerate(branches):
                    if k != j and not _excluded(ctx, piece, index, group, other):
                        probe.add("CANNOT_TELL", CANNOT_TELL, f"{ctx.field()}: a value may "
                                  f"match more than one of the {ctx.r} schema's oneOf "
                                  f"alternatives ({j} and {k}), which oneOf rejects", keyword)
                        break
            attempts.append(probe)
            if status_of(probe.changes) == COMPATIBLE:
                break
        best = min(attempts, key=lambda p: _RANK[status_of(p.changes)], default=ctx.probe())
        if status_of(best.changes) == COMPATIBLE:
            ctx.changes += best.changes
        elif status_of(best.changes) == CANNOT_TELL:
            ctx.changes += [c for c in best.changes if c.verdict == CANNOT_TELL]
        else:
            where = f"alternative {index} of the {ctx.w} schema" if index is not None \
                else f"the {ctx.w} schema"
            ctx.add("SUM_TYPE_NARROWED" if len(branches) < len(pieces) else
                    "COMBINED_TYPE_SUBSCHEMAS_CHANGED", False, f"{ctx.field()}: {where} fits "
                    f"none of the {ctx.r} schema's {keyword} alternatives")
    if status_of(ctx.changes) == COMPATIBLE and len(branches) > len(pieces):
        ctx.add("SUM_TYPE_EXTENDED", True, f"{ctx.field()} accepts more alternatives")


def _excluded(ctx: _Diff, piece: Any, index: int | None, group: tuple[str, Any] | None,
              other: Any) -> bool:
    """Whether no value of the writer piece matches the reader alternative `other`."""
    if _disjoint(ctx, ctx.resolvers[0], piece, ctx.resolvers[1], other, 0):
        return True
    if group is None or group[0] != "oneOf" or index is None:
        return False
    for m, sibling in enumerate(group[1]):  # values of a writer oneOf branch match no sibling
        if m != index:
            probe = ctx.probe(swap=True)
            _compare(probe, other, sibling)
            if status_of(probe.changes) == COMPATIBLE:
                return True
    return False


def _disjoint(ctx: _Diff, a_res: Resolver[Any], a: Any, b_res: Resolver[Any], b: Any,
              depth: int) -> bool:
    """Provably no value is valid under both a (writer side) and b (reader side)."""
    if depth > 8:
        return False
    try:
        a, a_res = _resolve(ctx, a_res, a)
        b, b_res = _resolve(ctx, b_res, b)
    except _Undecidable:
        return False
    if a is False or b is False:
        return True
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return False
    saved = ctx.resolvers
    ctx.resolvers = [a_res, b_res]
    try:
        if _values(a) is not None and not any(_valid(ctx, 1, b, v) for v in _values(a) or []):
            return True
        if _values(b) is not None and not any(_valid(ctx, 0, a, v) for v in _values(b) or []):
            return True
    except _Undecidable:
        return False
    finally:
        ctx.resolvers = saved
    if _disjoint_parts(ctx, a_res, a, b_res, b, depth):
        return True
    ta, tb = _type_set(a), _type_set(b)
    if ta is not None and tb is not None and not any(
            _covered(x, tb) or _covered(y, ta) for x in ta for y in tb):
        return True
    a_props, b_props = a.get("properties") or {}, b.get("properties") or {}
    shared = set(a.get("required") or []) & set(b.get("required") or [])
    return any(name in a_props and name in b_props
               and _disjoint(ctx, a_res, a_props[name], b_res, b_props[name], depth + 1)
               for name in sorted(shared))


def _disjoint_parts(ctx: _Diff, a_res: Resolver[Any], a: dict[str, Any],
                    b_res: Resolver[Any], b: dict[str, Any], depth: int) -> bool:
    """Disjoint through a combinator: one allOf item is, or every anyOf/oneOf branch is."""
    if any(_disjoint(ctx, a_res, x, b_res, b, depth + 1) for x in a.get("allOf") or []) or any(
            _disjoint(ctx, a_res, a, b_res, x, depth + 1) for x in b.get("allOf") or []):
        return True
    for keyword in ("anyOf", "oneOf"):
        if a.get(keyword) and all(_disjoint(ctx, a_res, x, b_res, b, depth + 1)
                                  for x in a[keyword]):
            return True
        if b.get(keyword) and all(_disjoint(ctx, a_res, a, b_res, x, depth + 1)
                                  for x in b[keyword]):
            return True
    return False


def _reader_not(ctx: _Diff, w_parts: list[tuple[str, Any]], negated: Any) -> None:
    writer_not = next((p for n, p in w_parts if n == "not"), None)
    with ctx.at("not"):
        if writer_not is not None:
            probe = ctx.probe(swap=True)  # not A within not B when B within A
            _compare(probe, negated, writer_not)
            if status_of(probe.changes) == COMPATIBLE:
                ctx.add("NOT_TYPE_NARROWED", True, f"{ctx.field()}: the {ctx.r} schema "
                        "excludes less")
            else:
                ctx.add("NOT_TYPE_EXTENDED", False, f"{ctx.field()}: the {ctx.r} schema "
                        f"excludes values the {ctx.w} schema allowed")
            return
        parts = [p for n, p in w_parts if n != "not"]
        if any(_disjoint(ctx, ctx.resolvers[0], p, ctx.resolvers[1], negated, 0)
               for p in parts):
            return
        ctx.add("TYPE_CHANGED", False, f"{ctx.field()}: the {ctx.r} schema excludes values "
                f"(`not`) the {ctx.w} schema allows")


def _name_combination(ctx: _Diff, w: dict[str, Any], r: dict[str, Any], ok: bool) -> None:
    """Confluent's names for a change of combination keyword (oneOf -> anyOf, ...)."""
    w_kinds = [k for k in ("allOf", "anyOf", "oneOf") if k in w]
    r_kinds = [k for k in ("allOf", "anyOf", "oneOf") if k in r]
    if len(w_kinds) == 1 and len(r_kinds) == 1 and w_kinds != r_kinds:
        if ok or r_kinds == ["anyOf"]:
            ctx.add("COMBINED_TYPE_EXTENDED", True, f"{ctx.field()}: {w_kinds[0]} became "
                    f"{r_kinds[0]}")
        else:
            ctx.add("COMBINED_TYPE_CHANGED", False, f"{ctx.field()}: {w_kinds[0]} became "
                    f"{r_kinds[0]} and the {ctx.w} schema's values do not all fit")
    elif w_kinds == r_kinds == ["allOf"] and not ok:
        extended = len(r["allOf"]) > len(w["allOf"])
        ctx.add("PRODUCT_TYPE_EXTENDED" if extended else "COMBINED_TYPE_SUBSCHEMAS_CHANGED",
                False, f"{ctx.field()}: the {ctx.r} schema's allOf asks what the {ctx.w} "
                "schema's does not")
    if ok and "allOf" in w and ("allOf" not in r or len(w["allOf"]) > len(r["allOf"])):
        ctx.add("PRODUCT_TYPE_NARROWED", True, f"{ctx.field()}: the {ctx.r} schema asks less "
                f"than the {ctx.w} schema's allOf")


# --- plain schemas: types, then each keyword family -----------------------------------------

def _type_set(schema: dict[str, Any]) -> set[str] | None:
    value = schema.get("type")
    if value is None:
        values = _values(schema)  # an enum without a type still fixes the types
        return {_json_type(v) for v in values} if values is not None else None
    return {value} if isinstance(value, str) else {t for t in value if isinstance(t, str)}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    names = {str: "string", float: "number", dict: "object", list: "array"}
    return names.get(type(value), "null")


def _covered(name: str, types: set[str]) -> bool:
    return name in types or (name == "integer" and "number" in types)


def _or(types: set[str]) -> str:
    return " or ".join(sorted(types))


def _plain(ctx: _Diff, w: dict[str, Any], r: dict[str, Any]) -> None:
    live = _types(ctx, w, r)
    if live is not None and not live:
        return  # no writer value has a type the reader accepts: reported as TYPE_CHANGED
    if _values(r) is not None:
        ctx.add("ENUM_ARRAY_NARROWED", False,
                f"{ctx.field()} restricted to {_list(_values(r) or [])}"
                f": {ctx.w} events may hold other values", "enum" if "enum" in r else "const")

    def may_be(*types: str) -> bool:
        return live is None or any(t in live for t in types)

    if may_be("string"):
        _strings(ctx, w, r)
    if may_be("number", "integer"):
        _numbers(ctx, w, r, live)
    if may_be("object"):
        _objects(ctx, w, r)
    if may_be("array"):
        _arrays(ctx, w, r)
    _unsupported(ctx, w, r)


def _types(ctx: _Diff, w: dict[str, Any], r: dict[str, Any]) -> set[str] | None:
    """Compare `type`; the writer's types the reader still accepts (None: any type)."""
    wt, rt = _type_set(w), _type_set(r)
    if rt is None:
        if wt is not None and "type" in w and "type" not in r:
            ctx.add("TYPE_EXTENDED", True, f"{ctx.field()} type no longer restricted")
        return wt
    if wt is None:
        ctx.add("TYPE_NARROWED", False, f"{ctx.field()} now must be {_or(rt)}: {ctx.w} events "
                "may hold other types")
        return None
    live = {t for t in wt if _covered(t, rt)}
    if wt == rt:
        return live
    if live == wt:
        kind = "SUM_TYPE_EXTENDED" if len(rt) > 1 else "TYPE_EXTENDED"
        ctx.add(kind, True, f"{ctx.field()} widened from {_or(wt)} to {_or(rt)}")
    elif live or (wt == {"number"} and "integer" in rt):
        ctx.add("TYPE_NARROWED", False, f"{ctx.field()} narrowed from {_or(wt)} to {_or(rt)}: "
                f"{ctx.w} events with {_or(wt - live)} are rejected")
        live = live | ({"integer"} if "number" in wt and "integer" in rt else set())
    else:
        ctx.add("TYPE_CHANGED", False, f"{ctx.field()} changed type from {_or(wt)} to "
                f"{_or(rt)}: {ctx.r} readers reject {ctx.w} events")
    return live


def _snake(keyword: str) -> str:
    return "".join("_" + c if c.isupper() else c for c in keyword).upper()


def _limit(ctx: _Diff, w: dict[str, Any], r: dict[str, Any], keyword: str, upper: bool,
           default: Any = None) -> None:
    """A numeric limit such as maxLength: tighter in the reader breaks, looser does not."""
    wv, rv = w.get(keyword, default), r.get(keyword, default)
    if wv == rv or not _is_number(rv) and rv is not None or not _is_number(wv) and wv is not None:
        return
    name = _snake(keyword)
    if rv is None:
        ctx.add(f"{name}_REMOVED", True, f"{ctx.field()} {keyword} {wv} dropped", keyword)
    elif wv is None:
        ctx.add(f"{name}_ADDED", False, f"{ctx.field()} gained {keyword} {rv}: {ctx.w} events "
                "beyond it are rejected", keyword)
    else:
        word = "INCREASED" if rv > wv else "DECREASED"
        ok = (rv > wv) == upper
        ctx.add(f"{name}_{word}", ok, f"{ctx.field()} {keyword} {'relaxed' if ok else 'tightened'}"
                f" {wv} -> {rv}" + ("" if ok else f": {ctx.w} events beyond it are rejected"),
                keyword)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _strings(ctx: _Diff, w: dict[str, Any], r: dict[str, Any]) -> None:
    _limit(ctx, w, r, "maxLength", True)
    _limit(ctx, w, r, "minLength", False)
    wv, rv = w.get("pattern"), r.get("pattern")
    if wv != rv:
        if rv is None:
            ctx.add("PATTERN_REMOVED", True, f"{ctx.field()} pattern {wv!r} dropped", "pattern")
        else:
            ctx.add("PATTERN_ADDED" if wv is None else "PATTERN_CHANGED", False,
                    f"{ctx.field()} pattern now {rv!r}" + (f" (was {wv!r})" if wv else "")
                    + f": {ctx.w} events may not match it", "pattern")
    wv, rv = w.get("format"), r.get("format")
    if wv != rv:  # an annotation in 2020-12, as eventscope's validators and Confluent read it
        word = "REMOVED" if rv is None else "ADDED" if wv is None else "CHANGED"
        ctx.add(f"FORMAT_{word}", True, f"{ctx.field()} format {wv!r} -> {rv!r} (an "
                "annotation: validators do not assert it)", "format")


def _bound(schema: dict[str, Any], upper: bool) -> tuple[Any, bool, str] | None:
    """The tightest (value, exclusive, keyword) bound on one side, any draft's spelling."""
    plain, exclusive = ("maximum", "exclusiveMaximum") if upper else ("minimum",
                                                                      "exclusiveMinimum")
    found: list[tuple[Any, bool, str]] = []
    value, flag = schema.get(plain), schema.get(exclusive)
    if _is_number(value):
        found.append((value, flag is True, exclusive if flag is True else plain))
    if _is_number(flag):
        found.append((flag, True, exclusive))
    if not found:
        return None
    pick = min if upper else max
    best = pick(v for v, _, _ in found)
    return next((v, e, k) for v, e, k in sorted(found, key=lambda f: not f[1]) if v == best)


def _numbers(ctx: _Diff, w: dict[str, Any], r: dict[str, Any], live: set[str] | None) -> None:
    for upper in (True, False):
        wb, rb = _bound(w, upper), _bound(r, upper)
        if wb == rb or rb is None and wb is None:
            continue
        keyword = (rb or wb)[2]  # type: ignore[index]
        name = _snake(keyword)
        if rb is None:
            ctx.add(f"{name}_REMOVED", True, f"{ctx.field()} {keyword} dropped", keyword)
            continue
        if wb is None:
            ctx.add(f"{name}_ADDED", False, f"{ctx.field()} gained {keyword} {rb[0]}: {ctx.w} "
                    "events beyond it are rejected", keyword)
            continue
        inside = (wb[0] < rb[0]) if upper else (wb[0] > rb[0])
        ok = inside or (wb[0] == rb[0] and (wb[1] or not rb[1]))
        word = "INCREASED" if rb[0] > wb[0] or (rb[0] == wb[0] and upper == ok) else "DECREASED"
        ctx.add(f"{name}_{word}", ok, f"{ctx.field()} {keyword} {wb[0]} -> {rb[0]}"
                + ("" if ok else f": {ctx.w} events beyond it are rejected"), keyword)
    _multiple_of(ctx, w, r, live)


def _multiple_of(ctx: _Diff, w: dict[str, Any], r: dict[str, Any],
                 live: set[str] | None) -> None:
    wv, rv = w.get("multipleOf"), r.get("multipleOf")
    if not _is_number(rv):
        if _is_number(wv):
            ctx.add("MULTIPLE_OF_REMOVED", True, f"{ctx.field()} multipleOf dropped",
                    "multipleOf")
        return
    r_step = Fraction(str(rv))
    w_step = Fraction(str(wv)) if _is_number(wv) else (
        Fraction(1) if live and live <= {"integer"} else None)
    if w_step is not None and w_step == r_step:
        return
    if w_step is None or wv is None:
        ok = w_step is not None and bool(r_step) and (w_step / r_step).denominator == 1
        ctx.add("MULTIPLE_OF_ADDED", ok, f"{ctx.field()} must now be a multiple of {rv}",
                "multipleOf")
    elif r_step and (w_step / r_step).denominator == 1:
        ctx.add("MULTIPLE_OF_REDUCED", True, f"{ctx.field()} multipleOf {wv} -> {rv}: every "
                f"multiple of {wv} still is one of {rv}", "multipleOf")
    elif w_step and (r_step / w_step).denominator == 1:
        ctx.add("MULTIPLE_OF_EXPANDED", False, f"{ctx.field()} multipleOf {wv} -> {rv}: "
                f"{ctx.w} values that are not multiples of {rv} are rejected", "multipleOf")
    else:
        ctx.add("MULTIPLE_OF_CHANGED", False, f"{ctx.field()} multipleOf {wv} -> {rv}",
                "multipleOf")


def _unsupported(ctx: _Diff, w: dict[str, Any], r: dict[str, Any]) -> None:
    for keyword in sorted(_UNSUPPORTED & r.keys()):
        same = keyword in w and w[keyword] == r[keyword] and "$ref" not in json.dumps(r[keyword])
        if not same:
            ctx.add("CANNOT_TELL", CANNOT_TELL, f"{ctx.field()}: the {ctx.r} schema's "
                    f"`{keyword}` differs and the checker does not judge `{keyword}`", keyword)


# --- objects ----------------------------------------------------------------------------------

def _extra(schema: dict[str, Any], writer: bool) -> tuple[Any, str]:
    """The schema of undeclared properties and the keyword giving it."""
    if "additionalProperties" in schema:
        return schema["additionalProperties"], "additionalProperties"
    if "unevaluatedProperties" in schema and not (writer and _APPLICATORS & schema.keys()):
        return schema["unevaluatedProperties"], "unevaluatedProperties"
    return True, "additionalProperties"


def _trivial(schema: Any) -> bool:
    return schema is True or (isinstance(schema, dict) and not _constrains(schema))


def _matching(schema: dict[str, Any], name: str) -> list[tuple[str, Any]]:
    found = []
    for pattern, sub in (schema.get("patternProperties") or {}).items():
        try:
            if re.search(pattern, name):
                found.append((pattern, sub))
        except re.error:
            raise _Undecidable(f"patternProperties {pattern!r} is not a regex the checker "
                               "reads") from None
    return found


def _undeclared(schema: dict[str, Any], name: str, writer: bool) -> list[Any]:
    """What a schema asks of property `name` when it does not declare it."""
    matched = [sub for _, sub in _matching(schema, name)]
    return matched or [_extra(schema, writer)[0]]


def _objects(ctx: _Diff, w: dict[str, Any], r: dict[str, Any]) -> None:
    wp, rp = w.get("properties") or {}, r.get("properties") or {}
    w_req, r_req = set(w.get("required") or []), set(r.get("required") or [])
    for name in sorted(r_req - w_req):
        if name in rp and name not in wp:
            continue  # named with the added property
        default = isinstance(rp.get(name), dict) and "default" in rp[name]
        ctx.add("REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED" if default else
                "REQUIRED_ATTRIBUTE_ADDED", default, f"{ctx.field('properties', name)} became "
                f"required in the {ctx.r} schema" + (" with a default" if default else
                                                     f": {ctx.w} events may lack it"),
                "required", name)
    for name in sorted((w_req - r_req) & wp.keys() & rp.keys()):
        ctx.add("REQUIRED_ATTRIBUTE_REMOVED", True, f"{ctx.field('properties', name)} became "
                "optional", "required", name)
    for name in sorted(wp.keys() | rp.keys()):
        with ctx.at("properties", name, descend=True):
            if name in wp and name in rp:
                _compare(ctx, wp[name], rp[name])
                for pattern, sub in _matching(r, name):
                    if (w.get("patternProperties") or {}).get(pattern) != sub:
                        _compare(ctx, wp[name], sub)
            elif name in rp:
                _property_added(ctx, w, r, name, name in r_req)
            else:
                _property_removed(ctx, r, wp[name])
    _dependencies(ctx, w, r)
    _additional(ctx, w, r)
    _limit(ctx, w, r, "maxProperties", True)
    _limit(ctx, w, r, "minProperties", False)


def _covers(ctx: _Diff, writers: list[Any], reader: Any) -> str:
    """The best verdict of any one writer schema within the reader schema; keeps its changes."""
    probes = []
    for writer in writers:
        probe = ctx.probe()
        _compare(probe, writer, reader)
        probes.append(probe)
    best = min(probes, key=lambda p: _RANK[status_of(p.changes)], default=None)
    if best is None:
        return INCOMPATIBLE
    ctx.changes += best.changes
    return status_of(best.changes)


def _property_added(ctx: _Diff, w: dict[str, Any], r: dict[str, Any], name: str,
                    required: bool) -> None:
    schema = r["properties"][name]
    field_ = ctx.field()
    default = isinstance(schema, dict) and "default" in schema
    writer_says = _undeclared(w, name, True)
    open_ = not w.get("patternProperties") and all(_trivial(s) for s in writer_says)
    if open_:
        if required:
            kind = "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL" if default \
                else "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"
            ctx.add(kind, False, f"required field {field_} added; the open {ctx.w} schema's "
                    f"events may lack it or carry it with any type")
        elif _trivial(schema):
            ctx.add("PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL", True,
                    f"field {field_} added, accepting anything")
        else:
            ctx.add("OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", False, f"field {field_} is "
                    f"declared by the {ctx.r} schema but not by the open {ctx.w} schema "
                    f"(additionalProperties not false): {ctx.w} events may carry it with any "
                    "type")
        return
    closed = all(s is False for s in writer_says)
    if not closed:
        readers = [schema] + [s for _, s in _matching(r, name)]
        status = max((_covers(ctx, writer_says, s) for s in readers), key=_RANK.__getitem__)
        if status == COMPATIBLE:
            ctx.add("PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", True,
                    f"field {field_} added, within what the {ctx.w} schema allowed for it")
        else:
            ctx.add("PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", status,
                    f"field {field_} added, narrower than what the {ctx.w} schema allowed for "
                    f"it: {ctx.w} events may carry it with other values")
    if required:
        ctx.add("REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL" if default else
                "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", default, f"required field "
                f"{field_} is declared by the {ctx.r} schema but not by the {ctx.w} schema"
                + ("" if default else f": {ctx.w} events lack it, so readers on {ctx.r} break"))
    else:
        ctx.add("OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", True, f"optional field "
                f"{field_} added; the {ctx.w} schema "
                + ("never writes it" if closed else "allowed it"))


def _property_removed(ctx: _Diff, r: dict[str, Any], schema: Any) -> None:
    field_ = ctx.field()
    name = ctx.path[-1]
    reader_says = _undeclared(r, name, False)
    if not r.get("patternProperties") and all(_trivial(s) for s in reader_says):
        ctx.add("PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL", True, f"field {field_} is declared "
                f"only by the {ctx.w} schema; the open {ctx.r} schema still accepts it")
    elif schema is False:
        ctx.add("PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL", True,
                f"forbidden field {field_} removed")
    elif any(s is False for s in reader_says):
        ctx.add("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", False, f"field {field_} is "
                f"declared by the {ctx.w} schema but not by the closed {ctx.r} schema "
                f"(additionalProperties: false): {ctx.w} events carrying it are rejected")
    else:
        status = max((_covers(ctx, [schema], s) for s in reader_says), key=_RANK.__getitem__)
        if status == COMPATIBLE:
            ctx.add("PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", True,
                    f"field {field_} removed; what the {ctx.r} schema allows for undeclared "
                    "fields still accepts it")
        else:
            ctx.add("PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", status,
                    f"field {field_} removed and what the {ctx.r} schema allows for undeclared "
                    f"fields does not accept its {ctx.w} values")


def _dependency_maps(schema: dict[str, Any]) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    arrays: dict[str, list[Any]] = {}
    schemas: dict[str, Any] = {}
    for keyword in ("dependencies", "dependentRequired", "dependentSchemas"):
        for key, value in (schema.get(keyword) or {}).items():
            if isinstance(value, list):
                arrays[key] = value
            else:
                schemas[key] = value
    return arrays, schemas


def _dependencies(ctx: _Diff, w: dict[str, Any], r: dict[str, Any]) -> None:
    (wa, ws), (ra, rs) = _dependency_maps(w), _dependency_maps(r)
    for key in sorted(wa.keys() | ra.keys()):
        where = f"dependencies/{key}"
        if key not in ra:
            ctx.add("DEPENDENCY_ARRAY_REMOVED", True, f"{ctx.field()}: `{key}` no longer "
                    "requires other fields", where)
        elif key not in wa:
            ctx.add("DEPENDENCY_ARRAY_ADDED", False, f"{ctx.field()}: `{key}` now requires "
                    f"{_list(ra[key])}: {ctx.w} events may lack them", where)
        elif set(map(_key, wa[key])) != set(map(_key, ra[key])):
            old, new = set(map(_key, wa[key])), set(map(_key, ra[key]))
            kind = ("DEPENDENCY_ARRAY_NARROWED" if new < old else
                    "DEPENDENCY_ARRAY_EXTENDED" if new > old else "DEPENDENCY_ARRAY_CHANGED")
            ctx.add(kind, new < old, f"{ctx.field()}: fields required with `{key}` changed "
                    f"from {_list(wa[key])} to {_list(ra[key])}", where)
    for key in sorted(ws.keys() | rs.keys()):
        with ctx.at("dependencies", key):
            if key not in rs:
                ctx.add("DEPENDENCY_SCHEMA_REMOVED", True, f"{ctx.field()}: the schema applied "
                        f"when `{key}` is present was dropped")
            elif key not in ws:
                ctx.add("DEPENDENCY_SCHEMA_ADDED", False, f"{ctx.field()}: a schema now applies "
                        f"when `{key}` is present: {ctx.w} events may not satisfy it")
            else:
                _compare(ctx, ws[key], rs[key])


def _additional(ctx: _Diff, w: dict[str, Any], r: dict[str, Any]) -> None:
    """Undeclared properties: additional/unevaluatedProperties and patternProperties."""
    (w_extra, _), (r_extra, keyword) = _extra(w, True), _extra(r, False)
    w_pat, r_pat = w.get("patternProperties") or {}, r.get("patternProperties") or {}
    _open_or_closed(ctx, w_extra, r_extra, keyword, _UNDECLARED_TEXTS)
    sources = [s for p, s in w_pat.items() if p not in r_pat]
    sources += [] if w_extra is False else [w_extra]
    for pattern, sub in r_pat.items():
        with ctx.at("patternProperties", pattern, descend=True):
            for writer in ([w_pat[pattern]] if pattern in w_pat else sources):
                if _trivial(writer) and not _trivial(sub):
                    ctx.add("ADDITIONAL_PROPERTIES_NARROWED", False, f"{ctx.field()}: fields "
                            f"matching {pattern!r} now must match a schema: the {ctx.w} schema "
                            "allowed any")
                else:
                    _compare(ctx, writer, sub)
    for pattern, sub in w_pat.items():
        if pattern not in r_pat and not _trivial(r_extra):
            with ctx.at("patternProperties", pattern, descend=True):
                _compare(ctx, sub, r_extra)


# --- arrays -----------------------------------------------------------------------------------

def _tuple(schema: dict[str, Any], writer: bool) -> tuple[list[Any], Any, str, bool]:
    """(positional item schemas, schema of the rest, the rest's keyword, tuple form used)."""
    items = schema.get("items", True)
    if isinstance(schema.get("prefixItems"), list):
        prefix, rest, keyword = schema["prefixItems"], items, "items"
    elif isinstance(items, list):
        prefix, rest, keyword = items, schema.get("additionalItems", True), "additionalItems"
    else:
        return [], items, "items", False
    if "unevaluatedItems" in schema and keyword not in schema and not (
            writer and _APPLICATORS & schema.keys()):
        rest, keyword = schema["unevaluatedItems"], "unevaluatedItems"
    return list(prefix), rest, keyword, True


def _arrays(ctx: _Diff, w: dict[str, Any], r: dict[str, Any]) -> None:
    w_prefix, w_rest, _, w_tuple = _tuple(w, True)
    r_prefix, r_rest, keyword, r_tuple = _tuple(r, False)
    for index in range(max(len(w_prefix), len(r_prefix))):
        with ctx.at("items", str(index), descend=True):
            if index < len(w_prefix) and index < len(r_prefix):
                _compare(ctx, w_prefix[index], r_prefix[index])
            elif index < len(w_prefix):
                _item_removed(ctx, w_prefix[index], r_rest)
            else:
                _item_added(ctx, w_rest, r_prefix[index])
    if w_tuple or r_tuple or w_rest is False or r_rest is False:
        _rest(ctx, w_rest, r_rest, "additionalItems" if keyword == "items" else keyword)
    elif not _trivial(r_rest):
        with ctx.at("items", descend=True):
            if _trivial(w_rest):
                ctx.add("SCHEMA_ADDED", False, f"{ctx.field()} items now must match a schema: "
                        f"the {ctx.w} schema allowed any item")
            else:
                _compare(ctx, w_rest, r_rest)
    elif not _trivial(w_rest):
        ctx.add("SCHEMA_REMOVED", True, f"{ctx.field()} item schema dropped", "items")
    _contains(ctx, w, r)
    _limit(ctx, w, r, "maxItems", True)
    _limit(ctx, w, r, "minItems", False)
    if bool(r.get("uniqueItems")) and not bool(w.get("uniqueItems")):
        ctx.add("UNIQUE_ITEMS_ADDED", False, f"{ctx.field()} items now must be unique",
                "uniqueItems")
    elif bool(w.get("uniqueItems")) and not bool(r.get("uniqueItems")):
        ctx.add("UNIQUE_ITEMS_REMOVED", True, f"{ctx.field()} items may repeat", "uniqueItems")


def _rest(ctx: _Diff, w_rest: Any, r_rest: Any, keyword: str) -> None:
    _open_or_closed(ctx, w_rest, r_rest, keyword, _REST_TEXTS)


# What each kind of change means, for undeclared properties and for items past the positions
# ({field}, {w} and {r}, {keyword} are filled in): removed, added, narrowed, extended.
_UNDECLARED_TEXTS = ("{field} closed ({keyword}: false): {w} events with undeclared fields "
                     "are rejected",
                     "{field} opened to undeclared fields",
                     "{field}: undeclared fields now must match a schema: the {w} schema "
                     "allowed any",
                     "{field}: undeclared fields may now hold anything")
_REST_TEXTS = ("{field}: the {r} schema allows no items past its positions: {w} events may "
               "have more",
               "{field}: more items allowed",
               "{field}: further items now must match a schema: the {w} schema allowed any",
               "{field}: further items may hold anything")


def _open_or_closed(ctx: _Diff, w_rest: Any, r_rest: Any, keyword: str,
                    texts: tuple[str, str, str, str]) -> None:
    """A schema for what is not declared (undeclared properties, items past the positions):
    closed (false), open (true or absent), or a schema of its own, on each side."""
    prefix = _snake(keyword)
    removed, added, narrowed, extended = texts
    with ctx.at(keyword):
        def say(text: str) -> str:
            return text.format(field=ctx.field(), w=ctx.w, r=ctx.r, keyword=keyword)
        if (w_rest is False) != (r_rest is False):
            if r_rest is False:
                ctx.add(f"{prefix}_REMOVED", False, say(removed))
            else:
                ctx.add(f"{prefix}_ADDED", True, say(added))
        elif w_rest is not False:
            if _trivial(w_rest) and not _trivial(r_rest):
                ctx.add(f"{prefix}_NARROWED", False, say(narrowed))
            elif not _trivial(w_rest) and _trivial(r_rest):
                ctx.add(f"{prefix}_EXTENDED", True, say(extended))
            elif not _trivial(r_rest):
                with ctx.at(descend=True):
                    _compare(ctx, w_rest, r_rest)


def _item_removed(ctx: _Diff, schema: Any, r_rest: Any) -> None:
    where = ctx.field()
    if _trivial(r_rest):
        ctx.add("ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL", True, f"{where}: a position the "
                f"{ctx.w} schema described is free in the {ctx.r} schema")
    elif schema is False:
        ctx.add("ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL", True, f"{where}: a "
                "forbidden position was dropped")
    elif r_rest is False:
        ctx.add("ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL", False, f"{where}: the {ctx.r} schema "
                f"allows fewer items: {ctx.w} events with this position are rejected")
    else:
        status = _covers(ctx, [schema], r_rest)
        ctx.add("ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL" if status == COMPATIBLE
                else "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", status,
                f"{where}: a position dropped; the {ctx.r} schema's further items "
                + ("accept it" if status == COMPATIBLE else "do not accept its values"))


def _item_added(ctx: _Diff, w_rest: Any, schema: Any) -> None:
    where = ctx.field()
    if w_rest is False:
        ctx.add("ITEM_ADDED_TO_CLOSED_CONTENT_MODEL", True, f"{where}: a position added; the "
                f"{ctx.w} schema never writes it")
    elif _trivial(w_rest):
        if _trivial(schema):
            ctx.add("ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL", True, f"{where}: a "
                    "position added, accepting anything")
        else:
            ctx.add("ITEM_ADDED_TO_OPEN_CONTENT_MODEL", False, f"{where}: a position added; "
                    f"the {ctx.w} schema allowed any item there")
    else:
        status = _covers(ctx, [w_rest], schema)
        ctx.add("ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL" if status == COMPATIBLE
                else "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", status,
                f"{where}: a position added; the {ctx.w} schema's further items "
                + ("fit it" if status == COMPATIBLE else "may not fit it"))


def _contains(ctx: _Diff, w: dict[str, Any], r: dict[str, Any]) -> None:
    if "contains" not in r:
        return
    r_min = r.get("minContains", 1)
    if "contains" not in w:
        if r_min != 0 or "maxContains" in r:
            ctx.add("CONTAINS_ADDED", False, f"{ctx.field()} must now contain a matching item: "
                    f"{ctx.w} events may not", "contains")
        return
    with ctx.at("contains", descend=True):
        _compare(ctx, w["contains"], r["contains"])
    _limit(ctx, w, r, "minContains", False, default=1)
    if "maxContains" in r:
        same = w.get("contains") == r.get("contains") and "$ref" not in json.dumps(r["contains"])
        if same:
            _limit(ctx, w, r, "maxContains", True)
        else:
            ctx.add("MAX_CONTAINS_ADDED" if "maxContains" not in w else "MAX_CONTAINS_CHANGED",
                    False, f"{ctx.field()}: maxContains counts items of a different schema",
                    "maxContains")
