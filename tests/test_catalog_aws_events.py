"""AWS service and partner events, as EventBridge delivers them, catalogued and verified.

The envelopes under tests/data/events/aws/ are written from the shapes AWS documents (S3
`Object Created`, EC2 state change, ECS task state change, a scheduled rule, CodePipeline, a
partner source); tests/data/catalog/aws/ catalogues them, with `version-from: none` where the
detail's `version` is a resource revision (ECS, CodePipeline) and `detail.schemaVersion` for the
partner. Each test ingests, checks or lists them the way a user would.
"""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventscope.catalog.loader import CatalogError, load_catalog
from eventscope.catalog.model import Catalog, EventType, SchemaVersion, file_stem
from eventscope.catalog.writer import write_catalog
from eventscope.cli import main
from eventscope.contracts.checks import verify
from eventscope.contracts.conformance import check_conformance
from eventscope.contracts.junit import read_junit, write_junit
from eventscope.events import parse_bus_event
from eventscope.findings.undocumented import why_undocumented

HERE = Path(__file__).parent
ENVELOPES = sorted((HERE / "data" / "events" / "aws").glob("*.json"))
CATALOG_DIR = HERE / "data" / "catalog" / "aws"
CATALOG = load_catalog(CATALOG_DIR)
# What each envelope is, in the catalog's terms: (detail-type, source, catalog version).
EXPECTED = {
    "s3-object-created": ("Object Created", "aws.s3", "0"),
    "ec2-instance-state-change": ("EC2 Instance State-change Notification", "aws.ec2", "1"),
    "ecs-task-state-change": ("ECS Task State Change", "aws.ecs", "1"),
    "scheduled-event": ("Scheduled Event", "aws.events", "1"),
    "codepipeline-execution-state-change": (
        "CodePipeline Pipeline Execution State Change", "aws.codepipeline", "2"),
    "partner-order-shipped": (
        "Shipment Dispatched", "aws.partner/parcelhub.example/123456789012/shipments", "2"),
}


def _envelope(name: str) -> dict:
    return json.loads((HERE / "data" / "events" / "aws" / f"{name}.json").read_text())


def _ndjson(tmp_path: Path) -> Path:
    path = tmp_path / "aws.ndjson"
    path.write_bytes(b"".join(orjson.dumps(json.loads(p.read_text())) + b"\n"
                              for p in ENVELOPES))
    return path


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_every_fixture_is_expected():
    """Each envelope file has its expected catalog identity (no fixture goes untested)."""
    assert {p.stem for p in ENVELOPES} == set(EXPECTED)


def test_aws_catalog_validates_with_spaces_and_partner_sources():
    """Detail-types with spaces and an `aws.partner/...` source load without a problem."""
    assert {(t.detail_type, t.source) for t in CATALOG.event_types} == {
        (dt, src) for dt, src, _ in EXPECTED.values()}
    code, output = _invoke("catalog", "validate", str(CATALOG_DIR))
    assert code == 0, output


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_stored_version_follows_the_catalog(name):
    """With the catalog's version rules, the stored version is the catalog's version."""
    envelope = _envelope(name)
    event = parse_bus_event(envelope, 100, (), CATALOG.version_rules())
    assert event.version == EXPECTED[name][2]


def test_without_rules_the_ecs_revision_is_stored_but_not_a_catalog_version():
    """Without the catalog the store keeps detail.version (an ECS task revision)."""
    event = parse_bus_event(_envelope("ecs-task-state-change"), 100)
    assert event.version == "14801"
    assert why_undocumented(CATALOG, event.source, event.detail_type, event.version) is None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_envelope_is_documented(name):
    """No AWS envelope of a catalogued type is undocumented, whatever version was stored."""
    envelope = _envelope(name)
    for stored in (parse_bus_event(envelope, 1), parse_bus_event(envelope, 1, (),
                                                                  CATALOG.version_rules())):
        assert why_undocumented(CATALOG, stored.source, stored.detail_type, stored.version,
                                envelope["detail"]) is None


def test_an_uncatalogued_aws_type_is_still_undocumented():
    """A different detail-type of a catalogued source is reported as unknown_type."""
    assert why_undocumented(CATALOG, "aws.ec2", "EBS Snapshot Notification", None) == \
        "unknown_type"


def test_a_partner_version_not_in_the_catalog_is_unknown():
    """The partner's version is read from detail.schemaVersion: version 3 is undocumented."""
    detail = {**_envelope("partner-order-shipped")["detail"], "schemaVersion": "3"}
    source = EXPECTED["partner-order-shipped"][1]
    assert why_undocumented(CATALOG, source, "Shipment Dispatched", "3", detail) == \
        "unknown_version"


def test_conformance_checks_every_envelope_at_its_catalog_version():
    """Live conformance sees each event once, at the catalog's version, none failing."""
    rows = [(e["id"], e["source"], e["detail-type"], 0, orjson.dumps(e["detail"]))
            for e in (json.loads(p.read_text()) for p in ENVELOPES)]
    drift = check_conformance(CATALOG, rows)
    assert {(d.detail_type, d.source, d.version) for d in drift} == set(EXPECTED.values())
    assert all(d.checked == 1 and d.failing == 0 and not d.unknown_version for d in drift)


@pytest.mark.parametrize("with_catalog", [False, True], ids=["plain", "with-catalog"])
def test_ingested_aws_events_verify_cleanly(store_url, tmp_path, with_catalog):
    """Ingested (with or without --catalog), the events pass live contracts, none
    undocumented, conformance clean."""
    extra = ["--catalog", str(CATALOG_DIR)] if with_catalog else []
    code, output = _invoke("ingest", str(_ndjson(tmp_path)), "--db", store_url, "--workers",
                           "0", *extra)
    assert code == 0, output
    code, output = _invoke("contracts", "verify", "--catalog", str(CATALOG_DIR),
                           "--db", store_url, "--json")
    assert code == 0, output
    live = [r for r in json.loads(output)["results"] if r["check_kind"] == "live"]
    assert len(live) == 6 and all(r["status"] == "pass" and r["summary"]["checked"] == 1
                                  for r in live), live
    code, output = _invoke("undocumented", "--catalog", str(CATALOG_DIR), "--db", store_url,
                           "--json")
    assert code == 0 and json.loads(output)["undocumented"] == [], output
    code, output = _invoke("catalog", "conformance", "--catalog", str(CATALOG_DIR),
                           "--db", store_url, "--json")
    drift = json.loads(output)["drift"]
    assert code == 0 and len(drift) == 6 and not any(d["failing"] for d in drift), output


def test_live_check_without_events_is_not_checked(store_url):
    """On an empty store the live checks say "not checked", never PASS, and the gate holds."""
    code, output = _invoke("contracts", "verify", "--catalog", str(CATALOG_DIR),
                           "--db", store_url)
    assert code == 0, output
    live = [line for line in output.splitlines() if line.endswith("live (0 checked, 0 failing)")]
    assert len(live) == 6 and all(line.startswith("NOT CHECKED ") for line in live)
    assert not any(line.startswith("PASS") and "(0 checked" in line
                   for line in output.splitlines())


def test_not_checked_results_are_skipped_in_junit(tmp_path):
    """JUnit marks checks that saw nothing as <skipped>, and names with spaces read back."""
    results = verify(CATALOG, events=lambda event_type, version: iter(()))
    path = tmp_path / "contracts.xml"
    write_junit(results, path)
    back = read_junit(path)
    assert sorted((r.consumer, r.detail_type, r.version, r.check_kind) for r in back) == \
        sorted((r.consumer, r.detail_type, r.version, r.check_kind) for r in results)
    assert {r.status for r in back if r.check_kind == "live"} == {"not checked"}
    assert "EC2 Instance State-change Notification" in {r.detail_type for r in back}


def test_version_from_none_with_several_versions_needs_a_default(tmp_path):
    """A type whose events carry no version and has two versions must say which they are."""
    data = yaml.safe_load((CATALOG_DIR / "events" / "codepipeline-execution.yaml").read_text())
    del data["default-version"]
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "pipeline.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    assert [p.field for p in caught.value.problems] == ["version-from"]


def test_a_default_version_must_be_declared(tmp_path):
    """`default-version` naming a version the type lacks is reported at that field."""
    data = yaml.safe_load((CATALOG_DIR / "events" / "codepipeline-execution.yaml").read_text())
    data["default-version"] = "9"
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "pipeline.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path)
    assert [p.field for p in caught.value.problems] == ["default-version"]


# --- every detail-type and source PutEvents accepts -------------------------------------------
# PutEventsRequestEntry: DetailType is free-form, at most 128 characters; Source is a string
# (1 to 256 characters); both are required, so non-empty.
detail_types = st.text(min_size=1, max_size=128)
sources = st.text(min_size=1, max_size=256)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(detail_type=detail_types, source=sources)
def test_any_putevents_name_loads_and_round_trips(tmp_path_factory, detail_type, source):
    """Written out and loaded again, any accepted detail-type and source come back equal."""
    folder = tmp_path_factory.mktemp("catalog")
    written = Catalog(event_types=(EventType(
        detail_type=detail_type, source=source, owner="team",
        versions=(SchemaVersion("1", {"type": "object"}),)),), name="c")
    files = write_catalog(written, folder)
    assert all(f.resolve().is_relative_to(folder.resolve()) for f in files)
    loaded = load_catalog(folder)
    (event_type,) = loaded.event_types
    assert (event_type.detail_type, event_type.source) == (detail_type, source)


@settings(max_examples=200, deadline=None)
@given(names=st.lists(detail_types, min_size=2, max_size=2, unique=True))
def test_file_stems_are_safe_and_distinct(names):
    """A name's file stem has no folder part, is not hidden, and two names never share one."""
    stems = [file_stem(name) for name in names]
    for stem in stems:
        assert stem and "/" not in stem and "\\" not in stem and "\0" not in stem
        assert not stem.startswith(".") and len(stem.encode()) < 200
    assert stems[0] != stems[1]


def test_readable_names_keep_their_file_name():
    """`EC2 Instance State-change Notification` is its own file name; `../x` is not."""
    assert file_stem("EC2 Instance State-change Notification") == \
        "EC2 Instance State-change Notification"
    assert "/" not in file_stem("../x") and not file_stem("../x").startswith(".")
