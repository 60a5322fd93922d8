"""Writing a `Catalog` back out as a catalog folder (the layout `load_catalog` reads).

Used by the importers (AsyncAPI, Pact, EventBridge Schema Registry) so that what they build
becomes files a team can review and edit. Pure `catalog_files`, plus one function doing I/O.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from eventscope.catalog.model import Catalog, Consumer, EventType, Lifecycle, file_stem
from eventscope.catalog.schemas import BASE_URI


def catalog_files(catalog: Catalog) -> dict[str, Any]:
    """Relative path -> YAML data of every file of the catalog folder."""
    files: dict[str, Any] = {"catalog.yaml": {"name": catalog.name, "teams": catalog.teams}}
    for event_type in catalog.event_types:
        files[f"events/{file_stem(event_type.detail_type)}.yaml"] = _event_type(event_type)
    for consumer in catalog.consumers:
        files[f"consumers/{consumer.name}.yaml"] = _consumer(consumer)
    if catalog.lifecycles:
        files["lifecycles.yaml"] = {"lifecycles": [_lifecycle(lc) for lc in catalog.lifecycles]}
    for uri, schema in catalog.schemas.items():
        name = uri[len(BASE_URI):] if uri.startswith(BASE_URI) else uri.rsplit("/", 1)[-1]
        own = schema if uri.startswith(BASE_URI) or not isinstance(schema, dict) \
            else {"$id": uri, **schema}
        files[f"schemas/{name.rsplit('.', 1)[0]}.yaml"] = own
    return files


def write_catalog(catalog: Catalog, folder: str | Path) -> list[Path]:
    """Write the catalog as a folder of YAML files; returns the files written."""
    root = Path(folder)
    written = []
    for relative, data in catalog_files(catalog).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_dump(data), "utf-8")
        written.append(path)
    return written


def _dump(data: Any) -> str:
    """YAML of `data`, readable where possible; escaped when PyYAML would not read it back
    (it writes NEL and line separators raw, then reads them as line breaks)."""
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if yaml.safe_load(text) == data:
        return text
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=False)


def _drop_empty(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v not in (None, "", [], {})}


def _event_type(event_type: EventType) -> dict[str, Any]:
    return _drop_empty({
        "detail-type": event_type.detail_type, "source": event_type.source,
        "owner": event_type.owner, "description": event_type.description,
        "compatibility": event_type.compatibility, "version-from": event_type.version_from,
        "default-version": event_type.default_version,
        "correlation-paths": list(event_type.correlation_paths) or None,
        "pii-fields": list(event_type.pii_fields), "status": event_type.status,
        "sunset": event_type.sunset.isoformat() if event_type.sunset else None,
        "replacement": event_type.replacement,
        "versions": [_drop_empty({"version": v.version, "description": v.description,
                                  "schema": v.schema, "examples": list(v.examples)})
                     for v in event_type.versions],
    }) | ({"correlation-paths": []} if not event_type.correlation_paths else {})


def _consumer(consumer: Consumer) -> dict[str, Any]:
    return _drop_empty({
        "name": consumer.name, "team": consumer.team, "description": consumer.description,
        "functions": list(consumer.functions), "rule-targets": list(consumer.rule_targets),
    }) | {"subscriptions": [
        _drop_empty({"event": s.detail_type, "source": s.source, "versions": list(s.versions),
                     "contract": s.contract}) | ({"contract": s.contract}
                                                 if s.contract == {} else {})
        for s in consumer.subscriptions]}


def _lifecycle(lifecycle: Lifecycle) -> dict[str, Any]:
    return _drop_empty({
        "name": lifecycle.name, "description": lifecycle.description,
        "correlation-path": lifecycle.correlation_path, "starts": list(lifecycle.starts),
        "advances": list(lifecycle.advances), "ends": list(lifecycle.ends),
        "cancellations": list(lifecycle.cancellations)})
