"""AsyncAPI documents to and from the catalog: export as AsyncAPI 3.0, import 3.0 and 2.x.

Owns the mapping both ways. Export: one document per event source (its `send` operations are
the event types it emits, message payloads their version schemas, `examples` their examples)
and one per consumer (its `receive` operations are its subscriptions, payloads its contracts);
catalog facts AsyncAPI has no field for travel as `x-eventscope-*` extensions, and one more
document without channels carries the catalog's name, teams and lifecycles.

Import reads the layouts teams write: the detail-type comes from each message
(`x-eventbridge-detail-type`, else its name, title or channel), the channel is the bus, so one
bus channel with many messages gives a type per message, versions grouped per detail-type;
message-, operation-, channel- and info-level `x-` fields give source, owner, deprecation,
PII and compatibility (else the strictest mode the versions satisfy); payloads are bundled
through their `$ref`s (see `asyncapi_refs`). What cannot be imported is skipped with a
one-line reason, what was guessed is a warning: nothing is lost silently. Pure but for the
file reader passed in for `$ref`s to files next to a document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from eventscope.catalog.asyncapi_refs import FileReader, Node, References, Unsupported
from eventscope.catalog.compat import MODES
from eventscope.catalog.model import (
    Catalog, Consumer, EventType, Lifecycle, SchemaVersion, Subscription,
)
from eventscope.catalog.schema_registry import strictest_mode
from eventscope.catalog.schemas import BASE_URI, make_registry, shared_uri
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
                   "cancellations": list(lc.cancellations),
                   **({"requires": {k: list(v) for k, v in lc.requires.items()}}
                      if lc.requires else {})} for lc in catalog.lifecycles]
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

DETAIL_TYPE_FROM = ("name", "title", "channel")
UNOWNED = "unowned"
_VERSION_KEYS = (f"{X}version", "x-version", "x-eventbridge-version")
_SOURCE_KEYS = ("x-eventbridge-source", f"{X}source", "x-source")
_OWNER_KEYS = (f"{X}owner", "x-owner", "x-team")
_JSON_SCHEMA_FORMAT = re.compile(r"^application/(vnd\.aai\.asyncapi(\+json|\+yaml)?|"
                                 r"schema\+(json|yaml))(;|$)")
_FORMAT_NAMES = (("avro", "Avro"), ("raml", "RAML"), ("protobuf", "Protobuf"),
                 ("openapi", "OpenAPI"), ("xsd", "XML Schema"))


@dataclass(frozen=True)
class AsyncApiFile:
    """One input document, with the path its relative `$ref`s are resolved against."""

    data: Mapping[str, Any]
    path: Path | None = None

    @property
    def label(self) -> str:
        return str(self.path) if self.path else str(self.info.get("title") or "document")

    @property
    def info(self) -> Mapping[str, Any]:
        info = self.data.get("info")
        return info if isinstance(info, dict) else {}


@dataclass(frozen=True)
class Imported:
    """What an import built, and every message it skipped or guessed about, one line each."""

    catalog: Catalog
    skipped: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass
class _Message:
    """One message of one operation, resolved, with the objects its fields may come from."""

    document: AsyncApiFile
    where: tuple[str, str]
    detail_type: str
    levels: tuple[Mapping[str, Any], ...]  # message, operation, channel, info
    schema: Any  # the bundled payload, or None when it has none
    examples: tuple[dict[str, Any], ...]
    channel_types: set[str] = field(default_factory=set)  # every type sent on its channel

    def x(self, keys: Iterable[str], depth: int = 4) -> Any:
        """The first of `keys` set on the message, else its operation, channel, info."""
        for level in self.levels[:depth]:
            for key in keys:
                if level.get(key) not in (None, "", []):
                    return level[key]
        return None

    @property
    def message(self) -> Mapping[str, Any]:
        return self.levels[0]


def import_asyncapi(documents: Iterable[Mapping[str, Any] | AsyncApiFile],
                    schemas: Mapping[str | Path, Any] | None = None, *,
                    detail_type_from: str = "name", owner: str = "",
                    read: FileReader | None = None) -> Imported:
    """A catalog from AsyncAPI 3.0 / 2.x documents (and shared schemas, by file name or path).

    The detail-type of each message is its `x-eventbridge-detail-type`, else (by
    `detail_type_from`) its name, title or channel address; versions of one detail-type are
    grouped into one event type whatever channel carries them. `read` reads the files that
    relative `$ref`s name (none are read without it).
    """
    if detail_type_from not in DETAIL_TYPE_FROM:
        raise InputError(f"--detail-type-from: expected one of {', '.join(DETAIL_TYPE_FROM)}")
    files = [d if isinstance(d, AsyncApiFile) else AsyncApiFile(d) for d in documents]
    keep = frozenset(Path(k).resolve() for k in (schemas or {}) if isinstance(k, Path))
    notes = _Notes()
    sent: list[_Message] = []
    received: dict[int, list[_Message]] = {}  # by document
    settings: Mapping[str, Any] = {}
    for index, file in enumerate(files):
        version = str(file.data.get("asyncapi", ""))
        if not version.startswith(("3.", "2.")):
            raise InputError(f"{file.label}: not an AsyncAPI 2.x/3.x document "
                             f"(asyncapi: {version or '?'})")
        info = file.info
        if info.get(f"{X}kind") == "catalog":
            settings = info
            continue
        refs = References(file.data, str(file.path.resolve()) if file.path else
                          f"<document {index + 1}>", file.path, read, keep)
        for action, message in _messages(file, refs, detail_type_from, notes):
            if action == "send":
                sent.append(message)
            else:
                received.setdefault(index, []).append(message)
    types = _event_types(sent, owner, notes)
    orphans = [m for ms in received.values() for m in ms if m.detail_type not in types]
    for message in orphans:
        notes.warn(message.document, f"{message.detail_type} is received but sent by no "
                   "imported document: its event type is built from the received message")
    types |= _event_types(orphans, owner, notes, orphan=True)
    consumers = _consumers(files, received, owner, notes)
    named = settings.get(f"{X}schemas")
    uris: Mapping[str, str] = named if isinstance(named, dict) else {}
    shared = {uris.get(Path(name).name, shared_uri(Path(name).name.rsplit(".", 1)[0])): schema
              for name, schema in (schemas or {}).items()}
    catalog = Catalog(
        event_types=tuple(sorted(types.values(), key=lambda t: t.detail_type)),
        consumers=tuple(sorted(consumers.values(), key=lambda c: c.name)),
        lifecycles=tuple(_lifecycle(lc) for lc in settings.get(f"{X}lifecycles") or []
                         if isinstance(lc, dict) and {"name", "correlation-path"} <= set(lc)),
        teams=dict(teams) if isinstance(teams := settings.get(f"{X}teams"), dict) else {},
        schemas=shared,
        name=str(settings.get("title", "")),
    )
    return Imported(catalog, tuple(notes.skipped), tuple(notes.warnings))


@dataclass
class _Notes:
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def skip(self, file: AsyncApiFile, what: str, reason: str) -> None:
        self.skipped.append(f"{file.label}: {what}: {reason}")

    def warn(self, file: AsyncApiFile, text: str) -> None:
        line = f"{file.label}: {text}"
        if line not in self.warnings:
            self.warnings.append(line)


# -- messages of one document --

def _messages(file: AsyncApiFile, refs: References, detail_type_from: str,
              notes: _Notes) -> Iterator[tuple[str, _Message]]:
    """(send|receive, message) for every message of every operation, replies included."""
    three = str(file.data.get("asyncapi", "")).startswith("3.")
    info = file.info
    seen: set[tuple[str, tuple[str, str]]] = set()

    def skip(what: str, reason: str) -> None:
        notes.skip(file, what, reason)

    operations = (_operations_v3 if three else _operations_v2)(refs, skip)
    found: list[tuple[str, Node, Mapping[str, Any], Node, str, str | None]] = []
    for action, message_node, operation, channel, address in operations:
        label = f"message {message_node.pointer or '?'}"
        try:
            chain = refs.chain(message_node)
        except Unsupported as reason:
            notes.skip(file, label, str(reason))
            continue
        node = chain[-1]
        if (action, node.where) in seen or not isinstance(node.value, dict):
            continue
        seen.add((action, node.where))
        found.append((action, node, operation, channel, address, _message_key(chain)))
    by_channel: dict[tuple[str, str], set[str]] = {}
    built: list[tuple[str, _Message]] = []
    for action, node, operation, channel, address, key in found:
        message = _apply_traits(refs, node, three)
        if isinstance(message.get("correlationId"), dict):
            try:
                message["correlationId"] = refs.follow(refs.child(node, "correlationId")).value
            except Unsupported:
                message.pop("correlationId")
        label = f"message {key or node.pointer}"
        detail_type = _detail_type(message, key, address, detail_type_from)
        if not detail_type:
            notes.skip(file, label, f"no detail-type (no x-eventbridge-detail-type, and no "
                       f"{detail_type_from} to take it from; try --detail-type-from channel)")
            continue
        try:
            schema = _payload(refs, node, message, three)
        except Unsupported as reason:
            notes.skip(file, f"{label} ({detail_type})", str(reason))
            continue
        levels = (message, operation, channel.value if isinstance(channel.value, dict)
                  else {}, info)
        item = _Message(file, node.where, detail_type, levels, schema, _examples(message))
        by_channel.setdefault(channel.where, set()).add(detail_type)
        item.channel_types = by_channel[channel.where]
        built.append((action, item))
    yield from built


Operation = tuple[str, Node, Mapping[str, Any], Node, str]
Skip = Callable[[str, str], None]


def _operations_v3(refs: References, skip: Skip) -> Iterator[Operation]:
    operations = refs.child(refs.root(), "operations")
    for name in operations.value if isinstance(operations.value, dict) else {}:
        try:
            yield from list(_operation_v3(refs, refs.child(operations, name)))
        except Unsupported as reason:
            skip(f"operation {name}", str(reason))


def _operation_v3(refs: References, node: Node) -> Iterator[Operation]:
    operation = refs.follow(node)
    op = _apply_traits(refs, operation, three=True)
    action = "send" if op.get("action") == "send" else "receive"
    channel = refs.follow(refs.child(operation, "channel"))
    yield from _channel_messages(refs, action, operation, op, channel)
    reply = refs.follow(refs.child(operation, "reply"))
    if isinstance(reply.value, dict):
        back = "receive" if action == "send" else "send"
        reply_channel = refs.follow(refs.child(reply, "channel")) \
            if reply.value.get("channel") else channel
        yield from _channel_messages(refs, back, reply, {}, reply_channel)  # the peer's fields


def _channel_messages(refs: References, action: str, holder: Node, op: Mapping[str, Any],
                      channel: Node) -> Iterator[Operation]:
    """The messages an operation (or reply) lists, else every message of its channel."""
    value = channel.value if isinstance(channel.value, dict) else {}
    address = str(value.get("address") or channel.pointer.rsplit("/", 1)[-1])
    listed = holder.value.get("messages") if isinstance(holder.value, dict) else None
    if isinstance(listed, list) and listed:
        for index in range(len(listed)):
            yield action, refs.child(holder, "messages", index), op, channel, address
    elif isinstance(value.get("messages"), dict):
        for key in value["messages"]:
            yield action, refs.child(channel, "messages", key), op, channel, address


def _operations_v2(refs: References, skip: Skip) -> Iterator[Operation]:
    """AsyncAPI 2.x: `subscribe` = the application sends; `publish` = it receives."""
    channels = refs.child(refs.root(), "channels")
    for address in channels.value if isinstance(channels.value, dict) else {}:
        for verb, action in (("subscribe", "send"), ("publish", "receive")):
            try:
                yield from list(_operation_v2(refs, refs.child(channels, address), verb,
                                              action, str(address)))
            except Unsupported as reason:
                skip(f"channel {address} {verb}", str(reason))


def _operation_v2(refs: References, node: Node, verb: str, action: str,
                  address: str) -> Iterator[Operation]:
    channel = refs.follow(node)
    operation = refs.follow(refs.child(channel, verb))
    if not isinstance(operation.value, dict):
        return
    op = _apply_traits(refs, operation, three=False)
    message = refs.child(operation, "message")
    resolved = refs.follow(message)
    one_of = resolved.value.get("oneOf") if isinstance(resolved.value, dict) else None
    if isinstance(one_of, list):
        for index in range(len(one_of)):
            yield action, refs.child(resolved, "oneOf", index), op, channel, address
    elif message.value is not None:
        yield action, message, op, channel, address


def _apply_traits(refs: References, target: Node, three: bool) -> dict[str, Any]:
    """Traits merged in: 3.0 never overrides the target's fields; 2.x merge-patches them."""
    value = target.value if isinstance(target.value, dict) else {}
    result = dict(value)
    for index in range(len(value.get("traits") or [])):
        try:
            trait = refs.follow(refs.child(target, "traits", index)).value
        except Unsupported:
            continue
        if isinstance(trait, dict):
            result = {**trait, **result} if three else _merge_patch(result, trait)
    result.pop("traits", None)
    return result


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _message_key(chain: list[Node]) -> str | None:
    """A message's id: the name it was last referenced by (`#/components/messages/<id>`, a
    key of a channel's `messages`, or the last part of a `$ref` into another file)."""
    for index in range(len(chain) - 1, -1, -1):
        parts = chain[index].pointer.split("/")
        last = parts[-1].replace("~1", "/").replace("~0", "~")
        if len(parts) >= 2 and last and not last.isdigit() and (
                parts[-2] == "messages" or index > 0 and last not in ("message", "payload")):
            return last
    return None


def _detail_type(message: Mapping[str, Any], key: str | None, address: str, mode: str) -> str:
    explicit = message.get("x-eventbridge-detail-type")
    if explicit:
        return str(explicit)
    by_mode = {"name": (message.get("name"), key, message.get("title")),
               "title": (message.get("title"), message.get("name"), key),
               "channel": (address,)}[mode]
    return str(next((v for v in by_mode if v), ""))


def _payload(refs: References, node: Node, message: Mapping[str, Any], three: bool) -> Any:
    """The bundled JSON Schema of a message's payload (None without one)."""
    if "payload" not in message:
        return None
    payload = refs.follow(Node(message["payload"], node.file, node.pointer + "/payload"))
    schema_format = message.get("schemaFormat")
    if three and isinstance(payload.value, dict) and "schemaFormat" in payload.value \
            and "schema" in payload.value:
        schema_format = payload.value["schemaFormat"]
        payload = refs.follow(refs.child(payload, "schema"))
    if schema_format and not _JSON_SCHEMA_FORMAT.match(str(schema_format)):
        kind = next((name for key, name in _FORMAT_NAMES if key in str(schema_format).lower()),
                    "a format other than JSON Schema")
        raise Unsupported(f"payload schemaFormat {schema_format!r} is {kind}: not converted, "
                          "only JSON Schema payloads are imported")
    if not isinstance(payload.value, (dict, bool)):
        raise Unsupported("payload is not a JSON Schema object")
    return refs.bundle(payload)


def _examples(message: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    found = []
    for example in message.get("examples") or []:
        payload = example.get("payload", example) if isinstance(example, dict) else None
        if isinstance(payload, dict):
            found.append(payload)
    return tuple(found)


# -- event types --

def _event_types(messages: list[_Message], owner: str, notes: _Notes,
                 orphan: bool = False) -> dict[str, EventType]:
    by_type: dict[str, list[_Message]] = {}
    for message in messages:
        by_type.setdefault(message.detail_type, []).append(message)
    return {name: _event_type(name, group, owner, notes, orphan)
            for name, group in by_type.items()}


def _event_type(detail_type: str, group: list[_Message], default_owner: str, notes: _Notes,
                orphan: bool) -> EventType:
    versions, carriers = _versions(detail_type, group, notes)
    depth = 3 if orphan else 4  # a received-only type's info is the receiver's, not the owner's
    fields: dict[str, Any] = {}
    for message in carriers:  # the newest version's value wins
        for name, value in _type_fields(message, depth).items():
            if value not in (None, "", [], ()):
                fields[name] = value
    first = group[0].document
    owner = fields.get("owner") or default_owner
    if not owner:
        owner = UNOWNED
        notes.warn(first, f"{detail_type}: no owner (x-owner, info.contact.name or --owner): "
                          f"recorded as {UNOWNED!r}")
    source = fields.get("source")
    if not source:
        title = "" if orphan else str((group[0].levels[3]).get("title") or "")
        source = _slug(title, lower=True) or "unknown"
        notes.warn(first, f"{detail_type}: no x-eventbridge-source: source recorded as "
                          f"{source!r}" + (f" (from info.title {title!r})" if title else ""))
    sunset = _date(fields.get("sunset"))
    if fields.get("sunset") and sunset is None:
        notes.warn(first, f"{detail_type}: sunset {fields['sunset']!r} is not a date "
                          "(YYYY-MM-DD): ignored")
    deprecated = bool(fields.get("deprecated") or sunset)
    if deprecated and not sunset:
        notes.warn(first, f"{detail_type}: deprecated without a sunset date (x-sunset): "
                          "recorded as active")
        deprecated = False
    return EventType(
        detail_type=detail_type, source=str(source), owner=str(owner),
        description=str(fields.get("description") or ""),
        versions=versions,
        version_from=str(fields.get("version-from") or "detail.version"),
        correlation_paths=_strings(fields.get("correlation-paths")),
        pii_fields=tuple(dict.fromkeys(_strings(fields.get("pii-fields")))),
        status="deprecated" if deprecated else "active",
        sunset=sunset if deprecated else None,
        replacement=str(fields["replacement"]) if fields.get("replacement") else None,
        compatibility=_mode(detail_type, fields.get("compatibility"), versions, first, notes),
    )


def _contact(info: Mapping[str, Any]) -> Any:
    contact = info.get("contact")
    return contact.get("name") if isinstance(contact, dict) else None


def _date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _strings(value: Any) -> tuple[str, ...]:
    """A list of paths as written: one string, or a list of them."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return tuple(str(item) for item in items if isinstance(item, (str, int)))


def _type_fields(message: _Message, depth: int) -> dict[str, Any]:
    status = message.x((f"{X}status",), depth)
    single_type_channel = message.channel_types == {message.detail_type}
    own = message.message
    return {
        "owner": message.x(_OWNER_KEYS, depth) or (
            _contact(message.levels[3]) if depth > 3 else None),
        "source": message.x(_SOURCE_KEYS, depth),
        "description": message.levels[2].get("description") if single_type_channel
        else own.get("summary") or own.get("title"),
        "version-from": message.x((f"{X}version-from",), depth),
        "correlation-paths": message.x((f"{X}correlation-paths", "x-correlation-paths"),
                                       depth) or _correlation(own),
        "pii-fields": list(_strings(message.x((f"{X}pii-fields", "x-pii-fields"), depth)))
        + _pii_paths(message.schema),
        "deprecated": status == "deprecated" or message.x(("x-deprecated",), depth),
        "sunset": message.x((f"{X}sunset", "x-sunset"), depth),
        "replacement": message.x((f"{X}replacement", "x-replacement", "x-replaced-by"), depth),
        "compatibility": message.x((f"{X}compatibility", "x-compatibility"), depth),
    }


def _versions(detail_type: str, group: list[_Message], notes: _Notes
              ) -> tuple[tuple[SchemaVersion, ...], list[_Message]]:
    """One version per distinct message of a type, oldest first, with the message of each."""
    chosen: dict[str, tuple[SchemaVersion, _Message]] = {}
    unnamed: list[tuple[SchemaVersion, _Message]] = []
    seen: set[tuple[str, str]] = set()
    for message in group:
        if message.where in seen:
            continue
        seen.add(message.where)
        own = message.message
        version = SchemaVersion("", message.schema if message.schema is not None else {},
                                _fitting_examples(detail_type, message, notes),
                                str(own.get("description") or ""))
        if message.schema is None:
            notes.warn(message.document, f"{detail_type}: a message without a payload: "
                                         "stored as an open schema {}")
        name = _explicit_version(message)
        if name is None:
            if not any(v.schema == version.schema and v.examples == version.examples
                       for v, _ in unnamed):
                unnamed.append((version, message))
        elif name not in chosen:
            chosen[name] = (replace(version, version=name), message)
        elif (chosen[name][0].schema, chosen[name][0].examples) != (version.schema,
                                                                      version.examples):
            notes.skip(message.document, f"message {_message_key_of(message)} ({detail_type})",
                       f"version {name} is defined again with a different payload (the first "
                       f"definition, in {chosen[name][1].document.label}, is kept)")
    number = 0
    for version, message in unnamed:
        number += 1
        while str(number) in chosen:
            number += 1
        chosen[str(number)] = (replace(version, version=str(number)), message)
    ordered = sorted(chosen.items(), key=lambda item: _natural(item[0]))
    return tuple(v for _, (v, _) in ordered), [m for _, (_, m) in ordered]


def _fitting_examples(detail_type: str, message: _Message, notes: _Notes
                      ) -> tuple[dict[str, Any], ...]:
    """The message's examples that its own payload schema accepts; the others noted."""
    if not message.examples or message.schema is None:
        return message.examples
    try:
        validator = Draft202012Validator(message.schema, registry=make_registry([]))
        errors = [best_match(validator.iter_errors(e)) for e in message.examples]
    except Exception:  # noqa: BLE001 - refs to shared schemas: the catalog loader judges
        return message.examples
    for index, error in enumerate(errors):
        if error is not None:
            notes.warn(message.document, f"{detail_type}: example {index + 1} of message "
                       f"{_message_key_of(message)} does not match its own payload schema "
                       f"({error.json_path}: {error.message[:120]}): not kept")
    return tuple(e for e, error in zip(message.examples, errors) if error is None)


def _message_key_of(message: _Message) -> str:
    last = message.where[1].rsplit("/", 1)[-1]
    return message.where[1] if last in ("", "message") or last.isdigit() else last


def _explicit_version(message: _Message) -> str | None:
    value = message.x(_VERSION_KEYS, depth=1)
    if value not in (None, ""):
        return str(value)
    properties = message.schema.get("properties") if isinstance(message.schema, dict) else None
    field_name = str(message.x((f"{X}version-from",), 3) or "detail.version")
    prop = (properties or {}).get(field_name.split(".", 1)[-1]) \
        if field_name.count(".") == 1 else None
    if isinstance(prop, dict):
        if "const" in prop and isinstance(prop["const"], (str, int)):
            return str(prop["const"])
        if isinstance(prop.get("enum"), list) and len(prop["enum"]) == 1:
            return str(prop["enum"][0])
    return None


def _natural(version: str) -> list[tuple[int, Any]]:
    return [(0, int(part)) if part.isdigit() else (1, part)
            for part in re.findall(r"\d+|[^\d]+", version)]


def _mode(detail_type: str, stated: Any, versions: tuple[SchemaVersion, ...],
          file: AsyncApiFile, notes: _Notes) -> Any:
    if str(stated).upper() in MODES:
        return str(stated).upper()
    if stated:
        notes.warn(file, f"{detail_type}: unknown compatibility {stated!r} (expected one of "
                         f"{', '.join(MODES)}): the strictest the versions satisfy is recorded")
    try:
        return strictest_mode(versions)
    except Exception as exc:  # noqa: BLE001 - a schema the checker cannot judge
        notes.warn(file, f"{detail_type}: the compatibility of its versions cannot be judged "
                         f"({type(exc).__name__}): recorded as NONE")
        return "NONE"


def _correlation(message: Mapping[str, Any]) -> list[str]:
    """`correlationId.location: $message.payload#/order/id` as the path detail.order.id."""
    location = message.get("correlationId")
    location = location.get("location") if isinstance(location, dict) else None
    if isinstance(location, str) and location.startswith("$message.payload#/"):
        parts = location.split("#/", 1)[1].split("/")
        if all(re.fullmatch(r"[A-Za-z0-9_$-]+", p) for p in parts):
            return ["detail." + ".".join(parts)]
    return []


def _pii_paths(schema: Any) -> list[str]:
    """`detail.<path>` of every property marked `x-pii: true` (through `$defs` references)."""
    found: list[str] = []
    defs = schema.get("$defs", {}) if isinstance(schema, dict) else {}

    def walk(node: Any, path: list[str], inside: frozenset[str]) -> None:
        if not isinstance(node, dict) or len(path) > 12:
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and ref not in inside:
            walk(defs.get(ref[8:]), path, inside | {ref})  # a recursive definition: once
        for part in ("allOf", "anyOf", "oneOf"):
            for branch in node.get(part) or []:
                walk(branch, path, inside)
        for name, child in (node.get("properties") or {}).items():
            if not re.fullmatch(r"[A-Za-z0-9_$-]+", str(name)) or not isinstance(child, dict):
                continue
            if child.get("x-pii") is True or child.get(f"{X}pii") is True:
                found.append(".".join(["detail", *path, name]))
            walk(child, [*path, name], inside)

    walk(schema, [], frozenset())
    return found


# -- consumers --

def _consumers(files: list[AsyncApiFile], received: dict[int, list[_Message]],
               default_owner: str, notes: _Notes) -> dict[str, Consumer]:
    consumers: dict[str, Consumer] = {}
    for index, file in enumerate(files):
        messages = received.get(index)
        if not messages:
            continue
        info = file.info
        title = str(info.get("title") or file.label)
        name = consumer_id(title)
        description = str(info.get("description") or "")
        if name != title:
            description = f"{title}: {description}" if description else title
        team = str(info.get(f"{X}team") or info.get("x-team") or info.get("x-owner")
                   or _contact(info) or default_owner)
        if not team:
            team = UNOWNED
            notes.warn(file, f"consumer {name}: no team (x-team, x-owner, info.contact.name "
                             f"or --owner): recorded as {UNOWNED!r}")
        subscriptions = _subscriptions(messages)
        if name in consumers:  # several documents of one application
            old = consumers[name]
            subscriptions = old.subscriptions + tuple(
                s for s in subscriptions if not old.subscribes_to(s.detail_type))
        consumers[name] = Consumer(
            name=name, team=team, functions=_strings(info.get(f"{X}functions")),
            rule_targets=_strings(info.get(f"{X}rule-targets")),
            subscriptions=subscriptions, description=description)
    return consumers


def _subscriptions(messages: list[_Message]) -> tuple[Subscription, ...]:
    by_type: dict[str, list[_Message]] = {}
    for message in messages:
        by_type.setdefault(message.detail_type, []).append(message)
    subscriptions = []
    for detail_type, group in by_type.items():
        operation = group[-1].levels[1]
        listed = [v for m in group for v in _strings(m.levels[1].get(f"{X}versions"))]
        explicit = [_explicit_version(m) for m in group]
        versions = listed or ([v for v in explicit if v] if all(explicit) and len(group) > 1
                              or any(m.x(_VERSION_KEYS, 1) for m in group) else [])
        subscriptions.append(Subscription(
            detail_type, operation.get(f"{X}source") or group[-1].x(("x-eventbridge-source",), 2),
            tuple(dict.fromkeys(versions)), group[-1].schema))
    return tuple(subscriptions)


def consumer_id(title: str) -> str:
    """A valid consumer name for a title: the title itself if valid, else a lower-case slug."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:/@-]*", title):
        return title
    return _slug(title, lower=True) or "consumer"


def _slug(text: str, lower: bool) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text.lower() if lower else text)
    return re.sub(r"^[^A-Za-z0-9]+|-+$", "", slug)


def _lifecycle(data: Mapping[str, Any]) -> Lifecycle:
    return Lifecycle(name=data["name"], correlation_path=data["correlation-path"],
                     starts=tuple(data.get("starts", ())), advances=tuple(data.get("advances", ())),
                     ends=tuple(data.get("ends", ())),
                     cancellations=tuple(data.get("cancellations", ())),
                     description=data.get("description", ""),
                     requires={k: tuple(v) for k, v in (data.get("requires") or {}).items()})
