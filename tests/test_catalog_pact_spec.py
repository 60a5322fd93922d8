"""The Pact specification's message body cases, judged through eventscope's import.

Each kind of case the specification's `testcases/message/body` (v3, v4) and
`testcases/response/body` (v2, `$.body` paths) cover is written here again in our own words and
values: an expected message (body and matching rules) and an actual body, with the verdict the
specification gives. The expected message is imported as a pact of each specification version
it can be written in, and jsonschema must accept the actual body exactly when Pact says match.
"""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from eventscope.catalog.pact import import_pact

NO_BODY = object()


def _case(name: str, expected: Any, actual: Any, match: bool,
          rules: dict[str, list[dict[str, Any]]] | None = None, combine: str = "AND") -> Any:
    return pytest.param(expected, rules or {}, combine, actual, match, id=name)


PARCEL = {"parcel": {"weight": 12, "label": "fragile", "tags": ["red", "blue"]}}

CASES = [
    # equality: values without rules must equal the example; keys may come in any order
    _case("identical bodies match", PARCEL,
          {"parcel": {"tags": ["red", "blue"], "label": "fragile", "weight": 12}}, True),
    _case("array at top level matches",
          [{"sku": "KB-1", "qty": 2}, {"sku": "MS-9", "qty": 1}],
          [{"qty": 2, "sku": "KB-1"}, {"qty": 1, "sku": "MS-9"}], True),
    _case("array in a different order does not match", PARCEL,
          {"parcel": {"weight": 12, "label": "fragile", "tags": ["blue", "red"]}}, False),
    _case("different value found at an index", PARCEL,
          {"parcel": {"weight": 12, "label": "fragile", "tags": ["red", "green"]}}, False),
    _case("different value found at a key", PARCEL,
          {"parcel": {"weight": 12, "label": "handle with care", "tags": ["red", "blue"]}},
          False),
    _case("missing index", PARCEL,
          {"parcel": {"weight": 12, "label": "fragile", "tags": ["red"]}}, False),
    _case("missing key", PARCEL, {"parcel": {"weight": 12, "tags": ["red", "blue"]}}, False),
    _case("unexpected index with a value", PARCEL,
          {"parcel": {"weight": 12, "label": "fragile", "tags": ["red", "blue", "gold"]}},
          False),
    _case("unexpected index with null", PARCEL,
          {"parcel": {"weight": 12, "label": "fragile", "tags": ["red", "blue", None]}}, False),
    _case("unexpected key with a value is allowed", PARCEL,
          {"parcel": {**PARCEL["parcel"], "courier": "DHL"}}, True),
    _case("unexpected key with null is allowed", PARCEL,
          {"parcel": {**PARCEL["parcel"], "courier": None}}, True),
    # nulls and JSON types
    _case("not null found at a key where null expected", {"order": {"coupon": None}},
          {"order": {"coupon": "WINTER10"}}, False),
    _case("not null found in an array where null expected", {"codes": ["a", None, "c"]},
          {"codes": ["a", "b", "c"]}, False),
    _case("null found at a key where not null expected", {"order": {"coupon": "WINTER10"}},
          {"order": {"coupon": None}}, False),
    _case("null found in an array where not null expected", {"codes": ["a", "b", "c"]},
          {"codes": ["a", None, "c"]}, False),
    _case("number found at a key where string expected", {"box": {"size": "3"}},
          {"box": {"size": 3}}, False),
    _case("number found in an array where string expected", {"sizes": ["1", "2"]},
          {"sizes": ["1", 2]}, False),
    _case("string found at a key where number expected", {"box": {"size": 3}},
          {"box": {"size": "3"}}, False),
    _case("string found in an array where number expected", {"sizes": [1, 2]},
          {"sizes": [1, "2"]}, False),
    # no body: the body is not important
    _case("no body in the expected message", NO_BODY, {"anything": [1, {"at": "all"}]}, True),
    # type and regex matchers
    _case("type matchers accept other values of the same type",
          {"parcel": {"weight": 12, "label": "fragile", "tags": ["red"]}},
          {"parcel": {"weight": 80.5, "label": "keep dry", "tags": ["red"]}}, True,
          {"$.parcel.weight": [{"match": "type"}], "$.parcel.label": [{"match": "type"}]}),
    _case("regex matchers at a key and at fixed indexes",
          {"route": {"from": "AMS", "stops": ["BRU", "CDG"]}},
          {"route": {"from": "LHR", "stops": ["CDG", "BRU"]}}, True,
          {"$.route.from": [{"match": "regex", "regex": "^[A-Z]{3}$"}],
           "$.route.stops[0]": [{"match": "regex", "regex": "BRU|CDG"}],
           "$.route.stops[1]": [{"match": "regex", "regex": "BRU|CDG"}]}),
    _case("regex with bracket notation for a key that is not a name",
          {"7": {"code": "abcXYZ"}}, {"7": {"code": "other_code"}}, True,
          {"$['7'].code": [{"match": "regex", "regex": "\\w+"}]}),
    # arrays under matchers (eachLike forms), min, cascading to elements
    _case("array shorter than its minimum", {"lines": [{"sku": "KB-1"}]}, {"lines": []},
          False, {"$.lines": [{"match": "type", "min": 1}]}),
    _case("array with at least one element matching by example",
          {"lines": [{"sku": "KB-1"}]}, {"lines": [{"sku": "MS-9"}, {"sku": "HD-4"}]}, True,
          {"$.lines": [{"match": "type", "min": 1}], "$.lines[*].*": [{"match": "type"}]}),
    _case("array with an element of the wrong type",
          {"lines": [{"sku": "KB-1"}]}, {"lines": [{"sku": "MS-9"}, {"sku": 4}]}, False,
          {"$.lines": [{"match": "type", "min": 1}], "$.lines[*].*": [{"match": "type"}]}),
    _case("nested arrays that match",
          {"crates": [{"label": "A", "bottles": [{"litres": 1}]}]},
          {"crates": [{"label": "B", "bottles": [{"litres": 2}, {"litres": 5}]},
                      {"label": "C", "bottles": [{"litres": 0}]}]}, True,
          {"$.crates": [{"match": "type", "min": 1}], "$.crates[*].*": [{"match": "type"}],
           "$.crates[*].bottles": [{"min": 1}],
           "$.crates[*].bottles[*].*": [{"match": "type"}]}),
    _case("nested arrays that do not match",
          {"crates": [{"label": "A", "bottles": [{"litres": 1}]}]},
          {"crates": [{"label": "B", "bottles": [{"litres": "2"}]}]}, False,
          {"$.crates": [{"match": "type", "min": 1}], "$.crates[*].*": [{"match": "type"}],
           "$.crates[*].bottles": [{"min": 1}],
           "$.crates[*].bottles[*].*": [{"match": "type"}]}),
    _case("regex in every element", {"phones": [{"number": "0612345678"}]},
          {"phones": [{"number": "112"}, {"number": "0031201234567"}]}, True,
          {"$.phones": [{"match": "type", "min": 1}], "$.phones[*].*": [{"match": "type"}],
           "$.phones[*].number": [{"match": "regex", "regex": "\\d+"}]}),
    _case("regex that does not match in one element", {"phones": [{"number": "0612345678"}]},
          {"phones": [{"number": "112"}, {"number": "n/a"}]}, False,
          {"$.phones": [{"match": "type", "min": 1}], "$.phones[*].*": [{"match": "type"}],
           "$.phones[*].number": [{"match": "regex", "regex": "\\d+"}]}),
    # the v2 response-body cases (written with `$.body` paths in v2 pacts)
    _case("wildcard type matcher allows extra keys of any type",
          {"person": {"name": "Ann"}}, {"person": {"name": "Bob", "age": 7, "pet": None}}, True,
          {"$.person.*": [{"match": "type"}]}),
    _case("wildcard type matcher still checks the expected keys",
          {"person": {"name": "Ann"}}, {"person": {"name": 7, "age": "7"}}, False,
          {"$.person.*": [{"match": "type"}]}),
    _case("a rule on the elements only keeps the array's length",
          {"dates": [10]}, {"dates": [20, 5]}, False, {"$.dates[*]": [{"match": "type"}]}),
    _case("a rule on the array and its elements frees the length",
          {"dates": [10]}, {"dates": [20, 5, 1910]}, True,
          {"$.dates": [{"match": "type"}], "$.dates[*]": [{"match": "type"}]}),
    _case("objects in a top-level array matched by type",
          [{"name": "Ann", "age": 50}],
          [{"name": "Bob", "age": 22, "gender": "x"}, {"name": "Cy", "age": 64}], True,
          {"$": [{"match": "type"}], "$[*]": [{"match": "type"}]}),
    _case("objects in a top-level array missing expected keys",
          [{"Name": "Ann", "Age": 50}], [{"name": "Bob", "age": 22}], False,
          {"$": [{"match": "type"}], "$[*]": [{"match": "type"}], "$[*].*": [{"match": "type"}]}),
    _case("matchers at fixed indexes of a top-level array",
          [{"id": 1, "dob": "01/02/2003"}, {"id": 2, "dob": "04/05/2006"}],
          [{"id": 77, "dob": "11/12/2013"}, {"id": 78, "dob": "31/01/1999"}], True,
          {"$[0].id": [{"match": "type"}], "$[1].id": [{"match": "type"}],
           "$[0].dob": [{"match": "regex", "regex": "\\d{2}/\\d{2}/\\d{4}"}],
           "$[1].dob": [{"match": "regex", "regex": "\\d{2}/\\d{2}/\\d{4}"}]}),
    _case("array with a regex matcher on its elements",
          {"dates": ["29/10/2015"]}, {"dates": ["01/11/2010", "15/12/2014"]}, True,
          {"$.dates": [{"match": "type"}],
           "$.dates[*]": [{"match": "regex", "regex": "\\d{2}/\\d{2}/\\d{4}"}]}),
    _case("a top-level array with unexpected elements (no rules)",
          [{"colour": "red"}], [{"colour": "red"}, {"colour": "blue"}], False),
]


def _v2(expected: Any, rules: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    message: dict[str, Any] = {"description": "the case"}
    if expected is not NO_BODY:
        message["contents"] = expected
    if rules:
        message["matchingRules"] = {"$.body" + p[1:]: ms[0] for p, ms in rules.items()}
    return {"consumer": {"name": "spec"}, "messages": [message],
            "metadata": {"pact-specification": {"version": "2.0.0"}}}


def _v3(expected: Any, rules: dict[str, list[dict[str, Any]]], combine: str) -> dict[str, Any]:
    message: dict[str, Any] = {"description": "the case",
                               "metaData": {"contentType": "application/json"}}
    if expected is not NO_BODY:
        message["contents"] = expected
    if rules:
        message["matchingRules"] = {"body": {p: {"matchers": ms, "combine": combine}
                                             for p, ms in rules.items()}}
    return {"consumer": {"name": "spec"}, "messages": [message],
            "metadata": {"pactSpecification": {"version": "3.0.0"}}}


def _v4(expected: Any, rules: dict[str, list[dict[str, Any]]], combine: str) -> dict[str, Any]:
    interaction: dict[str, Any] = {"type": "Asynchronous/Messages", "description": "the case"}
    if expected is not NO_BODY:
        interaction["contents"] = {"contentType": "application/json", "encoded": False,
                                   "content": expected}
    if rules:  # the v4 cases name the category `content`
        interaction["matchingRules"] = {"content": {p: {"matchers": ms, "combine": combine}
                                                    for p, ms in rules.items()}}
    return {"consumer": {"name": "spec"}, "interactions": [interaction],
            "metadata": {"pactSpecification": {"version": "4.0"}}}


def _verdict(pact: dict[str, Any], actual: Any) -> bool:
    imported = import_pact(pact)
    assert not imported.refused, imported.refused
    (subscription,) = imported.consumer.subscriptions
    return Draft202012Validator(subscription.contract).is_valid(actual)


@pytest.mark.parametrize(("expected", "rules", "combine", "actual", "match"), CASES)
def test_v3_message_case_judged_as_the_specification_says(expected, rules, combine, actual,
                                                          match):
    """A v3 message pact: the contract accepts the actual body exactly when Pact matches."""
    assert _verdict(_v3(expected, rules, combine), actual) is match


@pytest.mark.parametrize(("expected", "rules", "combine", "actual", "match"), CASES)
def test_v4_message_case_judged_as_the_specification_says(expected, rules, combine, actual,
                                                          match):
    """The same cases as v4 Asynchronous/Messages interactions judge the same way."""
    assert _verdict(_v4(expected, rules, combine), actual) is match


@pytest.mark.parametrize(("expected", "rules", "combine", "actual", "match"), CASES)
def test_v2_message_case_judged_as_the_specification_says(expected, rules, combine, actual,
                                                          match):
    """The same cases written as v2 pacts (flat `$.body...` rules) judge the same way."""
    assert _verdict(_v2(expected, rules), actual) is match


@pytest.mark.parametrize(("expected", "rules", "combine", "actual", "match"), CASES)
def test_every_case_accepts_the_pacts_own_example(expected, rules, combine, actual, match):
    """Whatever the case, the contract accepts the example the pact itself was written with."""
    if expected is not NO_BODY:
        assert _verdict(_v3(expected, rules, combine), expected)
