"""Pact matchers one by one, and properties of the contract a pact body becomes.

Each matcher of the Pact specification's tables (v2 to v4) is imported and judged on values
Pact accepts and values it rejects; hypothesis checks that a pact's own example always passes
its contract, that unmatched values are compared by equality and type-matched ones by type.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from eventscope.catalog.pact import Refused, contract_schema


def _rules(rules: dict[str, Any], combine: str = "AND") -> dict[str, Any]:
    return {"body": {p: {"matchers": m if isinstance(m, list) else [m], "combine": combine}
                     for p, m in rules.items()}}


def _accepts(body: Any, rules: dict[str, Any], actual: Any, combine: str = "AND") -> bool:
    return Draft202012Validator(contract_schema(body, _rules(rules, combine))).is_valid(actual)


@pytest.mark.parametrize(("matcher", "example", "good", "bad"), [
    ({"match": "integer"}, 3, 1200, 1.5),
    ({"match": "number"}, 3, 2.75, "3"),
    ({"match": "decimal"}, 1.5, 99.25, "1.5"),
    ({"match": "null"}, None, None, 0),
    ({"match": "boolean"}, True, "false", "yes"),
    ({"match": "include", "value": "-EU-"}, "ORD-EU-1", "X-EU-Y", "ORD-US-1"),
    ({"match": "regex", "regex": "^[A-Z]{3}$"}, "EUR", "USD", "usd"),
    ({"match": "equality"}, "EUR", "EUR", "USD"),
    ({"match": "type"}, "EUR", "anything", 4),
    ({"match": "date", "format": "yyyy-MM-dd"}, "2026-11-02", "1999-01-31", "02/11/2026"),
    ({"match": "time", "format": "HH:mm"}, "09:15", "23:59", "9h15"),
    ({"match": "timestamp", "format": "yyyy-MM-dd'T'HH:mm:ss.SSSX"},
     "2026-11-02T09:15:41.120Z", "2025-01-01T00:00:00.000+01", "2026-11-02 09:15"),
    ({"match": "datetime", "format": "yyyy-MM-dd'T'HH:mm:ssXXX"},
     "2026-11-02T09:15:41+01:00", "2026-11-02T09:15:41Z", "2026-11-02T09:15:41"),
    ({"match": "date"}, "2026-11-02", "2000-02-29", "2026-11-2x"),
    ({"match": "notEmpty"}, "x", "y", ""),
    ({"match": "semver"}, "1.2.3", "10.0.0-rc.1+build.5", "1.2"),
    ({"timestamp": "yyyy-MM-dd HH:mm:ss"}, "2026-11-02 09:15:41", "2000-01-01 00:00:00",
     "2026-11-02T09:15:41"),
])
def test_leaf_matcher_accepts_what_pact_accepts(matcher, example, good, bad):
    """Each scalar matcher: its own example and another value pass, a wrong one fails."""
    assert _accepts({"v": example}, {"$.v": matcher}, {"v": example})
    assert _accepts({"v": example}, {"$.v": matcher}, {"v": good})
    assert not _accepts({"v": example}, {"$.v": matcher}, {"v": bad})


def test_matched_values_keep_their_example_as_an_example():
    """A matched value's example is a JSON Schema `examples` entry, not a constraint."""
    schema = contract_schema({"id": "ord-1"}, _rules({"$.id": {"match": "type"}}))
    assert schema["properties"]["id"] == {"type": "string", "examples": ["ord-1"]}


def test_a_rule_on_an_object_cascades_to_its_children():
    """`$.order` typed: every value inside it is matched by type, not by equality."""
    body = {"order": {"id": "o-1", "total": 10, "lines": [{"sku": "A"}]}}
    rules = {"$.order": {"match": "type"}}
    assert _accepts(body, rules, {"order": {"id": "o-9", "total": 99.5,
                                            "lines": [{"sku": "Z"}]}})
    assert not _accepts(body, rules, {"order": {"id": 9, "total": 99.5,
                                                "lines": [{"sku": "Z"}]}})


def test_equality_resets_a_cascaded_rule():
    """An equality rule on a child wins over the type rule of its parent."""
    body = {"order": {"id": "o-1", "currency": "EUR"}}
    rules = {"$.order": {"match": "type"}, "$.order.currency": {"match": "equality"}}
    assert _accepts(body, rules, {"order": {"id": "o-2", "currency": "EUR"}})
    assert not _accepts(body, rules, {"order": {"id": "o-2", "currency": "USD"}})


def test_min_and_max_apply_only_where_written():
    """`max: 1` on the outer array does not limit the arrays inside it (not cascaded)."""
    body = {"groups": [[1]]}
    rules = {"$.groups": {"match": "type", "max": 1}}
    assert _accepts(body, rules, {"groups": [[1, 2, 3]]})
    assert not _accepts(body, rules, {"groups": [[1], [2]]})


def test_min_max_type_bounds_the_array():
    """MinMaxType: between min and max elements, each like the example."""
    rules = {"$.tags": {"match": "type", "min": 1, "max": 2}}
    assert _accepts({"tags": ["a"]}, rules, {"tags": ["x", "y"]})
    assert not _accepts({"tags": ["a"]}, rules, {"tags": ["x", "y", "z"]})
    assert not _accepts({"tags": ["a"]}, rules, {"tags": []})
    assert not _accepts({"tags": ["a"]}, rules, {"tags": ["x", 2]})


def test_matchers_combined_with_or():
    """combine OR: either matcher is enough."""
    rules = {"$.code": [{"match": "regex", "regex": "^A\\d+$"}, {"match": "integer"}]}
    assert _accepts({"code": "A1"}, rules, {"code": 7}, combine="OR")
    assert _accepts({"code": "A1"}, rules, {"code": "A42"}, combine="OR")
    assert not _accepts({"code": "A1"}, rules, {"code": "B1"}, combine="OR")


def test_matchers_combined_with_and():
    """combine AND: every matcher must hold."""
    rules = {"$.ref": [{"match": "include", "value": "EU"}, {"match": "include", "value": "-"}]}
    assert _accepts({"ref": "EU-1"}, rules, {"ref": "X-EU"})
    assert not _accepts({"ref": "EU-1"}, rules, {"ref": "EU1"})


def test_values_matcher_ignores_the_keys():
    """`values`: any key, each value like the example's first value."""
    body = {"stock": {"KB-1": 4}}
    rules = {"$.stock": {"match": "values"}, "$.stock.*": {"match": "type"}}
    assert _accepts(body, rules, {"stock": {"MS-9": 0, "HD-4": 12}})
    assert not _accepts(body, rules, {"stock": {"MS-9": "none"}})


def test_each_key_and_each_value_matchers():
    """v4 eachKey constrains the keys, eachValue every value."""
    body = {"prices": {"EUR": 10}}
    rules = {"$.prices": [
        {"match": "eachKey", "rules": [{"match": "regex", "regex": "^[A-Z]{3}$"}]},
        {"match": "eachValue", "rules": [{"match": "number"}]}]}
    assert _accepts(body, rules, {"prices": {"USD": 11.5, "GBP": 9}})
    assert not _accepts(body, rules, {"prices": {"usd": 11.5}})
    assert not _accepts(body, rules, {"prices": {"USD": "11.5"}})


def test_array_contains_matcher_looks_for_each_variant():
    """v4 arrayContains: some element matches each variant (under the variant's rules)."""
    body = {"events": [{"kind": "paid", "at": 1}, {"kind": "shipped", "at": 2}]}
    variants = [{"index": 0, "rules": {"$.kind": {"matchers": [{"match": "equality"}]},
                                       "$.at": {"matchers": [{"match": "integer"}]}}},
                {"index": 1, "rules": {"$.kind": {"matchers": [{"match": "equality"}]}}}]
    rules = {"$.events": {"match": "arrayContains", "variants": variants}}
    assert _accepts(body, rules, {"events": [{"kind": "other"}, {"kind": "shipped", "at": 2},
                                             {"kind": "paid", "at": 5}]})
    assert not _accepts(body, rules, {"events": [{"kind": "paid", "at": 5}]})
    assert not _accepts(body, rules, {"events": [{"kind": "shipped", "at": 9},  # `at` unruled
                                                 {"kind": "paid", "at": 5}]})


def test_v2_rules_without_a_match_key():
    """v2 rules may omit `match`: a regex or a min alone say which matcher it is."""
    rules = {"$.body.ids": {"min": 1}, "$.body.ids[*]": {"regex": "^id-\\d+$"}}
    schema = contract_schema({"ids": ["id-1"]}, rules)
    assert Draft202012Validator(schema).is_valid({"ids": ["id-2", "id-3"]})
    assert not Draft202012Validator(schema).is_valid({"ids": ["x"]})
    assert not Draft202012Validator(schema).is_valid({"ids": []})


def test_a_message_without_rules_keeps_every_key_required_and_equal():
    """No rules: the contract is the example itself (keys required, values equal)."""
    schema = contract_schema({"a": 1, "b": [True]}, None)
    assert schema["required"] == ["a", "b"]
    assert not Draft202012Validator(schema).is_valid({"a": 1, "b": [False]})


@pytest.mark.parametrize(("rules", "reason"), [
    ({"$.v": {"match": "contentType", "value": "image/png"}}, "binary"),
    ({"$.v": {"match": "pact-plugin-thing"}}, "plugin"),
    ({"$.v": {"match": "regex", "regex": "(unclosed"}}, "does not compile"),
    ({"$.o": {"match": "integer"}}, "can never match"),
])
def test_unrepresentable_matchers_are_refused_with_a_reason(rules, reason):
    """A matcher JSON Schema cannot say is refused, with why, rather than dropped."""
    with pytest.raises(Refused, match=reason):
        contract_schema({"v": "x", "o": {"k": 1}}, _rules(rules))


# --- properties ------------------------------------------------------------------------------

KEYS = st.text(alphabet="abcdefgh_-. 'x0123", min_size=1, max_size=6)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=False, allow_infinity=False, width=32),
                    st.text(max_size=8))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12)
BODIES = st.dictionaries(KEYS, JSON, max_size=5)
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _leaves(value: Any, path: str = "$") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items()
                for leaf in _leaves(v, path + "['" + k.replace("'", "\\'") + "']")]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{path}[{i}]")]
    return [(path, value)]


def _replace_leaves(value: Any, new: list[Any]) -> Any:
    if isinstance(value, dict):
        return {k: _replace_leaves(v, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_leaves(v, new) for v in value]
    return new.pop(0)


def _same_type(value: Any) -> st.SearchStrategy[Any]:
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, (int, float)):
        return st.one_of(st.integers(-10**9, 10**9), st.floats(allow_nan=False,
                                                                allow_infinity=False))
    if isinstance(value, str):
        return st.text(max_size=8)
    return st.none()


@SETTINGS
@given(BODIES)
def test_property_a_pacts_own_example_passes_its_contract(body):
    """For any body without matchers, the pact's own example is accepted."""
    assert Draft202012Validator(contract_schema(body, None)).is_valid(body)


@SETTINGS
@given(BODIES, st.data())
def test_property_unmatched_values_are_compared_by_equality(body, data):
    """Without matchers, changing any single leaf to a different value is rejected."""
    leaves = _leaves(body)
    if not leaves:
        return
    index = data.draw(st.integers(0, len(leaves) - 1))
    old = leaves[index][1]
    new = data.draw(SCALARS.filter(lambda v: not (v == old and type(v) is type(old))
                                   and not (isinstance(v, (int, float))
                                            and isinstance(old, (int, float))
                                            and not isinstance(v, bool)
                                            and not isinstance(old, bool) and v == old)))
    values = [leaf for _, leaf in leaves]
    values[index] = new
    changed = _replace_leaves(body, values)
    assert not Draft202012Validator(contract_schema(body, None)).is_valid(changed)


@SETTINGS
@given(BODIES, st.data())
def test_property_type_matchers_accept_any_value_of_the_same_json_type(body, data):
    """A type matcher on every leaf: any values of the same JSON types are accepted, and a
    leaf of another type is rejected."""
    leaves = _leaves(body)
    rules = {"body": {path: {"matchers": [{"match": "type"}]} for path, _ in leaves}}
    validator = Draft202012Validator(contract_schema(body, rules))
    renewed = _replace_leaves(body, [data.draw(_same_type(v)) for _, v in leaves])
    assert validator.is_valid(renewed)
    if leaves:
        index = data.draw(st.integers(0, len(leaves) - 1))
        values = [v for _, v in leaves]
        values[index] = [] if not isinstance(values[index], list) else "not a list"
        assert not validator.is_valid(_replace_leaves(body, values))


SAFE = [{"match": "type"}, {"match": "type", "min": 0}, {"match": "equality"},
        {"match": "regex", "regex": ".*"}, {"match": "notEmpty"}, {"match": "values"}]


@SETTINGS
@given(BODIES, st.data())
def test_property_import_never_raises_and_keeps_the_example(body, data):
    """Random rules on random paths of the body (and wildcards): the import returns a
    contract or refuses with a reason, never crashes, and any contract accepts the body."""
    paths = [p for p, _ in _leaves(body)] + ["$", "$.*", "$.*[*]", "$[*]"]
    chosen = data.draw(st.lists(st.sampled_from(paths), max_size=4))
    rules = {"body": {p: {"matchers": [data.draw(st.sampled_from(SAFE))],
                          "combine": data.draw(st.sampled_from(["AND", "OR"]))}
                      for p in chosen}}
    try:
        schema = contract_schema(body, rules)
    except Refused:
        return
    assert Draft202012Validator(schema).is_valid(body)


def test_elements_beyond_the_example_follow_its_first_element():
    """Under a type rule, element i follows example element i and later ones the first."""
    body = {"mix": [1, "two"]}
    rules = {"$.mix": {"match": "type"}}
    assert _accepts(body, rules, {"mix": [5, "six", 7]})
    assert not _accepts(body, rules, {"mix": [5, "six", "seven"]})
    assert not _accepts(body, rules, {"mix": ["five"]})
    assert _accepts(body, rules, {"mix": []})  # no min: shorter is fine


def test_an_empty_example_array_under_a_rule_constrains_nothing_inside():
    """Pact compares nothing against an empty example array; only the array type remains."""
    rules = {"$.tags": {"match": "type", "min": 1}}
    assert _accepts({"tags": []}, rules, {"tags": [1, "a"]})
    assert not _accepts({"tags": []}, rules, {"tags": "a"})
