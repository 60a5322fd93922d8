"""Where catalog schemas live by URI, and the offline `referencing.Registry` that holds them.

Owns the URI scheme of catalog schemas (every event version, consumer contract and shared
schema has one, so `$ref`s between them resolve relative to it) and building validators that
resolve `$ref`s only through the catalog's registry, never over the network.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from jsonschema import Draft202012Validator
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT202012

from eventscope.catalog.model import Catalog

BASE_URI = "https://eventscope.catalog/schemas/"


def version_uri(detail_type: str, version: str) -> str:
    """The URI of one event version's schema: `<base>OrderPaid.v2.json`."""
    return f"{BASE_URI}{quote(detail_type, safe='')}.v{quote(version, safe='')}.json"


def contract_uri(consumer: str, detail_type: str) -> str:
    """The URI of a consumer's contract for one event type."""
    return f"{BASE_URI}contract.{quote(consumer, safe='')}.{quote(detail_type, safe='')}.json"


def shared_uri(name: str) -> str:
    """The default URI of a shared schema file `schemas/<name>.yaml` without its own `$id`."""
    return f"{BASE_URI}{quote(name)}.json"


def _refuse(uri: str) -> Resource[Any]:
    raise NoSuchResource(uri)  # its field `ref`, positional: mypy sees KeyError's __init__


def make_registry(resources: Iterable[tuple[str, Any]],
                  base: Registry[Any] | None = None) -> Registry[Any]:
    """A registry holding the given (uri, schema) pairs, which never retrieves anything else."""
    registry: Registry[Any] = base or Registry(retrieve=_refuse)  # type: ignore[call-arg]
    return registry.with_resources(
        (uri, Resource.from_contents(schema, default_specification=DRAFT202012))
        for uri, schema in resources
    ).crawl()


def catalog_resources(catalog: Catalog) -> list[tuple[str, Any]]:
    """Every schema of a catalog with its URI: shared schemas, versions, contracts."""
    pairs: list[tuple[str, Any]] = list(catalog.schemas.items())
    for event_type in catalog.event_types:
        pairs += [(version_uri(event_type.detail_type, v.version), v.schema)
                  for v in event_type.versions]
    for consumer in catalog.consumers:
        pairs += [(contract_uri(consumer.name, s.detail_type), s.contract)
                  for s in consumer.subscriptions if s.contract is not None]
    return pairs


def catalog_registry(catalog: Catalog) -> Registry[Any]:
    """The offline registry of every schema in the catalog."""
    return make_registry(catalog_resources(catalog))


def validator(uri: str, registry: Registry[Any]) -> Validator:
    """A draft 2020-12 validator of the schema at `uri`, resolving `$ref`s in the registry."""
    return Draft202012Validator({"$ref": uri}, registry=registry)


def unresolved_refs(schema: Any, uri: str, registry: Registry[Any]) -> list[str]:
    """Every `$ref` in `schema` (registered at `uri`) that the registry cannot resolve."""
    missing: list[str] = []
    resolver = registry.resolver(uri)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                try:
                    resolver.lookup(ref)
                except Exception:  # noqa: BLE001 - referencing raises several kinds
                    missing.append(ref)
            for key, value in node.items():
                if key not in ("enum", "const", "examples", "default"):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    return missing
