"""The event catalog's in-memory model: what teams declare should be true on the bus.

Plain frozen dataclasses shared by the catalog loader/importers (which build them), the
contract checks and the findings (which read them). No I/O here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from collections.abc import Mapping
from typing import Any, Literal

from eventscope.events import DEFAULT_VERSION_FROM, VERSION_FROM_SUFFIX, VersionRule

Status = Literal["active", "deprecated"]
Compatibility = Literal[
    "NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE",
    "FULL", "FULL_TRANSITIVE",
]


@dataclass(frozen=True)
class SchemaVersion:
    """One version of an event type: the JSON Schema of its `detail`, and examples."""

    version: str
    schema: dict[str, Any]
    examples: tuple[dict[str, Any], ...] = ()
    description: str = ""


@dataclass(frozen=True)
class EventType:
    """An event type as the catalog declares it, keyed by (source, detail_type)."""

    detail_type: str
    source: str
    owner: str
    description: str = ""
    versions: tuple[SchemaVersion, ...] = ()
    # where an event's version is read: a dotted path ("detail.version", the default),
    # "detail-type-suffix" (types like OrderPaid.v2) or "none" (the event carries no version)
    version_from: str = DEFAULT_VERSION_FROM
    correlation_paths: tuple[str, ...] = ("detail.orderId",)
    pii_fields: tuple[str, ...] = ()  # dotted paths inside the envelope, e.g. detail.customer.email
    status: Status = "active"
    sunset: date | None = None
    replacement: str | None = None
    compatibility: Compatibility = "FULL_TRANSITIVE"
    default_version: str | None = None  # the version of an event that carries none

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.detail_type)

    @property
    def implicit_version(self) -> str | None:
        """The version of an event without one: the declared default, else the only version."""
        if self.default_version is not None:
            return self.default_version
        return self.versions[0].version if len(self.versions) == 1 else None

    @property
    def version_rule(self) -> VersionRule:
        """How the version of one of this type's events is read (see `eventscope.events`)."""
        return VersionRule(self.version_from, self.implicit_version)

    def version(self, name: str) -> SchemaVersion | None:
        return next((v for v in self.versions if v.version == name), None)


@dataclass(frozen=True)
class Subscription:
    """A consumer's declared interest in one event type, and the versions it accepts."""

    detail_type: str
    source: str | None = None
    versions: tuple[str, ...] = ()  # empty: every version
    contract: dict[str, Any] | None = None  # JSON Schema of exactly the fields it relies on


@dataclass(frozen=True)
class Consumer:
    """A consuming application, the functions/targets that implement it, what it listens to."""

    name: str
    team: str
    functions: tuple[str, ...] = ()  # Lambda function names (log groups /aws/lambda/<name>)
    rule_targets: tuple[str, ...] = ()  # target ARNs or rule names that deliver to it
    subscriptions: tuple[Subscription, ...] = ()
    description: str = ""

    def subscribes_to(self, detail_type: str) -> bool:
        return any(s.detail_type == detail_type for s in self.subscriptions)


@dataclass(frozen=True)
class Lifecycle:
    """A named entity lifecycle: the events that start, advance and end it.

    Any consumer acting on the lifecycle's events must also subscribe to its cancellations.
    `requires` (step -> the steps that must come before it) says which steps an entity that
    reached a step must have passed through: the gaps of one entity's life. Without it the
    advances are read as one path, in their order.
    """

    name: str  # e.g. "order"
    correlation_path: str  # e.g. "detail.orderId"
    starts: tuple[str, ...] = ()  # detail-types
    advances: tuple[str, ...] = ()
    ends: tuple[str, ...] = ()
    cancellations: tuple[str, ...] = ()  # e.g. OrderCancelled, OrderReturned
    description: str = ""
    requires: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)

    @property
    def all_types(self) -> tuple[str, ...]:
        return self.starts + self.advances + self.ends + self.cancellations


@dataclass(frozen=True)
class Catalog:
    """Everything declared: event types, consumers, lifecycles, and where it came from."""

    event_types: tuple[EventType, ...] = ()
    consumers: tuple[Consumer, ...] = ()
    lifecycles: tuple[Lifecycle, ...] = ()
    revision: str = ""  # a content hash of the catalog files, recorded with contract results
    teams: dict[str, dict[str, Any]] = field(default_factory=dict)  # team -> contact settings
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)  # shared schemas by URI
    name: str = ""

    def event_type(self, detail_type: str, source: str | None = None) -> EventType | None:
        return next((t for t in self.event_types if t.detail_type == detail_type
                     and (source is None or t.source == source)), None)

    def event_type_of(self, source: str, detail_type: str) -> tuple[EventType | None, str | None]:
        """The catalogued type of an event as seen on the bus, and the version its name carries.

        `OrderPaid.v2` is version 2 of a type `OrderPaid` read by `detail-type-suffix`.
        """
        found = self.event_type(detail_type, source)
        if found is not None or ".v" not in detail_type:
            return found, None
        base, _, version = detail_type.rpartition(".v")
        suffixed = self.event_type(base, source)
        if suffixed is not None and suffixed.version_from == VERSION_FROM_SUFFIX and version:
            return suffixed, version
        return None, None

    def version_rules(self) -> dict[tuple[str, str], VersionRule]:
        """(source, detail-type) -> how to read the version, for storing events."""
        return {t.key: t.version_rule for t in self.event_types
                if t.version_rule != VersionRule()}

    def consumer_for_function(self, function_name: str) -> Consumer | None:
        return next((c for c in self.consumers if function_name in c.functions), None)


_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


def file_stem(name: str) -> str:
    """A safe file name (no folder, no dot-file) for a catalog item named `name`.

    Names EventBridge allows (`EC2 Instance State-change Notification`, `a/b`, `..`) keep their
    readable part; a name that had to change gets a short hash so two names never share a file.
    The loader reads names from file contents, so the file name is only for people.
    """
    stem = _UNSAFE.sub("_", name).strip(" .")[:80] or "_"
    if stem == name:
        return stem
    return f"{stem}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
