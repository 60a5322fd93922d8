"""Contract checks as data: one `ContractResult` per (consumer, event type, version, check).

Owns the three checks of a consumer's contract for one version of an event it subscribes to:
`schema` (can a payload valid under the producer's schema fail the contract? a structural
comparison, each violation with its JSON path), `examples` (the producer's examples for that
version) and `live` (stored events of that type and version). Pure: the events come in as an
iterable of (event id, detail JSON) pairs, read by the caller from the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from jsonschema.exceptions import best_match
from referencing import Registry

from eventscope.catalog.compat import breaking
from eventscope.catalog.model import Catalog, Consumer, EventType, Subscription
from eventscope.catalog.schemas import catalog_registry, contract_uri, validator, version_uri

CHECK_KINDS = ("schema", "examples", "live")
EventSource = Callable[[EventType, str], Iterable[tuple[str, str]]]


@dataclass(frozen=True)
class ContractResult:
    """The outcome of one contract check, as stored in the `contract_results` table."""

    consumer: str
    detail_type: str
    version: str
    check_kind: str
    passed: bool
    violations: tuple[dict[str, Any], ...] = ()
    summary: dict[str, Any] = field(default_factory=dict)
    checked_ms: int = 0
    catalog_revision: str = ""
    origin: str = "eventscope"

    @property
    def status(self) -> str:
        """'pass', 'fail', or 'not checked' for a check that saw nothing (no event, no example).

        A check that checked nothing is not a pass; it is not a failure of the gate either.
        """
        return check_status(self.passed, self.summary)

    @property
    def name(self) -> str:
        """A stable test name: `OrderCreated v1 schema`."""
        version = f" v{self.version}" if self.version else ""
        return f"{self.detail_type}{version} {self.check_kind}"

    def explain(self) -> str:
        """Every violation on its own line, for a person reading a failed check."""
        return "\n".join(f"{_where(v)}{v.get('path', '$')}: {v['message']}"
                         for v in self.violations)

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["violations"] = orjson.dumps(list(self.violations)).decode()
        row["summary"] = orjson.dumps(self.summary).decode()
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ContractResult:
        return cls(row["consumer"], row["detail_type"], row["version"], row["check_kind"],
                   bool(row["passed"]), tuple(orjson.loads(row["violations"])),
                   orjson.loads(row["summary"]), int(row["checked_ms"]),
                   row["catalog_revision"], row["origin"])


def check_status(passed: bool, summary: Any) -> str:
    """'pass', 'fail' or 'not checked' from a result's pass flag and its summary (a dict, or
    the JSON text the store keeps; anything unreadable says nothing about what was checked)."""
    if not passed:
        return "fail"
    if isinstance(summary, (str, bytes)):
        try:
            summary = orjson.loads(summary or "{}")
        except orjson.JSONDecodeError:
            summary = {}
    if isinstance(summary, dict) and (summary.get("checked") == 0 or summary.get("skipped")):
        return "not checked"
    return "pass"


def _where(violation: dict[str, Any]) -> str:
    if "example" in violation:
        return f"example {violation['example']}: "
    if "event_id" in violation:
        return f"event {violation['event_id']}: "
    return ""


def pointer_to_json_path(pointer: str) -> str:
    """`#/properties/customer/properties/email` -> `$.customer.email` (items become [*])."""
    parts = [p for p in pointer.lstrip("#").split("/") if p]
    path, index = "$", 0
    while index < len(parts):
        part = parts[index]
        if part == "properties" and index + 1 < len(parts):
            path += f".{parts[index + 1]}"
            index += 2
            continue
        if part == "items":
            path += "[*]"
        elif part in ("required",) and index + 1 < len(parts):
            path += f".{parts[index + 1]}"
            index += 2
            continue
        index += 1
    return path


def structural_violations(producer: Any, contract: Any, registry: Registry[Any] | None,
                          version: str) -> list[dict[str, Any]]:
    """Ways a payload valid under the producer's schema can fail the contract (reader)."""
    return [{"path": pointer_to_json_path(c.path), "kind": c.kind, "message": c.reason}
            for c in breaking(producer, contract, registry, f"producer v{version}", "contract")]


def validation_violations(check: Any, instance: Any) -> list[dict[str, Any]]:
    """The best error of validating one instance, as a violation (empty when valid)."""
    error = best_match(check.iter_errors(instance))
    if error is None:
        return []
    return [{"path": error.json_path, "message": error.message}]


def events_of_version(event_type: EventType, version: str,
                      rows: Iterable[tuple[str, str, str]],
                      limit: int | None = None) -> Iterator[tuple[str, str]]:
    """(event id, detail) of the rows (id, detail-type, detail) whose version is `version`.

    The version is read by the type's `version-from` (an event without one is the type's
    default or only version), whatever version the store recorded.
    """
    rule = event_type.version_rule
    found = 0
    for event_id, detail_type, detail in rows:
        if limit is not None and found >= limit:
            return
        try:
            instance = orjson.loads(detail)
        except orjson.JSONDecodeError:
            instance = None
        if rule.version(instance, detail_type) == version:
            found += 1
            yield event_id, detail


def subscribed_versions(event_type: EventType, subscription: Subscription) -> list[str]:
    """The versions a subscription accepts: the listed ones, or every catalogued version."""
    have = [v.version for v in event_type.versions]
    return [v for v in subscription.versions if v in have] if subscription.versions else have


def verify(catalog: Catalog, consumer: str | None = None,
           events: EventSource | None = None, now_ms: int | None = None,
           checks: Iterable[str] = CHECK_KINDS) -> list[ContractResult]:
    """Every contract check of the catalog (or of one consumer); `live` needs `events`."""
    registry = catalog_registry(catalog)
    stamp = now_ms if now_ms is not None else int(time.time() * 1000)
    wanted = set(checks) if events is not None else set(checks) - {"live"}
    results: list[ContractResult] = []
    for item in catalog.consumers:
        if consumer is None or item.name == consumer:
            results += _verify_consumer(catalog, item, registry, events, wanted)
    return [ContractResult(**{**asdict(r), "checked_ms": stamp,
                              "catalog_revision": catalog.revision}) for r in results]


def _verify_consumer(catalog: Catalog, consumer: Consumer, registry: Registry[Any],
                     events: EventSource | None, wanted: set[str]) -> Iterator[ContractResult]:
    for subscription in consumer.subscriptions:
        event_type = catalog.event_type(subscription.detail_type, subscription.source)
        if event_type is None or subscription.contract is None:
            continue
        contract = validator(contract_uri(consumer.name, event_type.detail_type), registry)
        for version in subscribed_versions(event_type, subscription):
            key = (consumer.name, event_type.detail_type, version)
            schema_version = event_type.version(version)
            assert schema_version is not None
            if "schema" in wanted:
                found = structural_violations(
                    {"$ref": version_uri(event_type.detail_type, version)},
                    {"$ref": contract_uri(consumer.name, event_type.detail_type)},
                    registry, version)
                yield ContractResult(*key, "schema", not found, tuple(found))
            if "examples" in wanted:
                yield _examples(key, schema_version.examples, contract)
            if "live" in wanted and events is not None:
                yield live_result(key, events(event_type, version), contract)


def _examples(key: tuple[str, str, str], examples: Iterable[dict[str, Any]],
              contract: Any) -> ContractResult:
    violations = []
    checked = 0
    for index, example in enumerate(examples):
        checked += 1
        violations += [{**v, "example": index} for v in validation_violations(contract, example)]
    return ContractResult(*key, "examples", not violations, tuple(violations),
                          {"checked": checked, "failing": len({v["example"] for v in violations})})


def live_result(key: tuple[str, str, str], events: Iterable[tuple[str, str]],
                contract: Any) -> ContractResult:
    """The contract checked on sampled stored events: counts and the first failure."""
    checked = failing = 0
    first: dict[str, Any] | None = None
    for event_id, detail in events:
        checked += 1
        try:
            instance = orjson.loads(detail)
        except orjson.JSONDecodeError:
            instance = None
        if contract.is_valid(instance):
            continue
        failing += 1
        if first is None:
            (violation,) = validation_violations(contract, instance) or [
                {"path": "$", "message": "not valid JSON"}]
            first = {**violation, "event_id": event_id}
    summary = {"checked": checked, "failing": failing,
               "first_failing_event_id": first["event_id"] if first else None}
    return ContractResult(*key, "live", failing == 0, (first,) if first else (), summary)
