"""Import of event types from an Amazon EventBridge Schema Registry (boto3 `schemas` client).

Owns reading a registry (schemas, their versions, each version's content) through a client
passed in, and turning AWS's content into catalog versions: both content types AWS uses,
`OpenApi3` (what schema discovery writes: the `AWSEvent` envelope in `components.schemas`)
and `JSONSchemaDraft4`, reduced to the JSON Schema (2020-12) of the event's `detail` with the
other definitions kept under `$defs`. Source and detail-type come from the
`x-amazon-events-source` / `x-amazon-events-detail-type` extensions, else from a schema name
such as `com.shop.orders@OrderCreated`. The compatibility mode recorded is the strictest the
registry's version history satisfies.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from eventscope.catalog.compat import MODES, check
from eventscope.catalog.model import EventType, SchemaVersion
from eventscope.errors import InputError

_STRICTEST_FIRST = ("FULL_TRANSITIVE", "FULL", "BACKWARD_TRANSITIVE", "BACKWARD",
                    "FORWARD_TRANSITIVE", "FORWARD", "NONE")
assert set(_STRICTEST_FIRST) == set(MODES)


def import_schema_registry(client: Any, registry: str, owner: str = "") -> list[EventType]:
    """Every schema of `registry` as an event type with all its versions, oldest first."""
    types = []
    for summary in _paginate(client, "list_schemas", "Schemas", RegistryName=registry):
        name = summary["SchemaName"]
        versions = [v["SchemaVersion"] for v in _paginate(
            client, "list_schema_versions", "SchemaVersions", RegistryName=registry,
            SchemaName=name)]
        described = [client.describe_schema(RegistryName=registry, SchemaName=name,
                                            SchemaVersion=v)
                     for v in sorted(versions, key=_version_key)]
        if described:
            types.append(event_type_from(name, described, owner or registry))
    return types


def _paginate(client: Any, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = None
    while True:
        page = getattr(client, operation)(**params, **({"NextToken": token} if token else {}))
        items += page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return items


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 30, version)


def event_type_from(name: str, described: list[dict[str, Any]], owner: str) -> EventType:
    """An event type from the describe_schema responses of one schema's versions."""
    versions, source, detail_type = [], "", ""
    for response in described:
        try:
            content = json.loads(response["Content"])
        except (KeyError, json.JSONDecodeError):
            raise InputError(f"schema {name} v{response.get('SchemaVersion')}: content is not "
                             "JSON") from None
        detail, source, detail_type = detail_schema(content, response.get("Type", ""))
        versions.append(SchemaVersion(str(response["SchemaVersion"]), detail, (),
                                      response.get("Description", "")))
    if not (source and detail_type) and "@" in name:
        source, detail_type = name.split("@", 1)
    return EventType(detail_type=detail_type or name, source=source or "unknown", owner=owner,
                     description=described[-1].get("Description", ""),
                     versions=tuple(versions), compatibility=strictest_mode(versions))


def strictest_mode(versions: Sequence[SchemaVersion]) -> Any:
    """The strictest compatibility mode the version history (oldest first) satisfies."""
    history = [(v.version, v.schema) for v in versions]
    for mode in _STRICTEST_FIRST:
        if all(check(history[:i], history[i][1], mode).compatible
               for i in range(1, len(history))):
            return mode
    return "NONE"


def detail_schema(content: dict[str, Any], kind: str) -> tuple[dict[str, Any], str, str]:
    """(detail schema, source, detail-type) of OpenApi3 or JSONSchemaDraft4 content."""
    if kind == "OpenApi3" or "openapi" in content:
        definitions = (content.get("components") or {}).get("schemas") or {}
        envelope: dict[str, Any] = (definitions.get("AWSEvent")
                                    or next(iter(definitions.values()), {}))
        prefix = "#/components/schemas/"
    elif kind == "JSONSchemaDraft4" or "$schema" in content or "definitions" in content:
        definitions = dict(content.get("definitions") or {})
        envelope = content
        prefix = "#/definitions/"
    else:
        raise InputError(f"unsupported schema content type {kind!r}: expected OpenApi3 or "
                         "JSONSchemaDraft4")
    source = envelope.get("x-amazon-events-source", "")
    detail_type = envelope.get("x-amazon-events-detail-type", "")
    detail = (envelope.get("properties") or {}).get("detail", {"type": "object"})
    others = {k: v for k, v in definitions.items() if k != "AWSEvent"}
    root_name = _ref_name(detail, prefix)
    root = others.get(root_name, detail) if root_name else detail
    schema = _convert(root, prefix)
    defs = {k: _convert(v, prefix) for k, v in others.items() if k != root_name}
    if defs and isinstance(schema, dict):
        schema = {**schema, "$defs": defs}
    return schema, source, detail_type


def _ref_name(schema: Any, prefix: str) -> str | None:
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    return ref[len(prefix):] if isinstance(ref, str) and ref.startswith(prefix) else None


def _convert(node: Any, prefix: str) -> Any:
    """OpenAPI 3.0 / draft-04 idioms to draft 2020-12: refs, nullable, x-amazon-* dropped."""
    if isinstance(node, list):
        return [_convert(item, prefix) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-amazon-") or key in ("$schema", "id", "nullable", "definitions"):
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith(prefix):
            result[key] = "#/$defs/" + value[len(prefix):]
        elif key in ("properties", "patternProperties", "$defs"):
            result[key] = {k: _convert(v, prefix) for k, v in value.items()}
        else:
            result[key] = _convert(value, prefix)
    if node.get("nullable") is True and isinstance(result.get("type"), str):
        result["type"] = [result["type"], "null"]
    return result
