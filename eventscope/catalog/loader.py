"""Loading a catalog folder into a `Catalog`, reporting every mistake at once.

Owns the folder layout (catalog.yaml, events/, consumers/, lifecycles.yaml, schemas/), checking
each file against the shipped catalog-format JSON Schema, the checks across files (unknown
event types, duplicate names, unresolvable `$ref`s, examples that break their schema, versions
that break their type's compatibility mode) and building the model from checked data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import (Draft4Validator, Draft6Validator, Draft7Validator, Draft201909Validator,
                        Draft202012Validator)
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from jsonschema.exceptions import ValidationError

from eventscope.catalog.compat import check_versions
from eventscope.catalog.documents import Document, DocumentError, JsonPath, Problem, read_document
from eventscope.catalog.model import (
    Catalog, Consumer, EventType, Lifecycle, SchemaVersion, Subscription,
)
from eventscope.catalog.schemas import (
    catalog_registry, contract_uri, shared_uri, unresolved_refs, validator, version_uri,
)
from eventscope.errors import EventscopeError
from eventscope.events import DEFAULT_VERSION_FROM, VERSION_FROM_NONE

YAML_SUFFIXES = (".yaml", ".yml")
SCHEMA_SUFFIXES = (".yaml", ".yml", ".json")


class CatalogError(EventscopeError):
    """A catalog with mistakes; `problems` lists every one, each with file, line and field."""

    def __init__(self, root: str, problems: list[Problem]) -> None:
        self.root = root
        self.problems = sorted(problems)
        first = self.problems[0] if self.problems else "no details"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"catalog {root} has {len(self.problems)} problem(s): {first}{more}")


@cache
def format_schema() -> dict[str, Any]:
    """The JSON Schema of the catalog file format, as shipped in the package."""
    text = resources.files("eventscope.catalog").joinpath(
        "schemas/catalog-format.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _format_validator(kind: str) -> Draft202012Validator:
    schema = dict(format_schema())
    schema["$ref"] = f"#/$defs/{kind}"
    return Draft202012Validator(schema)


def load_catalog(path: str | Path) -> Catalog:
    """Load and check the catalog folder at `path`; raise `CatalogError` listing all mistakes."""
    root = Path(path)
    if not root.is_dir():
        raise CatalogError(str(root), [Problem(str(root), 0, "", "expected a catalog folder "
                                               "(with events/ and consumers/)")])
    problems: list[Problem] = []
    docs = _read_all(root, problems)
    checked = {doc.path: doc for kind, doc in docs if _check_format(kind, doc, problems)}
    catalog = _build(root, docs, checked, problems)
    problems += check_catalog(catalog, {d.path: d for _, d in docs})
    if problems:
        raise CatalogError(str(root), problems)
    return catalog


def _files(root: Path) -> Iterator[tuple[str, Path]]:
    for name in ("catalog.yaml", "catalog.yml"):
        if (root / name).is_file():
            yield "catalog", root / name
    for kind, folder, suffixes in (("eventType", "events", YAML_SUFFIXES),
                                   ("consumer", "consumers", YAML_SUFFIXES),
                                   ("schema", "schemas", SCHEMA_SUFFIXES)):
        for file in sorted((root / folder).glob("*")) if (root / folder).is_dir() else ():
            if file.suffix in suffixes and file.is_file():
                yield kind, file
    for name in ("lifecycles.yaml", "lifecycles.yml"):
        if (root / name).is_file():
            yield "lifecycles", root / name


def _read_all(root: Path, problems: list[Problem]) -> list[tuple[str, Document]]:
    docs = []
    for kind, file in _files(root):
        shown = file.relative_to(root).as_posix()
        try:
            doc, found = read_document(file, shown)
        except DocumentError as error:
            problems.append(error.problem)
            continue
        problems += found
        docs.append((kind, doc))
    return docs


def _check_format(kind: str, doc: Document, problems: list[Problem]) -> bool:
    """Report format errors; True when the file can still be built into the model.

    A file whose only errors are outside its nested lists (a wrong owner, an unknown key) is
    still built, so the checks across files run on it and report their mistakes too; a file
    missing a field the model cannot be built without (`_NEEDED_TO_BUILD`) is not.
    """
    if kind == "schema":
        return _check_json_schema(doc, (), doc.data, problems)
    errors = sorted(_format_validator(kind).iter_errors(doc.data), key=lambda e: list(e.path))
    for error in _leaf_errors(errors):
        problems += _format_problems(doc, error)
    return isinstance(doc.data, dict) and not any(
        (error.path and error.path[0] in _NESTED)
        or (error.validator == "required" and set(_missing_key(error)) & _NEEDED_TO_BUILD)
        for error in errors)


_NESTED = ("versions", "subscriptions", "lifecycles")
_NEEDED_TO_BUILD = {"detail-type", "source", "versions", "name", "lifecycles", "starts",
                    "correlation-path"}


def _format_problems(doc: Document, error: ValidationError) -> list[Problem]:
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = _declared_properties(error)
        return [doc.problem(path + (key,), f"unexpected field; expected one of: "
                            f"{', '.join(allowed)}")
                for key in error.instance if key not in allowed]
    return [doc.problem(path + _missing_key(error), explain(error))]


def _leaf_errors(errors: list[ValidationError]) -> Iterator[ValidationError]:
    """For oneOf/anyOf failures, the most relevant sub-error; otherwise the error itself."""
    for error in errors:
        yield jsonschema.exceptions.best_match([error]) if error.context else error


def _missing_key(error: ValidationError) -> JsonPath:
    if error.validator == "required":
        return (str(error.message).split("'")[1],) if "'" in error.message else ()
    return ()


def _declared_properties(error: ValidationError) -> list[str]:
    schema = error.schema
    return sorted(schema.get("properties", {})) if isinstance(schema, Mapping) else []


def explain(error: ValidationError) -> str:
    """What was expected, in words, for one format error."""
    validator = error.validator
    # Any: jsonschema's stubs allow "unset" here, which only hand-made errors are
    value: Any = error.validator_value
    instance: Any = error.instance
    if validator == "required":
        return "missing (expected this field)"
    if validator == "additionalProperties":
        allowed = _declared_properties(error)
        return f"{error.message}; expected only: {', '.join(allowed)}"
    if validator == "type":
        wanted = value if isinstance(value, str) else " or ".join(value)
        return f"expected {wanted}, got {json.dumps(error.instance)[:60]}"
    if validator == "enum":
        return f"expected one of {', '.join(map(str, value))}, got {error.instance!r}"
    if validator == "const":
        return f"expected {value!r}, got {error.instance!r}"
    if validator == "pattern":
        return f"expected text matching {value}, got {error.instance!r}"
    if validator == "minItems":
        return f"expected at least {value} item(s)"
    if validator == "minLength":
        return "expected a non-empty value"
    if validator == "maxLength":
        return f"expected at most {value} characters, got {len(instance)}"
    return error.message


def meta_validator(schema: Any) -> Validator:
    """A validator of `schema` against the meta-schema of the dialect its `$schema` names
    (draft-04 to 2020-12; 2020-12 when it names none)."""
    cls = validator_for(schema, default=Draft202012Validator) if isinstance(schema, dict) \
        else Draft202012Validator
    return cls(cls.META_SCHEMA)


def schema_problem(schema: Any) -> str | None:
    """Why `schema` is no JSON Schema of its declared draft (else of any draft 4 to 2020-12)."""
    if not isinstance(schema, (dict, bool)):
        return f"expected an object or a boolean, got {type(schema).__name__}"
    declared = isinstance(schema, dict) and "$schema" in schema
    drafts = [validator_for(schema)] if declared else [
        Draft202012Validator, Draft201909Validator, Draft7Validator, Draft6Validator,
        Draft4Validator]
    first = None
    for draft in drafts:
        try:
            # the stubs say dict; boolean schemas are valid too (and checked the same way)
            draft.check_schema(schema)  # type: ignore[arg-type]
            return None
        except SchemaError as exc:
            first = first or f"{exc.message} at {exc.json_path}"
    return first


def dialect(schema: Any) -> str:
    """The JSON Schema dialect a schema is read in, for messages."""
    named = schema.get("$schema") if isinstance(schema, dict) else None
    return str(named) if isinstance(named, str) and named else "draft 2020-12"


def _check_json_schema(doc: Document, path: JsonPath, schema: Any,
                       problems: list[Problem]) -> bool:
    errors = list(meta_validator(schema).iter_errors(schema))
    for error in errors[:3]:
        problems.append(doc.problem(path + tuple(error.absolute_path),
                                    f"not a valid JSON Schema ({dialect(schema)}): "
                                    f"{explain(error)}"))
    return not errors


def _build(root: Path, docs: list[tuple[str, Document]], checked: dict[str, Document],
           problems: list[Problem]) -> Catalog:
    by_kind: dict[str, list[Document]] = {}
    for kind, doc in docs:
        if doc.path in checked:
            by_kind.setdefault(kind, []).append(doc)
    settings = (by_kind.get("catalog") or [Document("", {})])[0].data or {}
    mode = settings.get("defaults", {}).get("compatibility", "FULL_TRANSITIVE")
    return Catalog(
        event_types=tuple(_event_type(d.data, mode) for d in by_kind.get("eventType", [])),
        consumers=tuple(_consumer(d.data) for d in by_kind.get("consumer", [])),
        lifecycles=tuple(_lifecycle(item) for d in by_kind.get("lifecycles", [])
                         for item in d.data["lifecycles"]),
        revision=_revision(root, docs),
        teams=dict(settings.get("teams", {})),
        schemas=dict(_shared_schemas(by_kind.get("schema", []), problems)),
        name=str(settings.get("name", root.name)),
    )


def _shared_schemas(docs: list[Document], problems: list[Problem]) -> Iterator[tuple[str, Any]]:
    for doc in docs:
        own_id = doc.data.get("$id") if isinstance(doc.data, dict) else None
        if own_id is not None and not str(own_id).startswith(("http://", "https://", "urn:")):
            problems.append(doc.problem(("$id",), "expected an absolute URI (or no $id)"))
        yield own_id or shared_uri(Path(doc.path).stem), doc.data


def _event_type(data: dict[str, Any], default_mode: str) -> EventType:
    sunset = data.get("sunset")
    return EventType(
        detail_type=str(data.get("detail-type", "")),
        source=str(data.get("source", "")),
        owner=str(data.get("owner", "")),
        description=data.get("description", ""),
        versions=tuple(SchemaVersion(str(v["version"]), v["schema"], tuple(v.get("examples", [])),
                                     v.get("description", ""))
                       for v in data["versions"]),
        version_from=data.get("version-from", DEFAULT_VERSION_FROM),
        correlation_paths=tuple(data.get("correlation-paths", ("detail.orderId",))),
        pii_fields=tuple(data.get("pii-fields", ())),
        status=data.get("status", "active"),
        sunset=_date(sunset),
        replacement=data.get("replacement"),
        compatibility=data.get("compatibility", default_mode),
        default_version=None if data.get("default-version") is None
        else str(data["default-version"]),
    )


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _consumer(data: dict[str, Any]) -> Consumer:
    return Consumer(
        name=str(data.get("name", "")),
        team=str(data.get("team", "")),
        functions=tuple(data.get("functions", ())),
        rule_targets=tuple(data.get("rule-targets", ())),
        subscriptions=tuple(
            Subscription(s["event"], s.get("source"), tuple(str(v) for v in s.get("versions", ())),
                         s.get("contract"))
            for s in data.get("subscriptions", ())),
        description=data.get("description", ""),
    )


def _lifecycle(data: dict[str, Any]) -> Lifecycle:
    return Lifecycle(
        name=data["name"],
        correlation_path=data["correlation-path"],
        starts=tuple(data["starts"]),
        advances=tuple(data.get("advances", ())),
        ends=tuple(data.get("ends", ())),
        cancellations=tuple(data.get("cancellations", ())),
        description=data.get("description", ""),
        requires={step: tuple(before) for step, before in data.get("requires", {}).items()},
    )


def _revision(root: Path, docs: list[tuple[str, Document]]) -> str:
    digest = hashlib.sha256()
    for _, doc in sorted(docs, key=lambda item: item[1].path):
        digest.update(doc.path.encode() + b"\0" + (root / doc.path).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


# --- checks across files -------------------------------------------------------------------

def check_catalog(catalog: Catalog, docs: dict[str, Document]) -> list[Problem]:
    """Every cross-file mistake: duplicates, unknown references, schemas, examples, modes."""
    locate = _Locator(docs)
    problems: list[Problem] = []
    problems += _duplicates(catalog, locate)
    problems += _references(catalog, locate)
    problems += _implicit_versions(catalog, locate)
    problems += _schemas_and_examples(catalog, locate)
    for event_type in catalog.event_types:
        for issue in check_versions(event_type, _registry_or_none(catalog)):
            index = [v.version for v in event_type.versions].index(issue.version)
            problems.append(locate.event(event_type, ("versions", index, "schema"), str(issue)))
    return problems


def _registry_or_none(catalog: Catalog) -> Any:
    try:
        return catalog_registry(catalog)
    except Exception:  # noqa: BLE001 - a broken shared schema is reported elsewhere
        return None


class _Locator:
    """Finds the file and line of a catalog item, so cross-file problems point at it."""

    def __init__(self, docs: dict[str, Document]) -> None:
        self.events = {d.data.get("detail-type"): d for p, d in docs.items()
                       if p.startswith("events/") and isinstance(d.data, dict)}
        self.consumers = {d.data.get("name"): d for p, d in docs.items()
                          if p.startswith("consumers/") and isinstance(d.data, dict)}
        self.lifecycles = next((d for p, d in docs.items() if p.startswith("lifecycles.")), None)

    def event(self, event_type: EventType, path: JsonPath, message: str) -> Problem:
        doc = self.events.get(event_type.detail_type) or Document("events/", None)
        return doc.problem(path, message)

    def consumer(self, consumer: Consumer, path: JsonPath, message: str) -> Problem:
        doc = self.consumers.get(consumer.name) or Document("consumers/", None)
        return doc.problem(path, message)

    def lifecycle(self, index: int, path: JsonPath, message: str) -> Problem:
        doc = self.lifecycles or Document("lifecycles.yaml", None)
        return doc.problem(("lifecycles", index) + path, message)


def _duplicates(catalog: Catalog, locate: _Locator) -> Iterator[Problem]:
    seen: set[str] = set()
    for event_type in catalog.event_types:
        if event_type.detail_type in seen:
            yield locate.event(event_type, ("detail-type",),
                               "duplicate event type (expected one file per detail-type)")
        seen.add(event_type.detail_type)
        versions = [v.version for v in event_type.versions]
        for index, name in enumerate(versions):
            if name in versions[:index]:
                yield locate.event(event_type, ("versions", index, "version"),
                                   f"duplicate version {name!r} (expected each version once)")
    names: set[str] = set()
    for consumer in catalog.consumers:
        if consumer.name in names:
            yield locate.consumer(consumer, ("name",), "duplicate consumer name")
        names.add(consumer.name)


def _references(catalog: Catalog, locate: _Locator) -> Iterator[Problem]:
    known = {t.detail_type: t for t in catalog.event_types}
    for event_type in catalog.event_types:
        if event_type.replacement and event_type.replacement not in known:
            yield locate.event(event_type, ("replacement",), "expected a catalogued event type, "
                               f"got unknown {event_type.replacement!r}")
        if event_type.status == "active" and event_type.sunset:
            yield locate.event(event_type, ("sunset",), "a sunset date needs status: deprecated")
    for consumer in catalog.consumers:
        for index, sub in enumerate(consumer.subscriptions):
            declared = known.get(sub.detail_type)
            path = ("subscriptions", index)
            if declared is None:
                yield locate.consumer(consumer, path + ("event",), "expected a catalogued event "
                                      f"type, got unknown {sub.detail_type!r}")
                continue
            if sub.source and sub.source != declared.source:
                yield locate.consumer(consumer, path + ("source",), f"expected "
                                      f"{declared.source!r} (the source of {sub.detail_type})")
            have = [v.version for v in declared.versions]
            for vi, version in enumerate(sub.versions):
                if version not in have:
                    yield locate.consumer(consumer, path + ("versions", vi), f"expected one of "
                                          f"{', '.join(have)} (versions of {sub.detail_type})")
    for index, lifecycle in enumerate(catalog.lifecycles):
        for part in ("starts", "advances", "ends", "cancellations"):
            for ti, name in enumerate(getattr(lifecycle, part)):
                if name not in known:
                    yield locate.lifecycle(index, (part, ti), "expected a catalogued event type, "
                                           f"got unknown {name!r}")
        steps = set(lifecycle.all_types)
        for step, before in lifecycle.requires.items():
            for ti, name in enumerate((step, *before)):
                if name not in steps:
                    yield locate.lifecycle(
                        index, ("requires", step) + ((ti - 1,) if ti else ()),
                        f"expected a step of lifecycle {lifecycle.name!r}, got {name!r}")


def _implicit_versions(catalog: Catalog, locate: _Locator) -> Iterator[Problem]:
    """A declared default version must exist; a type that never reads one needs a default."""
    for event_type in catalog.event_types:
        have = [v.version for v in event_type.versions]
        if event_type.default_version is not None and event_type.default_version not in have:
            yield locate.event(event_type, ("default-version",), f"expected one of "
                               f"{', '.join(have)}, got {event_type.default_version!r}")
        elif event_type.version_from == VERSION_FROM_NONE and event_type.implicit_version is None:
            yield locate.event(event_type, ("version-from",), "version-from: none with several "
                               "versions needs default-version (which version are the events?)")


def _schemas_and_examples(catalog: Catalog, locate: _Locator) -> Iterator[Problem]:
    for event_type in catalog.event_types:
        for vi, version in enumerate(event_type.versions):
            for error in list(meta_validator(version.schema).iter_errors(version.schema))[:3]:
                yield locate.event(event_type, ("versions", vi, "schema", *error.absolute_path),
                                   f"not a valid JSON Schema ({dialect(version.schema)}): "
                                   f"{explain(error)}")
    for consumer in catalog.consumers:
        for si, sub in enumerate(consumer.subscriptions):
            contract = sub.contract or {}
            for error in list(meta_validator(contract).iter_errors(contract))[:3]:
                yield locate.consumer(consumer, ("subscriptions", si, "contract",
                                                 *error.absolute_path),
                                      f"not a valid JSON Schema ({dialect(contract)}): "
                                      f"{explain(error)}")
    try:
        registry = catalog_registry(catalog)
    except Exception as exc:  # noqa: BLE001 - e.g. a schema that is not an object
        yield Problem("schemas/", 0, "", f"cannot index catalog schemas: {exc}")
        return
    for event_type in catalog.event_types:
        for vi, version in enumerate(event_type.versions):
            uri = version_uri(event_type.detail_type, version.version)
            missing = unresolved_refs(version.schema, uri, registry)
            if missing:
                yield locate.event(event_type, ("versions", vi, "schema"), _unresolved(missing))
                continue
            yield from _examples(event_type, vi, version, validator(uri, registry), locate)
    for consumer in catalog.consumers:
        for si, sub in enumerate(consumer.subscriptions):
            uri = contract_uri(consumer.name, sub.detail_type)
            missing = unresolved_refs(sub.contract, uri, registry) if sub.contract else []
            if missing:
                yield locate.consumer(consumer, ("subscriptions", si, "contract"),
                                      _unresolved(missing))


def _unresolved(refs: list[str]) -> str:
    return (f"unresolvable $ref {', '.join(map(repr, refs))} (expected a schema in the catalog's "
            "schemas/ folder or another event version; nothing is fetched)")


def _examples(event_type: EventType, vi: int, version: SchemaVersion, check: Any,
              locate: _Locator) -> Iterator[Problem]:
    for ei, example in enumerate(version.examples):
        error = jsonschema.exceptions.best_match(check.iter_errors(example))
        if error is not None:
            yield locate.event(event_type, ("versions", vi, "examples", ei, *error.absolute_path),
                               f"example does not match its schema (expected: {error.message} "
                               f"at {error.json_path})")
