"""Checking AsyncAPI documents against the official AsyncAPI JSON Schemas, offline.

Owns finding the schemas of the npm package `@asyncapi/specs` (at `$EVENTSCOPE_ASYNCAPI_SPECS`,
else the repository's `node_modules/@asyncapi/specs`, installed by `make venv`), picking the
one for a document's `asyncapi` version (`schemas/2.6.0.json`, `schemas/3.0.0.json`, ...: each
bundles its definitions under their `$id`s, so a `referencing.Registry` of that one file
resolves everything and nothing is fetched) and turning a failure into lines that say where
(a JSON path) and what the schema expected. Where the schemas cannot be found, the answer says
"not validated", never "valid".
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT7

ENV = "EVENTSCOPE_ASYNCAPI_SPECS"
PACKAGE = "@asyncapi/specs"


@dataclass(frozen=True)
class SpecCheck:
    """The outcome for one document: validated (with errors, maybe none) or not, and why."""

    validated: bool
    errors: tuple[str, ...] = ()  # one located line per error; empty when valid
    note: str = ""  # what was used, or why the document was not validated


def specs_folder() -> Path | None:
    """The folder of the `@asyncapi/specs` package, or None when it is not installed."""
    configured = os.environ.get(ENV)
    candidates = [Path(configured)] if configured else [
        Path(__file__).resolve().parents[2] / "node_modules" / PACKAGE]
    return next((c for c in candidates if (c / "schemas").is_dir()), None)


def check_document(document: Mapping[str, Any], folder: Path | None = None) -> SpecCheck:
    """Validate one AsyncAPI document against the official schema of its version."""
    folder = folder if folder is not None else specs_folder()
    if folder is None:
        return SpecCheck(False, note=f"not validated: the AsyncAPI JSON Schemas ({PACKAGE}) "
                                     f"were not found (run `make venv`, or set ${ENV})")
    version = str(document.get("asyncapi", ""))
    schema_file = folder / "schemas" / f"{version}.json"
    if not version or not schema_file.is_file():
        return SpecCheck(False, note=f"not validated: {PACKAGE} has no schema for asyncapi "
                                     f"{version or '(missing)'}")
    validator = _validator(str(schema_file))
    errors = [_located(error) for error in validator.iter_errors(dict(document))]
    return SpecCheck(True, tuple(sorted(set(errors))),
                     note=f"validated against {PACKAGE} schemas/{schema_file.name}")


def _refuse(uri: str) -> Resource[Any]:
    raise NoSuchResource(uri)  # its field `ref`, positional: mypy sees KeyError's __init__


@cache
def _validator(schema_file: str) -> Draft7Validator:
    schema = json.loads(Path(schema_file).read_text(encoding="utf-8"))
    resources = [(schema["$id"], schema)] + list(schema.get("definitions", {}).items())
    registry: Registry[Any] = Registry(retrieve=_refuse).with_resources(  # type: ignore[call-arg]
        (uri, Resource.from_contents(body, default_specification=DRAFT7))
        for uri, body in resources)
    return Draft7Validator(schema, registry=registry)


def _located(error: ValidationError) -> str:
    """One line: where in the document, and what the official schema expected there."""
    leaf = best_match([error]) if error.context else error
    return f"{leaf.json_path}: {leaf.message[:300]}"
