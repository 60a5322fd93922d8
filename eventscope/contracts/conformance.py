"""Live conformance: every stored event of a catalogued type checked against its version's schema.

Owns compiling one fast validator per (event type, version) (jsonschema-rs, `$ref`s resolved
offline through the catalog's schemas), the version of an event (its type's `VersionRule`:
the `version-from` path, a detail-type suffix such as `OrderPaid.v2`, or none, and the default
or only version for an event without one), and drift as data: per (source, type, version)
the events checked and failing, first/last failure time, the first failing event and its error
explained by `jsonschema`'s `best_match` with a JSON path. Events of uncatalogued types are not
this module's business (the findings report them as undocumented).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

import jsonschema_rs
import orjson
from jsonschema.exceptions import best_match

from eventscope.catalog.model import Catalog, EventType
from eventscope.catalog.schemas import catalog_registry, catalog_resources, validator, version_uri
from eventscope.events import VersionRule
from eventscope.redaction import is_token

Row = tuple[str, str, str, int, str]  # (event id, source, detail-type, time_ms, detail JSON)


@dataclass
class Drift:
    """How the stored events of one (source, type, version) conform to their schema."""

    source: str
    detail_type: str
    version: str
    checked: int = 0
    failing: int = 0
    first_failure_ms: int | None = None
    last_failure_ms: int | None = None
    first_event_id: str | None = None
    first_error: str | None = None  # "<json path>: <message>"
    unknown_version: bool = False  # the catalog has no such version of this type

    @property
    def drifting(self) -> bool:
        return self.failing > 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"drifting": self.drifting}


class ConformanceChecker:
    """Validates events against their version's schema with validators compiled once."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._types: dict[tuple[str, str], tuple[EventType | None, str | None]] = {}
        self._rules: dict[tuple[str, str], VersionRule] = {}
        self._rs_registry = jsonschema_rs.Registry(catalog_resources(catalog))
        self._compiled: dict[tuple[str, str], Any] = {}
        self.drift: dict[tuple[str, str, str], Drift] = {}

    def compiled(self, event_type: EventType, version: str) -> Any | None:
        """The compiled validator of one version, or None when the version is unknown."""
        key = (event_type.detail_type, version)
        if key not in self._compiled:
            found = event_type.version(version)
            self._compiled[key] = None if found is None else jsonschema_rs.validator_for(
                {"$ref": version_uri(*key)}, registry=self._rs_registry, offline=True)
        return self._compiled[key]

    def feed(self, event_id: str, source: str, detail_type: str, time_ms: int,
             detail: str | bytes) -> None:
        """Check one stored event; events of uncatalogued types are ignored."""
        event_type, version_override = self._type_of(source, detail_type)
        if event_type is None:
            return
        try:
            instance = orjson.loads(detail)
        except orjson.JSONDecodeError:
            instance = None
        # version-from honoured; an event without a version is the type's default/only one
        version = version_override or self._rule(event_type).version(instance, detail_type) or ""
        drift = self.drift.get((source, event_type.detail_type, version))
        if drift is None:
            drift = self.drift[(source, event_type.detail_type, version)] = Drift(
                source, event_type.detail_type, version,
                unknown_version=event_type.version(version) is None)
        drift.checked += 1
        if not self.conforms(event_type, version, instance):
            self._record_failure(drift, event_type, event_id, time_ms, instance)

    def conforms(self, event_type: EventType, version: str, instance: Any) -> bool:
        """Whether `instance` passes the version's schema (an unknown version never does),
        errors only at values eventscope replaced with a PII token ignored (`only_redacted`);
        `explain` says why not."""
        check = self.compiled(event_type, version)
        return check is not None and (check.is_valid(instance) or only_redacted(check, instance))

    def _type_of(self, source: str, detail_type: str) -> tuple[EventType | None, str | None]:
        key = (source, detail_type)
        if key not in self._types:
            self._types[key] = self.catalog.event_type_of(source, detail_type)
        return self._types[key]

    def _rule(self, event_type: EventType) -> VersionRule:
        rule = self._rules.get(event_type.key)
        if rule is None:
            rule = self._rules[event_type.key] = event_type.version_rule
        return rule

    def _record_failure(self, drift: Drift, event_type: EventType, event_id: str,
                        time_ms: int, instance: Any) -> None:
        drift.failing += 1
        if drift.first_failure_ms is None or time_ms < drift.first_failure_ms:
            drift.first_failure_ms = time_ms
            drift.first_event_id = event_id
            drift.first_error = self.explain(event_type, drift.version, instance)
        drift.last_failure_ms = max(drift.last_failure_ms or time_ms, time_ms)

    def explain(self, event_type: EventType, version: str, instance: Any) -> str:
        """The best error for an invalid event, with its JSON path (slow path, failures only)."""
        if event_type.version(version) is None:
            known = ", ".join(v.version for v in event_type.versions)
            return f"$: version {version!r} is not in the catalog (known: {known})"
        check = validator(version_uri(event_type.detail_type, version),
                          self._explainer_registry)
        error = best_match(e for e in check.iter_errors(instance) if not is_token(e.instance))
        if error is not None:
            return f"{error.json_path}: {error.message}"
        # jsonschema-rs asserts what jsonschema does not (`format` in drafts up to 7, and
        # stricter formats): its own first error, then, in the same path notation
        fast = self.compiled(event_type, version)
        for found in [] if fast is None else fast.iter_errors(instance):
            if not is_token(found.instance):
                return f"{json_path(found.instance_path)}: {found.message}"
        return "$: invalid"

    @cached_property
    def _explainer_registry(self) -> Any:
        """jsonschema's offline registry of the catalog, built at the first failure to
        explain (most checks never need it)."""
        return catalog_registry(self.catalog)

    def results(self) -> list[Drift]:
        return sorted(self.drift.values(), key=lambda d: (d.detail_type, d.version, d.source))


def json_path(path: Iterable[str | int]) -> str:
    """A JSON path as jsonschema's `ValidationError.json_path` writes it: `$.items[0].sku`."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def only_redacted(check: Any, instance: Any) -> bool:
    """True when every schema error is at a value eventscope replaced with its PII token
    (`redaction.is_token`): what the collector redacted (a declared object field made one
    token, an e-mail that no longer matches its `format`) cannot be checked, and is not the
    producer's drift; the rest of the event was checked and passed."""
    errors = list(check.iter_errors(instance))
    return bool(errors) and all(is_token(e.instance) for e in errors)


def check_conformance(catalog: Catalog, rows: Iterable[Row]) -> list[Drift]:
    """Drift per (source, type, version) over stored events given as rows."""
    checker = ConformanceChecker(catalog)
    for event_id, source, detail_type, time_ms, detail in rows:
        checker.feed(event_id, source, detail_type, time_ms, detail)
    return checker.results()
