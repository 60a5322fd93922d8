"""Compatibility verdicts on a corpus of schema pairs, by Confluent's JSON Schema rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from eventscope.catalog.compat import MODES, check, diff
from eventscope.cli import main

CASES = yaml.safe_load((Path(__file__).parent / "data" / "catalog" / "compat_cases.yaml")
                       .read_text())
EXAMPLE = Path(__file__).parent.parent / "examples" / "catalog"


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
    assert [c["kind"] for c in data["backward"]] == [
        "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"]


def test_cli_diff_unknown_version_is_one_line_error():
    """Naming a version the catalog lacks gives a clear error and exit 2."""
    result = CliRunner().invoke(main, ["catalog", "diff", "--catalog", str(EXAMPLE),
                                       "OrderPaid@1", "OrderPaid@9"])
    assert result.exit_code == 2 and "OrderPaid@9: no such" in result.output
