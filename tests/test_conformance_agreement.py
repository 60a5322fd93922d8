"""`check`'s schema drift (sampled payloads) and `catalog conformance` (every stored event) give
one verdict and one explanation for an event, whatever its schema's draft asserts.

The two once used different validators: jsonschema-rs asserts `format` in drafts 4 to 7 (and
checks e-mails more strictly), jsonschema never does without a format checker, so a draft-7
date-time that was not one was drift for one face and fine for the other.
"""

from __future__ import annotations

import json

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from eventscope.catalog.model import Catalog, EventType, SchemaVersion
from eventscope.contracts.conformance import check_conformance, json_path
from eventscope.findings.undocumented import validate_samples
from eventscope.redaction import token

DRAFT_7 = "http://json-schema.org/draft-07/schema#"
PROPERTIES = {
    "at": {"type": "string", "format": "date-time"},
    "mail": {"type": "string", "format": "email"},
    "n": {"type": "integer", "minimum": 0},
    "cc": {"type": "array", "items": {"type": "string", "format": "email"}},
    "customer": {"type": "object", "properties": {"id": {"type": "string"}}},
}

strings = st.one_of(
    st.sampled_from(["2024-05-01T10:00:12Z", "2024-05-01 10:00", "not a time", "a@b.io",
                     "a@b@c", "plain", "", "x@y"]),
    st.text(max_size=12),
    st.builds(lambda v: token(v, "email", b"k" * 32), st.text(max_size=5)))
values = st.one_of(strings, st.integers(-3, 3), st.none(), st.lists(strings, max_size=3),
                   st.dictionaries(st.sampled_from(["id", "name"]), strings, max_size=2))
details = st.dictionaries(st.sampled_from(sorted(PROPERTIES)), values, max_size=5)


def _catalog(draft_7: bool, required: list[str]) -> Catalog:
    schema: dict = {"type": "object", "properties": PROPERTIES, "required": required}
    if draft_7:
        schema["$schema"] = DRAFT_7
    return Catalog(event_types=(EventType("OrderPlaced", "shop", "team-shop",
                                          versions=(SchemaVersion("1", schema),)),))


@settings(max_examples=150)
@given(draft_7=st.booleans(), required=st.lists(st.sampled_from(["n", "at"]), unique=True),
       detail=details)
def test_both_faces_give_one_verdict_and_one_error(draft_7: bool, required: list[str],
                                                   detail: dict) -> None:
    """The sampled-payload check and the live conformance agree on valid or not and on the
    error, and an invalid event's error names where it is (never a bare "invalid")."""
    catalog = _catalog(draft_7, required)
    text = json.dumps({**detail, "version": "1"})
    samples = pd.DataFrame([{"id": "e1", "source": "shop", "detail_type": "OrderPlaced",
                             "version": "1", "time_ms": 1000, "detail": text}])
    (row,) = validate_samples(samples, catalog).to_dict("records")
    (drift,) = check_conformance(catalog, [("e1", "shop", "OrderPlaced", 1000, text)])
    assert (drift.checked, drift.failing == 0) == (1, bool(row["valid"]))
    assert row["error"] == drift.first_error
    if not row["valid"]:
        assert row["error"].startswith("$") and row["error"] != "$: invalid"


def test_a_draft_7_date_time_that_is_not_one_is_drift_for_both_with_its_path() -> None:
    """Draft 7 asserts `format`: a malformed date-time fails, and is named at its field."""
    catalog = _catalog(True, [])
    text = json.dumps({"at": "not a time", "version": "1"})
    samples = pd.DataFrame([{"id": "e1", "source": "shop", "detail_type": "OrderPlaced",
                             "version": "1", "time_ms": 1000, "detail": text}])
    (row,) = validate_samples(samples, catalog).to_dict("records")
    assert not row["valid"] and row["error"].startswith("$.at: ")


def test_json_paths_are_written_as_jsonschema_writes_them() -> None:
    """Keys after a dot, array indexes in brackets, the root alone as `$`."""
    assert json_path([]) == "$"
    assert json_path(["cc", 0, "id"]) == "$.cc[0].id"
