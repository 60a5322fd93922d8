"""AsyncAPI documents to and from the catalog: export as AsyncAPI 3.0, import 3.0 and 2.6.

Owns the mapping. One document per application: a producer per event source (its `send`
operations are the event types it emits, message payloads their version schemas, `examples`
their examples) and one per consumer (its `receive` operations are its subscriptions, payloads
its contracts). Catalog facts AsyncAPI has no field for travel as `x-eventscope-*` extensions
(owner, version, status, sunset, replacement, compatibility, correlation paths, PII fields,
functions, rule targets); one more document without channels carries the catalog's name,
teams and lifecycles. Shared schemas are exported as JSON files beside the documents, so their
relative `$ref`s resolve there too. Pure: documents in, documents out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from eventscope.catalog.model import (
    Catalog, Consumer, EventType, Lifecycle, SchemaVersion, Subscription,
)
from eventscope.catalog.schemas import BASE_URI, shared_uri
from eventscope.errors import InputError

X = "x-eventscope-"


def export_asyncapi(catalog: Catalog) -> dict[str, Any]:
    """File name -> document: AsyncAPI 3.0 per source and per consumer, plus shared schemas."""
    files: dict[str, Any] = {"catalog.asyncapi.yaml": _catalog_document(catalog)}
    for source in sorted({t.source for t in catalog.event_types}):
        types = [t for t in catalog.event_types if t.source == source]
        files[f"{source}.asyncapi.yaml"] = _producer_document(source, types)
    for consumer in catalog.consumers:
        files[f"{consumer.name}.asyncapi.yaml"] = _consumer_document(consumer)
    for uri, schema in catalog.schemas.items():
        files[_schema_file(uri)] = schema
    return files


def _schema_file(uri: str) -> str:
    return uri[len(BASE_URI):] if uri.startswith(BASE_URI) else uri.rsplit("/", 1)[-1]


def _info(title: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"title": title, "version": "1.0.0", f"{X}kind": kind, **extra}


def _catalog_document(catalog: Catalog) -> dict[str, Any]:
    lifecycles = [{"name": lc.name, "description": lc.description,
                   "correlation-path": lc.correlation_path, "starts": list(lc.starts),
                   "advances": list(lc.advances), "ends": list(lc.ends),
                   "cancellations": list(lc.cancellations)} for lc in catalog.lifecycles]
    return {"asyncapi": "3.0.0", "info": _info(catalog.name or "catalog", "catalog", **{
        f"{X}teams": catalog.teams, f"{X}lifecycles": lifecycles,
        f"{X}schemas": {_schema_file(uri): uri for uri in catalog.schemas}})}


def _producer_document(source: str, types: list[EventType]) -> dict[str, Any]:
    channels, operations, messages = {}, {}, {}
    for event_type in types:
        name = event_type.detail_type
        refs = {}
        for version in event_type.versions:
            key = f"{name}.v{version.version}"
            messages[key] = {"name": name, "payload": version.schema,
                             "description": version.description,
                             "examples": [{"payload": e} for e in version.examples],
                             f"{X}version": version.version}
            refs[key] = {"$ref": f"#/components/messages/{key}"}
        channels[name] = {"address": name, "description": event_type.description,
                          "messages": refs, **_type_extensions(event_type)}
        operations[f"send{name}"] = {
            "action": "send", "channel": {"$ref": f"#/channels/{name}"},
            "messages": [{"$ref": f"#/channels/{name}/messages/{k}"} for k in refs]}
    return {"asyncapi": "3.0.0", "info": _info(source, "producer", **{f"{X}source": source}),
            "channels": channels, "operations": operations,
            "components": {"messages": messages}}


def _type_extensions(event_type: EventType) -> dict[str, Any]:
    return {f"{X}owner": event_type.owner, f"{X}status": event_type.status,
            f"{X}sunset": event_type.sunset.isoformat() if event_type.sunset else None,
            f"{X}replacement": event_type.replacement,
            f"{X}compatibility": event_type.compatibility,
            f"{X}version-from": event_type.version_from,
            f"{X}correlation-paths": list(event_type.correlation_paths),
            f"{X}pii-fields": list(event_type.pii_fields)}


def _consumer_document(consumer: Consumer) -> dict[str, Any]:
    channels, operations, messages = {}, {}, {}
    for sub in consumer.subscriptions:
        name = sub.detail_type
        messages[name] = {"name": name, **({"payload": sub.contract} if sub.contract else {})}
        channels[name] = {"address": name,
                          "messages": {name: {"$ref": f"#/components/messages/{name}"}}}
        operations[f"receive{name}"] = {
            "action": "receive", "channel": {"$ref": f"#/channels/{name}"},
            "messages": [{"$ref": f"#/channels/{name}/messages/{name}"}],
            f"{X}source": sub.source, f"{X}versions": list(sub.versions)}
    info = _info(consumer.name, "consumer", description=consumer.description, **{
        f"{X}team": consumer.team, f"{X}functions": list(consumer.functions),
        f"{X}rule-targets": list(consumer.rule_targets)})
    return {"asyncapi": "3.0.0", "info": info, "channels": channels,
            "operations": operations, "components": {"messages": messages}}


# --- import ---------------------------------------------------------------------------------

def import_asyncapi(documents: Iterable[Mapping[str, Any]],
                    schemas: Mapping[str, Any] | None = None) -> Catalog:
    """A catalog from AsyncAPI 3.0 / 2.6 documents (and shared schemas by file name)."""
    types: dict[str, EventType] = {}
    consumers: list[Consumer] = []
    settings: dict[str, Any] = {}
    for document in documents:
        version = str(document.get("asyncapi", ""))
        if not version.startswith(("3.", "2.")):
            raise InputError(f"not an AsyncAPI 2.x/3.x document (asyncapi: {version or '?'})")
        info = document.get("info", {})
        if info.get(f"{X}kind") == "catalog":
            settings = info
            continue
        sends, receives = (_operations_v3(document) if version.startswith("3.")
                           else _operations_v2(document))
        for channel, message_list in sends:
            event_type = _event_type(document, channel, message_list)
            types[event_type.detail_type] = _merge(types.get(event_type.detail_type), event_type)
        if receives:
            consumers.append(_consumer(document, receives))
    uris = settings.get(f"{X}schemas", {})
    shared = {uris.get(name, shared_uri(name.rsplit(".", 1)[0])): schema
              for name, schema in (schemas or {}).items()}
    return Catalog(
        event_types=tuple(sorted(types.values(), key=lambda t: t.detail_type)),
        consumers=tuple(sorted(consumers, key=lambda c: c.name)),
        lifecycles=tuple(_lifecycle(lc) for lc in settings.get(f"{X}lifecycles", [])),
        teams=dict(settings.get(f"{X}teams", {})),
        schemas=shared,
        name=str(settings.get("title", "")),
    )


Pair = tuple[dict[str, Any], list[dict[str, Any]]]


def _resolve(document: Mapping[str, Any], node: Any) -> Any:
    """Follow local `#/...` references inside one document."""
    for _ in range(16):
        if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)
                and node["$ref"].startswith("#/")):
            return node
        target: Any = document
        for part in node["$ref"][2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) \
                if isinstance(target, dict) else {}
        node = target
    return node


def _operations_v3(document: Mapping[str, Any]) -> tuple[list[Pair], list[Pair]]:
    sends: list[Pair] = []
    receives: list[Pair] = []
    for operation in (document.get("operations") or {}).values():
        operation = _resolve(document, operation)
        channel = _resolve(document, operation.get("channel", {}))
        refs = operation.get("messages") or list((channel.get("messages") or {}).values())
        messages = [_resolve(document, m) for m in refs]
        pair = ({**channel, "_operation": operation}, messages)
        (sends if operation.get("action") == "send" else receives).append(pair)
    return sends, receives


def _operations_v2(document: Mapping[str, Any]) -> tuple[list[Pair], list[Pair]]:
    """AsyncAPI 2.x: `subscribe` = the application sends; `publish` = it receives."""
    sends: list[Pair] = []
    receives: list[Pair] = []
    for address, channel in (document.get("channels") or {}).items():
        for verb, bucket in (("subscribe", sends), ("publish", receives)):
            operation = channel.get(verb)
            if not operation:
                continue
            message = _resolve(document, operation.get("message", {}))
            messages = [_resolve(document, m) for m in message.get("oneOf", [message])]
            bucket.append(({**channel, "address": address, "_operation": operation}, messages))
    return sends, receives


def _detail_type(channel: Mapping[str, Any], messages: list[dict[str, Any]]) -> str:
    return str(channel.get("address") or (messages[0].get("name") if messages else "") or "")


def _examples(message: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    found = []
    for example in message.get("examples") or []:
        payload = example.get("payload", example) if isinstance(example, dict) else None
        if isinstance(payload, dict):
            found.append(payload)
    return tuple(found)


def _event_type(document: Mapping[str, Any], channel: dict[str, Any],
                messages: list[dict[str, Any]]) -> EventType:
    info = document.get("info", {})
    versions = tuple(
        SchemaVersion(str(m.get(f"{X}version") or m.get("x-version") or info.get("version")
                          or str(index + 1)),
                      _resolve(document, m.get("payload", {})), _examples(m),
                      m.get("description", ""))
        for index, m in enumerate(messages))
    sunset = channel.get(f"{X}sunset") or channel.get("x-sunset")
    return EventType(
        detail_type=_detail_type(channel, messages),
        source=str(channel.get(f"{X}source") or info.get(f"{X}source") or info.get("title", "")),
        owner=str(channel.get(f"{X}owner") or channel.get("x-owner") or info.get("x-owner")
                  or (info.get("contact") or {}).get("name", "")),
        description=channel.get("description", ""),
        versions=versions,
        version_from=channel.get(f"{X}version-from", "detail.version"),
        correlation_paths=tuple(channel.get(f"{X}correlation-paths", ("detail.orderId",))),
        pii_fields=tuple(channel.get(f"{X}pii-fields", ())),
        status="deprecated" if channel.get(f"{X}status") == "deprecated"
        or channel.get("x-deprecated") or sunset else "active",
        sunset=date.fromisoformat(str(sunset)) if sunset else None,
        replacement=channel.get(f"{X}replacement"),
        compatibility=channel.get(f"{X}compatibility", "FULL_TRANSITIVE"),
    )


def _merge(existing: EventType | None, new: EventType) -> EventType:
    if existing is None:
        return new
    have = {v.version for v in existing.versions}
    extra = tuple(v for v in new.versions if v.version not in have)
    from dataclasses import replace
    return replace(existing, versions=existing.versions + extra)


def _consumer(document: Mapping[str, Any], receives: list[Pair]) -> Consumer:
    info = document.get("info", {})
    subscriptions = []
    for channel, messages in receives:
        operation = channel["_operation"]
        payload = _resolve(document, messages[0].get("payload")) if messages else None
        subscriptions.append(Subscription(
            _detail_type(channel, messages), operation.get(f"{X}source"),
            tuple(str(v) for v in operation.get(f"{X}versions", ())), payload))
    return Consumer(
        name=str(info.get("title", "")), team=str(info.get(f"{X}team") or info.get("x-owner")
                                                 or (info.get("contact") or {}).get("name", "")),
        functions=tuple(info.get(f"{X}functions", ())),
        rule_targets=tuple(info.get(f"{X}rule-targets", ())),
        subscriptions=tuple(subscriptions), description=info.get("description", ""))


def _lifecycle(data: Mapping[str, Any]) -> Lifecycle:
    return Lifecycle(name=data["name"], correlation_path=data["correlation-path"],
                     starts=tuple(data.get("starts", ())), advances=tuple(data.get("advances", ())),
                     ends=tuple(data.get("ends", ())),
                     cancellations=tuple(data.get("cancellations", ())),
                     description=data.get("description", ""))
