"""Writing a `Catalog` out as a catalog folder (the layout `load_catalog` reads), atomically.

Used by every importer (AsyncAPI, Pact, EventBridge Schema Registry) so that what they build
becomes files a team can review and edit. `catalog_files` (pure) names every file from a
sanitised name (`model.file_stem`), so no name in an imported document chooses where a file
lands.
`write_catalog` builds the result in a temporary folder next to the target (a copy of the old
catalog with the new files over it, replacing the files that declared the same event types
and consumers), loads it with the catalog loader, and only then moves it into place: an import
that does not validate leaves the old catalog untouched and lists every problem.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import yaml

from eventscope.catalog.documents import Problem
from eventscope.catalog.loader import CatalogError, load_catalog
from eventscope.catalog.model import Catalog, Consumer, EventType, Lifecycle, file_stem
from eventscope.catalog.schemas import BASE_URI
from eventscope.errors import EventscopeError

class CatalogWriteError(EventscopeError):
    """An import whose result is not a valid catalog; nothing was written. Lists every problem."""

    def __init__(self, target: str, problems: list[Problem] | list[str]) -> None:
        self.target = target
        self.problems = [str(p) for p in problems]
        super().__init__(f"not written: the import into {target} would make an invalid catalog "
                         f"({len(self.problems)} problem(s); the old catalog is untouched):\n"
                         + "\n".join(f"  {p}" for p in self.problems))


def catalog_files(catalog: Catalog) -> dict[str, Any]:
    """Relative path -> YAML data of every file of the catalog folder."""
    files: dict[str, Any] = {}
    if catalog.name or catalog.teams:
        files["catalog.yaml"] = {"name": catalog.name, "teams": catalog.teams}
    for event_type in catalog.event_types:
        files[_unique(files, f"events/{file_stem(event_type.detail_type)}")] = \
            _event_type(event_type)
    for consumer in catalog.consumers:
        files[_unique(files, f"consumers/{file_stem(consumer.name)}")] = _consumer(consumer)
    if catalog.lifecycles:
        files["lifecycles.yaml"] = {"lifecycles": [_lifecycle(lc) for lc in catalog.lifecycles]}
    for uri, schema in catalog.schemas.items():
        name = uri[len(BASE_URI):] if uri.startswith(BASE_URI) else uri.rsplit("/", 1)[-1]
        own = schema if uri.startswith(BASE_URI) or not isinstance(schema, dict) \
            else {"$id": uri, **schema}
        files[_unique(files, f"schemas/{file_stem(name.rsplit('.', 1)[0])}")] = own
    return files


def _unique(files: Mapping[str, Any], stem: str) -> str:
    """`stem.yaml`, or `stem-2.yaml`... when taken (compared ignoring case, as some disks do)."""
    taken = {f.lower() for f in files}
    path, n = f"{stem}.yaml", 1
    while path.lower() in taken:
        n += 1
        path = f"{stem}-{n}.yaml"
    return path


def confined(root: Path, relative: str) -> Path:
    """`root / relative`, refusing any path that would land outside `root`."""
    parts = Path(relative).parts
    path = (root / relative).resolve()
    if Path(relative).is_absolute() or ".." in parts or not path.is_relative_to(root.resolve()):
        raise EventscopeError(f"refused to write {relative!r}: outside the catalog folder")
    return path


def write_catalog(catalog: Catalog, folder: str | Path) -> list[Path]:
    """Write the catalog into `folder` atomically; returns the files written (in `folder`).

    Files of `folder` that declare the same event types or consumers are replaced, the rest
    kept; the result must load as a valid catalog, else `CatalogWriteError` and no change.
    """
    return write_files(catalog_files(catalog), folder,
                       {t.detail_type for t in catalog.event_types},
                       {c.name for c in catalog.consumers})


def write_files(files: Mapping[str, Any], folder: str | Path,
                event_types: Collection[str] = (), consumers: Collection[str] = ()) -> list[Path]:
    """Write catalog files over a copy of `folder`, validate the copy, move it into place."""
    target = Path(folder).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not target.is_dir():
        raise EventscopeError(f"{folder} exists and is not a folder")
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.import-", dir=target.parent))
    try:
        work = staging / "catalog"
        if target.is_dir():
            shutil.copytree(target, work, symlinks=True)
        else:
            work.mkdir()
        _remove_replaced(work, event_types, consumers)
        written = []
        for relative, data in files.items():
            path = confined(work, relative)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_dump(data), "utf-8")
            written.append(target / path.relative_to(work.resolve()))
        try:
            load_catalog(work)
        except CatalogError as error:
            raise CatalogWriteError(str(folder), error.problems) from None
        _swap(work, target, staging)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove_replaced(work: Path, event_types: Collection[str],
                     consumers: Collection[str]) -> None:
    """Delete the old files that declare an event type or consumer about to be written."""
    for folder, key, names in (("events", "detail-type", event_types),
                               ("consumers", "name", consumers)):
        for file in sorted((work / folder).glob("*.y*ml")) if names else ():
            try:
                data = yaml.safe_load(file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue  # the loader reports it
            if isinstance(data, dict) and str(data.get(key)) in names:
                file.unlink()


def _swap(work: Path, target: Path, staging: Path) -> None:
    """Move the validated folder into place; on failure the old folder is put back."""
    if not target.exists():
        os.replace(work, target)
        return
    old = staging / "old"
    os.replace(target, old)
    try:
        os.replace(work, target)
    except OSError:
        os.replace(old, target)
        raise


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
                     | ({"schema": v.schema} if v.schema == {} else {})
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
        "cancellations": list(lifecycle.cancellations),
        "requires": {step: list(before) for step, before in lifecycle.requires.items()}})
