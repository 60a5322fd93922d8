"""Compatibility verdicts on a corpus of schema pairs, by Confluent's JSON Schema rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from eventscope.catalog.compat import (CANNOT_TELL, COMPATIBLE, MODES, check, check_versions,
                                       diff, status_of)
from eventscope.catalog.model import EventType, SchemaVersion
from eventscope.cli import main

CASES = yaml.safe_load((Path(__file__).parent / "data" / "catalog" / "compat_cases.yaml")
                       .read_text())
EXAMPLE = Path(__file__).parent.parent / "eventscope" / "demo_catalog"


def _pair_expectations(case: dict) -> dict[str, bool]:
    expect = dict(case["expect"])
    expect["NONE"] = True
    for mode in ("BACKWARD", "FORWARD", "FULL"):
        expect[f"{mode}_TRANSITIVE"] = expect[mode]
    return expect


def test_corpus_has_at_least_forty_pairs():
    """The corpus covers at least 40 schema pairs, each expecting every plain mode."""
    assert len(CASES["pairs"]) >= 40
    assert all(set(c["expect"]) == {"BACKWARD", "FORWARD", "FULL"} for c in CASES["pairs"])


@pytest.mark.parametrize("case", CASES["pairs"], ids=[c["name"] for c in CASES["pairs"]])
def test_pair_verdicts(case):
    """Each pair gets the expected verdict in every mode, and the expected difference kinds."""
    got = {mode: check([("1", case["old"])], case["new"], mode).compatible for mode in MODES}
    assert got == _pair_expectations(case)
    kinds = {c.kind for c in diff(case["old"], case["new"])}
    assert set(case.get("kinds", [])) <= kinds


@pytest.mark.parametrize("case", CASES["history"], ids=[c["name"] for c in CASES["history"]])
def test_history_verdicts(case):
    """Transitive modes compare with every earlier version, plain modes with the latest."""
    history = [(str(i + 1), schema) for i, schema in enumerate(case["versions"])]
    got = {mode: check(history, case["new"], mode).compatible for mode in MODES}
    assert got == case["expect"]


@pytest.mark.parametrize("case", CASES["rules"], ids=[c["name"] for c in CASES["rules"]])
def test_rule_verdicts_agree_with_confluent(case):
    """Each rule case gets its verdict (Confluent's, unless marked `differs`) and its kinds."""
    changes = diff(case["old"], case["new"])
    assert status_of(changes) == case["verdict"], [str(c) for c in changes]
    assert set(case.get("kinds", [])) <= {c.kind for c in changes}


def test_rule_corpus_covers_confluent_families_and_few_differ():
    """The rule corpus spans Confluent's keyword families; deliberate differences are few."""
    kinds = {k for case in CASES["rules"] for k in case.get("kinds", [])}
    for family in ("MAX_LENGTH", "MINIMUM", "EXCLUSIVE_MAXIMUM", "MULTIPLE_OF", "REQUIRED",
                   "OPEN_CONTENT_MODEL", "PARTIALLY_OPEN_CONTENT_MODEL", "ADDITIONAL_PROPERTIES",
                   "DEPENDENCY_ARRAY", "DEPENDENCY_SCHEMA", "ITEM_ADDED", "ITEM_REMOVED",
                   "ADDITIONAL_ITEMS", "MIN_CONTAINS", "UNIQUE_ITEMS", "ENUM_ARRAY",
                   "SUM_TYPE", "PRODUCT_TYPE", "COMBINED_TYPE", "NOT_TYPE", "TYPE_"):
        assert any(family in kind for kind in kinds), family
    differ = [c for c in CASES["rules"] if "differs" in c]
    assert len(CASES["rules"]) >= 150 and len(differ) <= 8
    assert all(c["verdict"] != COMPATIBLE for c in differ)  # only ever stricter


def test_tuple_items_are_judged_not_a_traceback():
    """Draft-04 tuple `items: [...]` (which used to raise AttributeError) gets a verdict."""
    old = {"type": "array", "items": [{"type": "string"}], "additionalItems": False}
    new = {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]}
    assert status_of(diff(old, new)) == COMPATIBLE
    assert status_of(diff(new, old)) == "incompatible"


def test_change_behind_an_unchanged_ref_is_a_change():
    """A line item gaining a required field behind `items: {$ref}` breaks BACKWARD."""
    line = {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}
    wider = {**line, "properties": {**line["properties"], "qty": {"type": "integer"}},
             "required": ["sku", "qty"]}
    old = {"type": "array", "items": {"$ref": "#/$defs/Line"}, "$defs": {"Line": line}}
    new = {**old, "$defs": {"Line": wider}}
    assert not check([("1", old)], new, "BACKWARD").compatible
    assert check([("1", old)], new, "FORWARD").compatible


def test_same_root_id_in_both_versions_does_not_hide_a_change():
    """Two versions sharing one `$id` still resolve their own `$defs`."""
    old = {"$id": "https://shop.example/order.json", "$ref": "#/$defs/o",
           "$defs": {"o": {"type": "object", "properties": {"n": {"type": "string"}}}}}
    new = {**old, "$defs": {"o": {"type": "object", "properties": {"n": {"type": "integer"}}}}}
    assert not check([("1", old)], new, "BACKWARD").compatible


def test_cannot_tell_is_never_compatible():
    """A reader adding `if`/`then` gets "cannot tell": not compatible, not broken, a reason."""
    verdict = check([("1", {"type": "object"})], {"type": "object", "if": {"required": ["a"]},
                                                  "then": {"required": ["b"]}}, "BACKWARD")
    assert not verdict.compatible and verdict.status == CANNOT_TELL
    assert not verdict.breaking and "`if`" in " ".join(verdict.reasons())


def test_unresolvable_ref_is_cannot_tell_with_the_ref_named():
    """A `$ref` nothing resolves is reported by name, undecided."""
    changes = diff({"type": "string"}, {"$ref": "missing.json#/x"})
    assert status_of(changes) == CANNOT_TELL and "missing.json#/x" in changes[0].reason


def test_check_versions_reports_cannot_tell_as_such():
    """A version the checker cannot judge is an issue that says "cannot tell", not "breaks"."""
    event_type = EventType(
        detail_type="Thing", source="s", owner="o", compatibility="BACKWARD",
        versions=(SchemaVersion("1", {"type": "object"}),
                  SchemaVersion("2", {"type": "object", "propertyNames": {"maxLength": 3}})))
    [issue] = check_versions(event_type)
    assert str(issue).startswith("cannot tell whether version 2 satisfies BACKWARD")


def test_full_mode_is_backward_and_forward_on_every_pair():
    """FULL is exactly BACKWARD and FORWARD together for every corpus pair."""
    for case in CASES["pairs"]:
        e = case["expect"]
        assert e["FULL"] == (e["BACKWARD"] and e["FORWARD"]), case["name"]


def test_removed_required_field_reason_names_the_field():
    """Dropping required `currency` explains itself in words that name the field."""
    case = next(c for c in CASES["pairs"] if "currency" in c["name"])
    verdict = check([("1", case["old"])], case["new"], "FULL")
    text = " ".join(verdict.reasons())
    assert "`currency`" in text and "readers on v1 break" in text


def test_unknown_mode_is_refused():
    """A misspelt mode is an error, not a silent pass."""
    with pytest.raises(ValueError, match="unknown compatibility mode"):
        check([("1", {})], {}, "BACKWARDS")


def test_recursive_refs_terminate():
    """A self-referencing schema (a tree) is compared without infinite recursion."""
    tree = {"$defs": {"node": {"type": "object", "properties": {
        "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}},
        "$ref": "#/$defs/node"}
    assert diff(tree, tree) == []


def test_cli_diff_files_gates_on_the_mode(tmp_path):
    """`catalog diff OLD NEW --mode` prints reasons and exits 1 when the mode breaks."""
    case = next(c for c in CASES["pairs"] if c["name"] == "closed model, optional field added")
    (tmp_path / "old.json").write_text(json.dumps(case["old"]))
    (tmp_path / "new.yaml").write_text(yaml.safe_dump(case["new"]))
    args = ["catalog", "diff", str(tmp_path / "old.json"), str(tmp_path / "new.yaml")]
    ok = CliRunner().invoke(main, args + ["--mode", "BACKWARD"])
    assert ok.exit_code == 0 and "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL" in ok.output
    broken = CliRunner().invoke(main, args + ["--mode", "FULL"])
    assert broken.exit_code == 1 and "FULL: INCOMPATIBLE" in broken.output


def test_cli_diff_catalog_versions_json():
    """`catalog diff --catalog PATH OrderPaid@1 OrderPaid@2 --json` uses the type's mode."""
    result = CliRunner().invoke(main, ["catalog", "diff", "--catalog", str(EXAMPLE),
                                       "OrderPaid@1", "OrderPaid@2", "--json"])
    data = json.loads(result.stdout)
    assert result.exit_code == 0
    assert data["mode"] == "FULL_TRANSITIVE" and data["compatible"] is True
    assert data["status"] == "compatible" and data["verdicts"]["FULL"] == "compatible"
    assert [c["kind"] for c in data["backward"]] == [
        "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
        "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"]
    assert all(c["verdict"] == "compatible" for c in data["backward"])


def _diff(tmp_path: Path, old: object, new: object, *extra: str):
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    return CliRunner().invoke(main, ["catalog", "diff", str(tmp_path / "old.json"),
                                     str(tmp_path / "new.json"), *extra])


def test_cli_diff_exit_0_when_the_mode_holds(tmp_path):
    """A compatible change exits 0."""
    result = _diff(tmp_path, {"type": "integer"}, {"type": "number"}, "--mode", "BACKWARD")
    assert result.exit_code == 0 and "BACKWARD: compatible" in result.output


def test_cli_diff_exit_1_when_the_mode_breaks(tmp_path):
    """An incompatible change exits 1 and names Confluent's kind."""
    result = _diff(tmp_path, {"type": "number"}, {"type": "integer"}, "--mode", "BACKWARD")
    assert result.exit_code == 1 and "TYPE_NARROWED" in result.output
    assert "BACKWARD: INCOMPATIBLE" in result.output


def test_cli_diff_exit_1_with_the_reason_when_it_cannot_tell(tmp_path):
    """A change the checker cannot judge exits 1 (never 0) and says why."""
    result = _diff(tmp_path, {"type": "object"},
                   {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}},
                   "--mode", "BACKWARD", "--json")
    data = json.loads(result.stdout)
    assert result.exit_code == 1 and data["status"] == "cannot tell"
    assert data["compatible"] is False and "propertyNames" in json.dumps(data["backward"])
    text = _diff(tmp_path, {"type": "object"},
                 {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}},
                 "--mode", "BACKWARD")
    assert text.exit_code == 1 and "BACKWARD: CANNOT TELL" in text.output
    assert "could not judge" in text.output


def test_cli_diff_exit_2_for_a_missing_file(tmp_path):
    """A schema file that does not exist is an input error: exit 2, one line, no traceback."""
    result = CliRunner().invoke(main, ["catalog", "diff", str(tmp_path / "nope.json"),
                                       str(tmp_path / "nope.json")])
    assert result.exit_code == 2 and "error: cannot read schema" in result.output


def test_cli_diff_exit_2_for_an_invalid_schema(tmp_path):
    """A file that is not a JSON Schema (type 12) is an input error, exit 2."""
    result = _diff(tmp_path, {"type": 12}, {"type": "string"})
    assert result.exit_code == 2 and "is not a JSON Schema" in result.output


def test_cli_diff_exit_2_for_a_file_that_is_not_yaml(tmp_path):
    """Unparseable content is an input error, exit 2."""
    (tmp_path / "bad.json").write_text("{type: [")
    result = CliRunner().invoke(main, ["catalog", "diff", str(tmp_path / "bad.json"),
                                       str(tmp_path / "bad.json")])
    assert result.exit_code == 2 and "is not JSON or YAML" in result.output


def test_cli_diff_accepts_draft_04_tuple_items(tmp_path):
    """A draft-04 schema with tuple `items` is valid input and gets a verdict."""
    old = {"type": "array", "items": [{"type": "string"}], "additionalItems": False}
    new = {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]}
    result = _diff(tmp_path, old, new, "--mode", "BACKWARD")
    assert result.exit_code == 0, result.output
    assert "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL" in result.output


def test_cli_diff_unknown_version_is_exit_2():
    """Naming a version the catalog lacks gives a clear error and exit 2."""
    result = CliRunner().invoke(main, ["catalog", "diff", "--catalog", str(EXAMPLE),
                                       "OrderPaid@1", "OrderPaid@9"])
    assert result.exit_code == 2 and "OrderPaid@9: no such" in result.output


def _catalog_with(tmp_path: Path, v1: dict, v2: dict, mode: str = "BACKWARD") -> Path:
    event = {"detail-type": "BasketPriced", "source": "com.shop.basket", "owner": "basket",
             "compatibility": mode,
             "versions": [{"version": "1", "schema": v1}, {"version": "2", "schema": v2}]}
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "BasketPriced.yaml").write_text(yaml.safe_dump(event))
    return tmp_path


def test_catalog_validate_handles_tuple_items_without_a_traceback(tmp_path):
    """A draft-04 event type using tuple `items` gets problems or a pass, never a crash."""
    draft4 = "http://json-schema.org/draft-04/schema#"
    v1 = {"$schema": draft4, "type": "object", "properties": {"line": {
        "type": "array", "items": [{"type": "string"}], "additionalItems": False}}}
    v2 = {"$schema": draft4, "type": "object", "properties": {"line": {
        "type": "array", "items": [{"type": "string"}, {"type": "integer"}],
        "additionalItems": False}}}
    result = CliRunner().invoke(main, ["catalog", "validate", str(_catalog_with(tmp_path, v1,
                                                                                 v2))])
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_catalog_validate_reports_a_version_it_cannot_judge(tmp_path):
    """A version adding `if`/`then` is a problem saying "cannot tell", not a pass or a crash."""
    v1 = {"type": "object"}
    v2 = {"type": "object", "if": {"required": ["coupon"]}, "then": {"required": ["discount"]}}
    result = CliRunner().invoke(main, ["catalog", "validate", str(_catalog_with(tmp_path, v1,
                                                                                 v2))])
    assert result.exit_code == 1 and "cannot tell whether version 2 satisfies" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_same_nested_id_in_both_versions_does_not_hide_a_change():
    """An embedded resource with one `$id` in both versions resolves per version."""
    def version(amount_type: str) -> dict:
        return {"type": "object", "properties": {"amount": {"$ref": "urn:shop:money"}},
                "$defs": {"money": {"$id": "urn:shop:money", "type": amount_type}}}
    assert not check([("1", version("number"))], version("string"), "BACKWARD").compatible
    assert not check([("1", version("string"))], version("number"), "FORWARD").compatible
