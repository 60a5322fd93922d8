"""Property tests of the compatibility checker: it never raises, and "compatible" holds up.

Random schema pairs are drawn over the keywords the checker supports (types, properties,
required, additionalProperties, unevaluatedProperties, patternProperties, dependentRequired,
dependentSchemas, enum/const, numeric and string bounds, multipleOf, arrays with
items/prefixItems/contains/minItems/maxItems/uniqueItems, allOf/anyOf/oneOf/not, $defs +
$ref), half of them made
by mutating one schema so that compatible pairs are common. Whenever the checker says a reader
can read what a writer wrote, instances generated to be valid under the writer (and checked
valid by jsonschema) must all be accepted by the reader, as jsonschema judges. `default` is not
drawn: Confluent deems a required field with a default compatible (readers fill it), which a
validator does not do.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from eventscope.catalog.compat import COMPATIBLE, diff, status_of

NAMES = ("a", "b", "c")
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3),
                    st.sampled_from(["x", "y", "z", ""]))
REF = {"$ref": "#/$defs/D"}
SETTINGS = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


# --- schemas --------------------------------------------------------------------------------

def _optional(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(required, optional=optional)


NUMBERS = _optional({"type": st.sampled_from(["integer", "number"])}, {
    "minimum": st.integers(-4, 4), "maximum": st.integers(-4, 4),
    "exclusiveMinimum": st.integers(-4, 4), "exclusiveMaximum": st.integers(-4, 4),
    "multipleOf": st.sampled_from([1, 2, 3, 4, 6, 0.5])})
STRINGS = _optional({"type": st.just("string")}, {
    "minLength": st.integers(0, 3), "maxLength": st.integers(0, 5),
    "pattern": st.sampled_from(["^x", "y$"])})
OTHERS = st.fixed_dictionaries({"type": st.sampled_from(
    ["boolean", "null", ["string", "null"], ["integer", "string"]])})
VALUES = st.one_of(
    st.builds(lambda v: {"const": v}, SCALARS),
    st.builds(lambda vs: {"enum": vs}, st.lists(SCALARS, min_size=1, max_size=3, unique=True)))
LEAVES = st.one_of(st.just({}), st.just(True), st.just(False), NUMBERS, STRINGS, OTHERS,
                   VALUES, st.just(REF))
REFLESS_LEAVES = st.one_of(st.just({}), NUMBERS, STRINGS, OTHERS, VALUES)


def _objects(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return _optional({"type": st.just("object")}, {
        "properties": st.dictionaries(st.sampled_from(NAMES), children, max_size=3),
        "required": st.lists(st.sampled_from(NAMES), max_size=2, unique=True),
        "additionalProperties": st.one_of(st.just(False), st.just(True), children),
        "unevaluatedProperties": st.just(False),
        "patternProperties": st.dictionaries(st.sampled_from(["^x", "b"]), children, max_size=2),
        "dependentSchemas": st.dictionaries(st.sampled_from(NAMES), children, max_size=1),
        "dependentRequired": st.dictionaries(st.sampled_from(NAMES), st.lists(
            st.sampled_from(NAMES), min_size=1, max_size=2, unique=True), max_size=1),
        "minProperties": st.integers(0, 2), "maxProperties": st.integers(0, 3)})


def _arrays(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return _optional({"type": st.just("array")}, {
        "items": children, "prefixItems": st.lists(children, min_size=1, max_size=2),
        "minItems": st.integers(0, 2), "maxItems": st.integers(0, 3),
        "uniqueItems": st.booleans(), "contains": children, "minContains": st.integers(0, 2),
        "maxContains": st.integers(1, 2)})


def _extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    groups = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        _objects(children), _arrays(children),
        st.builds(lambda xs: {"allOf": xs}, groups), st.builds(lambda xs: {"anyOf": xs}, groups),
        st.builds(lambda xs: {"oneOf": xs}, groups), st.builds(lambda x: {"not": x}, children))


BODIES = st.recursive(LEAVES, _extend, max_leaves=6)
DEFINITIONS = st.recursive(REFLESS_LEAVES, lambda c: st.one_of(_objects(c), _arrays(c)),
                           max_leaves=3)


@st.composite
def schemas(draw: st.DrawFn) -> dict[str, Any]:
    body = draw(BODIES)
    root = body if isinstance(body, dict) else ({} if body else {"not": {}})
    return {**root, "$defs": {"D": draw(DEFINITIONS)}}


def _children(schema: dict[str, Any]) -> list[tuple[str, Any]]:
    """(keyword, key or index) of every subschema directly below `schema`."""
    found: list[tuple[str, Any]] = []
    for keyword, value in schema.items():
        if keyword == "properties" and isinstance(value, dict):
            found += [(keyword, name) for name in value]
        elif keyword in ("allOf", "anyOf", "oneOf", "prefixItems") and isinstance(value, list):
            found += [(keyword, index) for index in range(len(value))]
        elif keyword in ("items", "not", "additionalProperties"):
            found.append((keyword, None))
    return found


@st.composite
def mutated(draw: st.DrawFn, schema: Any, depth: int = 0) -> Any:
    """The schema with one small change at a random place."""
    if not isinstance(schema, dict):
        return draw(LEAVES)
    result = dict(schema)
    children = _children(schema)
    if children and depth < 4 and draw(st.integers(0, 9)) < 6:
        keyword, key = draw(st.sampled_from(children))
        if key is None:
            result[keyword] = draw(mutated(schema[keyword], depth + 1))
        else:
            inner = schema[keyword].copy()
            inner[key] = draw(mutated(schema[keyword][key], depth + 1))
            result[keyword] = inner
        return result
    numeric = [k for k, v in schema.items() if isinstance(v, (int, float))
               and not isinstance(v, bool)]
    action = draw(st.sampled_from(["drop", "set", "nudge", "nudge", "wrap", "leaf"]))
    own = sorted(set(schema) - {"$defs"})
    if action == "nudge" and numeric:
        key = draw(st.sampled_from(numeric))
        if key == "multipleOf":
            result[key] = draw(st.sampled_from([1, 2, 3, 4, 6, 12, 0.5]))
        else:
            result[key] = max(0, schema[key] + draw(st.sampled_from([-2, -1, 1, 2])))
    elif action == "drop" and own:
        del result[draw(st.sampled_from(own))]
    elif action == "wrap":
        body = {k: v for k, v in schema.items() if k != "$defs"}
        keyword = draw(st.sampled_from(["anyOf", "oneOf", "allOf"]))
        result = {keyword: [body, draw(LEAVES)]}
    elif action == "leaf":
        return draw(LEAVES)
    else:
        extra = draw(st.one_of(NUMBERS, STRINGS, VALUES, _objects(LEAVES), _arrays(LEAVES)))
        key = draw(st.sampled_from(sorted(extra)))
        result[key] = extra[key]
    return result


@st.composite
def pairs(draw: st.DrawFn) -> tuple[Any, Any]:
    first = draw(schemas())
    if draw(st.booleans()):
        return first, draw(schemas())
    second = draw(mutated(first))
    if isinstance(second, dict):  # a copy: leaves may be shared objects
        second = {"$defs": first["$defs"], **second}
        if draw(st.booleans()):  # a change behind the unchanged $ref
            second["$defs"] = {"D": draw(mutated(first["$defs"]["D"], 1))}
    return (first, second) if draw(st.booleans()) else (second, first)


# --- instances: drawn to fit the writer, then checked against it by jsonschema ---------------

ANY_JSON = st.recursive(SCALARS, lambda c: st.one_of(
    st.lists(c, max_size=3), st.dictionaries(st.sampled_from(NAMES + ("zz",)), c, max_size=3)),
    max_leaves=5)


def instances(schema: Any, root: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values aiming to be valid under `schema` (the caller filters with jsonschema)."""
    if schema is False or depth > 6:
        return st.nothing() if schema is False else ANY_JSON
    if schema is True or not isinstance(schema, dict):
        return ANY_JSON
    if "$ref" in schema:
        return instances((root.get("$defs") or {}).get("D", True), root, depth + 1)
    if "const" in schema:
        return st.just(schema["const"])
    if isinstance(schema.get("enum"), list):
        return st.sampled_from(schema["enum"]) if schema["enum"] else st.nothing()
    for keyword in ("allOf", "anyOf", "oneOf"):
        if schema.get(keyword):
            rest = {k: v for k, v in schema.items() if k != keyword}
            # B023: the loop returns here, so no later iteration rebinds `rest`
            return st.sampled_from(schema[keyword]).flatmap(
                lambda branch: instances({**rest, **branch} if isinstance(branch, dict) else  # noqa: B023
                                         branch, root, depth + 1))
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds or [
        "null", "boolean", "integer", "number", "string", "array", "object"]
    return st.sampled_from(kinds).flatmap(lambda kind: _typed(kind, schema, root, depth))


def _typed(kind: str, schema: dict[str, Any], root: dict[str, Any],
           depth: int) -> st.SearchStrategy[Any]:
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        low = max(schema.get("minimum", -8), schema.get("exclusiveMinimum", -9) + 1)
        high = min(schema.get("maximum", 8), schema.get("exclusiveMaximum", 9) - 1)
        step = schema.get("multipleOf", 1 if kind == "integer" else 0.5)
        if high < low:
            return st.nothing()
        return st.integers(int(low / step) - 1, int(high / step) + 1).map(lambda n: n * step)
    if kind == "string":
        return st.text("xyz", min_size=schema.get("minLength", 0),
                       max_size=max(schema.get("minLength", 0), schema.get("maxLength", 4)))
    if kind == "array":
        prefix = [instances(s, root, depth + 1) for s in schema.get("prefixItems") or []]
        rest = instances(schema.get("items", True), root, depth + 1)
        count = st.integers(schema.get("minItems", 0), max(schema.get("minItems", 0),
                                                            schema.get("maxItems", 3)))
        return count.flatmap(lambda n: st.tuples(*(prefix + [rest] * max(0, n - len(prefix)))
                                                 ).map(lambda t: list(t)[:n]))
    if kind == "object":
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties", schema.get("unevaluatedProperties", True))
        fields = {name: instances(sub, root, depth + 1) for name, sub in properties.items()}
        if extra is not False:
            fields["zz"] = instances(extra, root, depth + 1)
        for pattern, sub in (schema.get("patternProperties") or {}).items():
            fields["x" + pattern.strip("^$")] = instances(sub, root, depth + 1)
        keep = st.sets(st.sampled_from(sorted(fields))) if fields else st.just(set())
        return st.fixed_dictionaries({}, optional=fields).flatmap(
            lambda chosen: keep.map(lambda names: {k: v for k, v in chosen.items()
                                                   if k in names or k in properties}))
    return ANY_JSON


def _survives(writer: Any, reader: Any, data: st.DataObject) -> None:
    changes = diff(writer, reader)
    assert all(c.kind != "CHECKER_ERROR" for c in changes), changes
    if status_of(changes) != COMPATIBLE:
        return
    writes, reads = Draft202012Validator(writer), Draft202012Validator(reader)
    values = data.draw(st.lists(st.one_of(instances(writer, writer), ANY_JSON), min_size=1,
                                max_size=8), label="instances")
    valid = [v for v in values if writes.is_valid(v)]
    assume(valid)
    for value in valid:
        assert reads.is_valid(value), (
            f"judged compatible, but {value!r} (valid under the writer) fails the reader:"
            f" {[str(c) for c in changes]}")


# --- the properties ---------------------------------------------------------------------------

@SETTINGS
@given(st.one_of(ANY_JSON, BODIES), st.one_of(ANY_JSON, BODIES))
def test_checker_never_raises_on_any_json(writer, reader):
    """Any two JSON values, schemas or not, give a verdict and a list of changes, no exception."""
    changes = diff(writer, reader)
    assert status_of(changes) in ("compatible", "incompatible", "cannot tell")


@SETTINGS
@given(pairs(), st.data())
def test_backward_compatible_verdicts_survive_sampling(pair, data):
    """BACKWARD: whatever the old schema accepts, a new schema judged compatible accepts."""
    old, new = pair
    _survives(old, new, data)


@SETTINGS
@given(pairs(), st.data())
def test_forward_compatible_verdicts_survive_sampling(pair, data):
    """FORWARD: whatever the new schema accepts, an old schema judged compatible accepts."""
    old, new = pair
    _survives(new, old, data)


def test_mutation_makes_compatible_pairs_common():
    """The pair generator yields compatible verdicts often enough for the properties to bite."""
    seen = []

    @settings(max_examples=100, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(pairs())
    def collect(pair):
        seen.append(status_of(diff(*pair)))

    collect()
    assert seen.count(COMPATIBLE) >= 10, seen.count(COMPATIBLE)
