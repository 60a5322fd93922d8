"""The shared import writer: confined file names, atomic replacement, every problem listed."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventscope.catalog.asyncapi import import_asyncapi
from eventscope.catalog.loader import load_catalog
from eventscope.catalog.model import (
    Catalog, Consumer, EventType, SchemaVersion, Subscription, file_stem,
)
from eventscope.catalog.writer import CatalogWriteError, catalog_files, confined, write_catalog
from eventscope.cli import main
from eventscope.errors import EventscopeError

EXAMPLE = Path(__file__).parent.parent / "eventscope" / "demo_catalog"
SCHEMA = {"type": "object", "properties": {"orderId": {"type": "string"}}}


def _snapshot(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _type(name: str, **fields: object) -> EventType:
    fields.setdefault("versions", (SchemaVersion("1", SCHEMA),))
    return EventType(detail_type=name, source="com.shop.test", owner="team", **fields)


def _bus_document(address: str) -> dict:
    return {"asyncapi": "3.0.0", "info": {"title": "t", "version": "1"},
            "channels": {"c": {"address": address, "messages": {"m": {"payload": SCHEMA}}}},
            "operations": {"o": {"action": "send", "channel": {"$ref": "#/channels/c"}}}}


def test_a_dot_dot_name_never_writes_outside_the_target(tmp_path):
    """A consumer `a/../../x` (a valid name) lands inside consumers/, under a safe file name."""
    target = tmp_path / "deep" / "catalog"
    catalog = Catalog(event_types=(_type("OrderCreated"),), consumers=(Consumer(
        "a/../../x", "team", subscriptions=(Subscription("OrderCreated"),)),))
    written = write_catalog(catalog, target)
    assert all(p.resolve().is_relative_to(target.resolve()) for p in written)
    assert not list(tmp_path.rglob("x.yaml"))
    assert load_catalog(target).consumers[0].name == "a/../../x"


def test_a_channel_address_of_dot_dot_stays_inside_the_target(tmp_path):
    """`--detail-type-from channel` with address `../../x`: the type is catalogued under
    events/ of the target, and no file lands anywhere else."""
    document = tmp_path / "doc.yaml"
    document.write_text(yaml.safe_dump(_bus_document("../../x")), encoding="utf-8")
    target = tmp_path / "a" / "b" / "catalog"
    result = CliRunner().invoke(main, ["catalog", "import-asyncapi", str(document), "--out",
                                       str(target), "--detail-type-from", "channel"])
    assert result.exit_code in (0, 1), result.output  # accepted or refused, never elsewhere
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and p != document
               and not p.resolve().is_relative_to(target.resolve())]
    assert outside == []
    if result.exit_code == 0:
        assert load_catalog(target).event_type("../../x") is not None
        assert [p.parent.name for p in target.rglob("*.yaml")] == ["events"]


def test_a_failed_import_leaves_the_old_catalog_untouched(tmp_path):
    """An import whose result breaks (a type stating a mode its history breaks) changes nothing."""
    target = tmp_path / "catalog"
    shutil.copytree(EXAMPLE, target)
    before = _snapshot(target)
    broken = _type("OrderPaid", compatibility="FULL_TRANSITIVE", versions=(
        SchemaVersion("1", {"type": "object", "properties": {"a": {"type": "string"}},
                            "required": ["a"]}),
        SchemaVersion("2", {"type": "object", "properties": {"a": {"type": "integer"}},
                            "required": ["a"]})))
    with pytest.raises(CatalogWriteError) as error:
        write_catalog(Catalog(event_types=(broken,)), target)
    assert _snapshot(target) == before
    assert any("breaks FULL_TRANSITIVE" in p for p in error.value.problems)
    assert [p.name for p in tmp_path.iterdir()] == ["catalog"]  # no temporary folder left


def test_every_problem_is_listed(tmp_path):
    """Three broken types: three problems in the error, none hidden as `(and N more)`."""
    bad = tuple(_type(f"Type{i}", replacement=f"Missing{i}") for i in range(3))
    with pytest.raises(CatalogWriteError) as error:
        write_catalog(Catalog(event_types=bad), tmp_path / "cat")
    assert len(error.value.problems) == 3
    assert "more)" not in str(error.value)
    assert all(f"Missing{i}" in str(error.value) for i in range(3))


def test_the_command_prints_every_problem_and_exits_1(tmp_path):
    """import-asyncapi into a catalog it would break: one `error:` line per problem, exit 1."""
    target = tmp_path / "catalog"
    shutil.copytree(EXAMPLE, target)
    before = _snapshot(target)
    document = _bus_document("bus")
    document["channels"]["c"]["messages"] = {
        name: {"name": "OrderPaid", "x-version": version, "x-compatibility": "FULL",
               "payload": {"type": "object", "required": ["a"],
                           "properties": {"a": {"type": kind}}}}
        for name, version, kind in (("m1", "1", "string"), ("m2", "2", "integer"))}
    path = tmp_path / "doc.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    result = CliRunner().invoke(main, ["catalog", "import-asyncapi", str(path), "--out",
                                       str(target)])
    assert result.exit_code == 1
    assert "breaks FULL" in result.output and "is untouched" in result.output
    assert _snapshot(target) == before


def test_an_import_into_an_existing_catalog_replaces_its_types_and_keeps_the_rest(tmp_path):
    """The new OrderPaid replaces the old file; every other file stays as it was."""
    target = tmp_path / "catalog"
    shutil.copytree(EXAMPLE, target)
    before = _snapshot(target)
    old_paid = load_catalog(target).event_type("OrderPaid")
    new_paid = EventType(**{**vars(old_paid), "description": "re-imported"})
    write_catalog(Catalog(event_types=(new_paid,)), target)
    after = _snapshot(target)
    assert {k for k in before if before[k] != after.get(k)} == {"events/OrderPaid.yaml"}
    assert load_catalog(target).event_type("OrderPaid").description == "re-imported"


def test_confined_refuses_paths_that_leave_the_root(tmp_path):
    """`..`, absolute paths and escapes are refused."""
    for bad in ("../x.yaml", "events/../../x.yaml", "/etc/x.yaml"):
        with pytest.raises(EventscopeError):
            confined(tmp_path, bad)
    assert confined(tmp_path, "events/a.yaml") == (tmp_path / "events" / "a.yaml").resolve()


_NAMES = st.text(min_size=1, max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_NAMES, min_size=1, max_size=6), st.lists(_NAMES, max_size=4))
def test_random_names_never_give_a_path_outside_the_target(types, consumers):
    """Any detail-types and consumer names: every file is one level under its folder."""
    catalog = Catalog(
        event_types=tuple(_type(n) for n in types),
        consumers=tuple(Consumer(n, "team") for n in consumers), name="x")
    files = catalog_files(catalog)
    root = Path("/srv/catalog")
    for relative in files:
        folder, _, name = relative.rpartition("/")
        assert folder in ("", "events", "consumers", "schemas")
        assert name and not name.startswith(".") and "/" not in name and "\\" not in name
        assert confined(root, relative).parent in (root, root / folder)
    assert len({f.lower() for f in files}) == len(files)  # distinct, even ignoring case
    assert len(files) == 1 + len(types) + len(consumers)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=60))
def test_file_names_are_safe_and_keep_safe_names(name):
    """`file_stem` gives a plain file name (no folder, no dot-file); safe names are kept."""
    result = file_stem(name)
    assert result and result not in (".", "..") and not result.startswith(".")
    assert all(c.isascii() and (c.isalnum() or c in "._ -") for c in result)
    if name and name == result:
        assert not name.startswith(".")


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30),
       st.sampled_from(["name", "title", "channel"]))
def test_the_importer_never_raises_on_random_names(message_name, address, mode):
    """Random message names, titles and addresses: an answer (maybe skips), no exception."""
    document = _bus_document(address)
    document["channels"]["c"]["messages"]["m"].update({"name": message_name,
                                                       "title": message_name})
    imported = import_asyncapi([document], detail_type_from=mode)
    for relative in catalog_files(imported.catalog):
        assert ".." not in Path(relative).parts


_REFS = st.sampled_from([
    "#/components/schemas/A", "#/components/schemas/B", "#/components/schemas/A/properties/b",
    "#", "#/nope", "#anchor", "https://example.com/s.json", "../missing.yaml#/X", "/abs.yaml",
    "#/components/schemas/A~1x", "#/channels/c"])
_SCHEMAS = st.recursive(
    st.builds(lambda ref: {"$ref": ref}, _REFS) | st.just({"type": "string"}) | st.booleans(),
    lambda inner: st.builds(lambda props, items: {"type": "object", "properties": props,
                                                  "items": items},
                            st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
                            st.lists(inner, max_size=2)),
    max_leaves=8)


@settings(max_examples=100, deadline=None)
@given(_SCHEMAS, _SCHEMAS, _SCHEMAS)
def test_the_importer_never_raises_on_random_references(payload, a, b):
    """Payloads whose `$ref`s loop, dangle or leave the document: skipped or bundled, no raise."""
    document = _bus_document("bus")
    document["channels"]["c"]["messages"]["m"] = {"name": "T", "payload": payload}
    document["components"] = {"schemas": {"A": a, "B": b}}
    imported = import_asyncapi([document])
    stored = imported.catalog.event_type("T")
    assert (stored is None) == bool(imported.skipped)
    if stored is not None:
        assert "#/components" not in repr(stored.versions[0].schema)
