"""`$ref`s of AsyncAPI documents: following them, and bundling a payload into one schema.

Owns reading references the way AsyncAPI writes them: local (`#/components/messages/x`), into
another file next to the document (`../common/messages.yaml#/commentLiked`, resolved against
the file that holds the reference) and external URLs (never fetched: an `Unsupported` reason).
A payload is bundled into one self-contained JSON Schema (draft 2020-12): every schema it
references is copied under `$defs` and the reference rewritten to it, so shared and recursive
definitions stay shared; draft-07 idioms (array `items`, `dependencies`, `definitions`) are
rewritten to their 2020-12 spelling. Files are read through a function passed in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

FileReader = Callable[[Path], Any]
Where = tuple[str, str]  # (file key, JSON pointer)

_VALUES = ("enum", "const", "examples", "example", "default")  # data, not schemas
_DROPPED = ("$schema", "$id", "definitions", "$defs")  # rebuilt by the bundler


class Unsupported(Exception):
    """Something a message needs that the import cannot use; the message is a reason."""


@dataclass(frozen=True)
class Node:
    """A value of a document with the place it came from (for relative references)."""

    value: Any
    file: str
    pointer: str

    @property
    def where(self) -> Where:
        return (self.file, self.pointer)


@dataclass
class References:
    """Follows the references of one document (at `path`, if it has one) and its neighbours."""

    document: Any
    key: str  # the document's name in `Node.file`: its resolved path, else a label
    path: Path | None = None
    read: FileReader | None = None
    keep: frozenset[Path] = frozenset()  # files that stay references (the catalog's schemas/)
    files: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.files[self.key] = self.document

    def root(self) -> Node:
        return Node(self.document, self.key, "")

    def child(self, node: Node, *keys: str | int) -> Node:
        """The value under `keys` (missing: None), with its pointer."""
        value, pointer = node.value, node.pointer
        for key in keys:
            value = (value.get(key) if isinstance(value, dict) and isinstance(key, str)
                     else value[key] if isinstance(value, list) and isinstance(key, int)
                     and 0 <= key < len(value) else None)
            pointer += "/" + str(key).replace("~", "~0").replace("/", "~1")
        return Node(value, node.file, pointer)

    def follow(self, node: Node) -> Node:
        """The value a reference chain ends at (a value without `$ref` is returned as is)."""
        return self.chain(node)[-1]

    def chain(self, node: Node) -> list[Node]:
        """`node` and every value its reference chain passes through, the last one not a ref."""
        nodes = [node]
        while isinstance(node.value, dict) and isinstance(node.value.get("$ref"), str):
            if node.where in {n.where for n in nodes[:-1]}:
                raise Unsupported(f"circular $ref {node.value['$ref']!r}")
            node = self.target(node.value["$ref"], node.file)
            nodes.append(node)
        return nodes

    def target(self, ref: str, base: str) -> Node:
        """What `ref`, written in file `base`, points at."""
        location, _, fragment = ref.partition("#")
        file = self._file(location, base) if location else base
        if fragment and not fragment.startswith("/"):
            raise Unsupported(f"$ref {ref!r}: only JSON pointer fragments are supported")
        node = Node(self.files[file], file, "")
        for part in [unquote(p).replace("~1", "/").replace("~0", "~")
                     for p in fragment.split("/")[1:]]:
            node = self.child(node, int(part) if isinstance(node.value, list)
                              and part.isdigit() else part)
            if node.value is None:
                raise Unsupported(f"$ref {ref!r} points at nothing")
        return node

    def kept(self, ref: str, base: str) -> bool:
        """True for a reference to one of the files to keep as references (shared schemas)."""
        location = ref.partition("#")[0]
        if not location or _is_url(location) or self._start(base) is None:
            return False
        return self._resolve_path(location, base) in self.keep

    def _start(self, base: str) -> Path | None:
        return self.path if base == self.key else Path(base)

    def _resolve_path(self, location: str, base: str) -> Path:
        start = self._start(base)
        assert start is not None
        return (start.parent / unquote(location)).resolve()

    def _file(self, location: str, base: str) -> str:
        if _is_url(location):
            raise Unsupported(f"$ref to an external URL {location!r} (nothing is fetched)")
        if PurePosixPath(location).is_absolute():
            raise Unsupported(f"$ref to an absolute path {location!r} (only files next to the "
                              "document are read)")
        if self.read is None or self._start(base) is None:
            raise Unsupported(f"$ref to the file {location!r}, but the document was given "
                              "without its path")
        path = self._resolve_path(location, base)
        key = str(path)
        if key not in self.files:
            if path.suffix not in (".yaml", ".yml", ".json") or not path.is_file():
                raise Unsupported(f"$ref to {location!r}: no such YAML/JSON file next to the "
                                  "document")
            try:
                self.files[key] = self.read(path)
            except Exception as exc:  # noqa: BLE001 - the reader's own error, as a reason
                raise Unsupported(f"$ref to {location!r}: {exc}") from None
        return key

    def bundle(self, payload: Node) -> Any:
        """One self-contained draft 2020-12 schema for a payload, its references in `$defs`."""
        return _Bundle(self, self.follow(payload)).run()


def _is_url(location: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", location) is not None


class _Bundle:
    """One payload being bundled: the definitions copied so far and their names."""

    def __init__(self, refs: References, root: Node) -> None:
        self.refs, self.root = refs, root
        self.defs: dict[str, Any] = {}
        self.names: dict[Where, str] = {}

    def run(self) -> Any:
        schema = self.convert(self.root.value, self.root.file)
        if self.defs and isinstance(schema, dict):
            schema = {**schema, "$defs": self.defs}
        elif self.defs:
            schema = {"allOf": [schema], "$defs": self.defs}
        return schema

    def convert(self, node: Any, file: str) -> Any:
        if isinstance(node, list):
            return [self.convert(item, file) for item in node]
        if not isinstance(node, dict):
            return node
        result: dict[str, Any] = {}
        for key, value in node.items():
            if key in _DROPPED:
                continue
            if key == "$ref" and isinstance(value, str):
                result[key] = self.reference(value, file)
            elif key in _VALUES:
                result[key] = value
            elif key in ("properties", "patternProperties", "dependentSchemas") and \
                    isinstance(value, dict):
                result[key] = {k: self.convert(v, file) for k, v in value.items()}
            else:
                result[key] = self.convert(value, file)
        return _to_2020_12(result)

    def reference(self, ref: str, file: str) -> str:
        if self.refs.kept(ref, file):
            return ref
        target = self.refs.target(ref, file)
        if target.where == self.root.where:
            return "#"
        if target.where not in self.names:
            name = self._name(target.pointer)
            self.names[target.where] = name
            self.defs[name] = None  # reserved before converting: recursion finds the name
            self.defs[name] = self.convert(target.value, target.file)
        return f"#/$defs/{self.names[target.where]}"

    def _name(self, pointer: str) -> str:
        last = pointer.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", last).strip("_") or "schema"
        name, n = base, 1
        while name in self.defs:
            n += 1
            name = f"{base}_{n}"
        return name


def _to_2020_12(schema: dict[str, Any]) -> dict[str, Any]:
    """Draft-04/07 spellings to 2020-12: array items, dependencies, boolean exclusive bounds."""
    if isinstance(schema.get("items"), list):
        schema["prefixItems"] = schema.pop("items")
        if "additionalItems" in schema:
            schema["items"] = schema.pop("additionalItems")
    else:
        schema.pop("additionalItems", None)
    dependencies = schema.pop("dependencies", None)
    if isinstance(dependencies, dict):
        required = {k: v for k, v in dependencies.items() if isinstance(v, list)}
        schemas = {k: v for k, v in dependencies.items() if not isinstance(v, list)}
        if required:
            schema["dependentRequired"] = {**schema.get("dependentRequired", {}), **required}
        if schemas:
            schema["dependentSchemas"] = {**schema.get("dependentSchemas", {}), **schemas}
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if schema.get(exclusive) is True and bound in schema:
            schema[exclusive] = schema.pop(bound)
        elif schema.get(exclusive) is False:
            schema.pop(exclusive)
    return schema
