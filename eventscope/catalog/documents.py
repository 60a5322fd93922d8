"""YAML catalog documents with the line of every value, for errors that say file:line field.

Owns reading one YAML (or JSON) file into plain JSON-compatible data plus a map from each
value's path to its line, and the `Problem` record every catalog check reports.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake in a catalog: where it is and what was expected instead."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where} {self.field or '(top)'}: {self.message}"


@dataclass
class Document:
    """One parsed catalog file: its data, and the line of each value by path."""

    path: str  # as shown in errors, relative to the catalog root
    data: Any
    lines: dict[JsonPath, int] = field(default_factory=dict)

    def line(self, path: Iterable[str | int]) -> int:
        """The line of the value at `path`, or of its nearest ancestor that has one."""
        parts = tuple(path)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return self.lines.get((), 1)

    def problem(self, path: Iterable[str | int], message: str) -> Problem:
        parts = tuple(path)
        return Problem(self.path, self.line(parts), format_path(parts), message)


def format_path(parts: Iterable[str | int]) -> str:
    """`versions[1].schema.properties` for ("versions", 1, "schema", "properties")."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class DocumentError(Exception):
    """A file that is not readable YAML; carries the problem to report."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def read_document(file: Path, shown_as: str) -> tuple[Document, list[Problem]]:
    """Parse a YAML/JSON file into a `Document`; duplicate keys are reported as problems."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DocumentError(Problem(shown_as, 0, "", f"cannot read file: {exc}")) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DocumentError(Problem(shown_as, line, "", f"not valid YAML: {reason}")) from None
    finally:
        loader.dispose()
    document = Document(shown_as, None)
    problems: list[Problem] = []
    if node is not None:
        document.data = _build(node, (), document, problems, loader)
    return document, problems


def _build(node: yaml.Node, path: JsonPath, document: Document, problems: list[Problem],
           loader: yaml.SafeLoader) -> Any:
    document.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = _scalar(key_node, loader)
            key = key if isinstance(key, str) else str(key)
            if key in result:
                problems.append(Problem(document.path, key_node.start_mark.line + 1,
                                        format_path(path + (key,)),
                                        "duplicate key (expected each key once)"))
            result[key] = _build(value_node, path + (key,), document, problems, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), document, problems, loader)
                for i, item in enumerate(node.value)]
    return _scalar(node, loader)


def _scalar(node: yaml.Node, loader: yaml.SafeLoader) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return yaml.serialize(node).strip()
    value = loader.construct_object(node, deep=True)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()  # keep JSON-compatible; the catalog format expects strings
    return value
