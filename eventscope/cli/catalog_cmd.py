"""`eventscope catalog ...` and `eventscope contracts ...`: the catalog and contract commands."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
import orjson
import yaml

from eventscope.catalog.asyncapi import (DETAIL_TYPE_FROM, AsyncApiFile, export_asyncapi,
                                         import_asyncapi)
from eventscope.catalog.asyncapi_specs import check_document
from eventscope.catalog.compat import (CANNOT_TELL, COMPATIBLE, INCOMPATIBLE, MODES, Change,
                                       Verdict, check, diff)
from eventscope.catalog.loader import CatalogError, load_catalog, schema_problem
from eventscope.catalog.model import Catalog, Consumer
from eventscope.catalog.schema_registry import import_schema_registry
from eventscope.catalog.schemas import catalog_registry
from eventscope.catalog.pact import event_type_mapping, import_pact, keep_declared
from eventscope.catalog.writer import CatalogWriteError, write_catalog
from eventscope.cli.aws import aws_clients, aws_errors, aws_options, aws_settings
from eventscope.cli.options import (catalog_folder_option as catalog_option, db_option,
                                     echo_json, emit_rows, json_option, output_options)
from eventscope.contracts.checks import ContractResult, verify
from eventscope.contracts.conformance import check_conformance
from eventscope.contracts.junit import read_junit, write_junit
from eventscope.errors import InputError
from eventscope.events import format_time
from eventscope.findings.read import stored_event_source
from eventscope.store import open_store


@click.group()
def catalog() -> None:
    """Check and compare the event catalog (events, consumers, lifecycles)."""


@catalog.command()
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@json_option
def validate(path: str, as_json: bool) -> None:
    """Check a catalog folder and report every mistake as file:line field: expected.

    Checks each file against the catalog format, then across files: unknown event types,
    unresolvable $refs, examples that break their schema, versions that break their type's
    compatibility mode. Exits 1 when anything is wrong, 2 when PATH is not a folder.
    """
    try:
        loaded = load_catalog(path)
    except CatalogError as error:
        if as_json:
            echo_json({"valid": False, "problems": [vars(p) for p in error.problems]})
        else:
            for problem in error.problems:
                click.echo(str(problem), err=True)
            click.echo(f"{len(error.problems)} problem(s) in {path}", err=True)
        sys.exit(1)
    summary = {"valid": True, "event_types": len(loaded.event_types),
               "consumers": len(loaded.consumers), "lifecycles": len(loaded.lifecycles),
               "revision": loaded.revision}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"{path}: valid ({summary['event_types']} event types, "
                   f"{summary['consumers']} consumers, {summary['lifecycles']} lifecycles, "
                   f"revision {loaded.revision})")


@catalog.command(name="diff")
@click.argument("old")
@click.argument("new")
@click.option("--catalog", "catalog_path", envvar="EVENTSCOPE_CATALOG", default=None,
              metavar="PATH", help="Catalog folder, to name versions as EventType@version and "
                                   "resolve $refs to its schemas.")
@click.option("--mode", type=click.Choice(MODES), default=None,
              help="Mode to gate on (default: the event type's, else FULL_TRANSITIVE).")
@json_option
def diff_command(old: str, new: str, catalog_path: str | None, mode: str | None,
                 as_json: bool) -> None:
    """Classify every change between two schema versions and gate on a compatibility mode.

    OLD and NEW are JSON/YAML schema files, or EventType@version with --catalog. Prints each
    change read both ways (new reading old events: BACKWARD; old reading new: FORWARD) with
    its verdict and reason, and the status of every mode. Exits 0 when the mode holds, 1 when
    it breaks or the checker cannot tell (the reason is shown), 2 on a usage or input error
    (a missing file, a schema that is not JSON Schema, an unknown version).
    """
    try:
        loaded = load_catalog(catalog_path) if catalog_path else None
        old_schema, old_mode = _schema_arg(old, loaded)
        new_schema, _ = _schema_arg(new, loaded)
    except (InputError, CatalogError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    registry = catalog_registry(loaded) if loaded else None
    gate = mode or old_mode or "FULL_TRANSITIVE"
    backward = diff(old_schema, new_schema, registry, "old", "new")
    forward = diff(new_schema, old_schema, registry, "new", "old")
    verdicts: dict[str, Verdict] = {m: check([("old", old_schema)], new_schema, m, registry)
                                    for m in MODES}
    status = verdicts[gate].status
    if as_json:
        echo_json({"mode": gate, "status": status, "compatible": status == COMPATIBLE,
                   "verdicts": {m: v.status for m, v in verdicts.items()},
                   "backward": [c.as_dict() for c in backward],
                   "forward": [c.as_dict() for c in forward]})
    else:
        _print_changes("new schema reading old events (BACKWARD)", backward)
        _print_changes("old schema reading new events (FORWARD)", forward)
        click.echo("verdicts: " + ", ".join(f"{m} {_STATUS_WORDS[v.status]}"
                                            for m, v in verdicts.items()))
        click.echo(f"{gate}: {status.upper() if status != COMPATIBLE else status}")
        if status == CANNOT_TELL:
            click.echo("the checker could not judge every change, so the mode is not known to "
                       "hold: " + "; ".join(verdicts[gate].reasons()[:3]))
    if status != COMPATIBLE:
        sys.exit(1)


_STATUS_WORDS = {COMPATIBLE: "ok", INCOMPATIBLE: "BREAKS", CANNOT_TELL: "CANNOT TELL"}


@catalog.command()
@catalog_option
@db_option
@click.option("--strict", is_flag=True, help="Exit 1 when any stored event breaks its schema.")
@output_options
def conformance(catalog_path: str, db_url: str | None, strict: bool, output: str) -> None:
    """Validate every stored event of a catalogued type against its version's schema.

    Prints schema drift per event type and version: events checked and failing, first and
    last failure, the first failing event and its error with a JSON path.
    """
    loaded = load_catalog(catalog_path)
    drift = check_conformance(loaded, open_store(db_url, must_exist=True).iter_events())
    if output == "json":
        echo_json({"catalog_revision": loaded.revision, "drift": [d.as_dict() for d in drift]})
    elif output != "table":
        emit_rows(output, [d.as_dict() for d in drift],
                  ["source", "detail_type", "version", "checked", "failing", "drifting"])
    else:
        for item in drift:
            status = "DRIFT" if item.drifting else "ok   "
            click.echo(f"{status} {item.source} {item.detail_type} v{item.version or '?'}: "
                       f"{item.checked} checked, {item.failing} failing")
            if item.drifting:
                click.echo(f"      first {format_time(item.first_failure_ms or 0)} event "
                           f"{item.first_event_id}: {item.first_error}")
                click.echo(f"      last  {format_time(item.last_failure_ms or 0)}")
        if not drift:
            click.echo("no stored events of catalogued types")
    if strict and any(d.drifting for d in drift):
        sys.exit(1)


@catalog.command(name="export-asyncapi")
@catalog_option
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder to write the AsyncAPI 3.0 documents (and shared schemas) to.")
def export_asyncapi_command(catalog_path: str, out_dir: str) -> None:
    """Export the catalog as AsyncAPI 3.0 documents, one per source and per consumer."""
    files = export_asyncapi(load_catalog(catalog_path))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, document in files.items():
        text = (yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
                if name.endswith(".yaml") else orjson.dumps(
                    document, option=orjson.OPT_INDENT_2).decode())
        (out / name).write_text(text, encoding="utf-8")
    click.echo(f"wrote {len(files)} file(s) to {out}")


@catalog.command(name="import-asyncapi")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Catalog folder to write (created, or updated: files declaring the same "
                   "event types and consumers are replaced).")
@click.option("--detail-type-from", type=click.Choice(DETAIL_TYPE_FROM), default="name",
              show_default=True, help="Where a message's detail-type comes from when it has "
                                      "no x-eventbridge-detail-type.")
@click.option("--owner", default="", help="Team recorded as owner where a document names none.")
def import_asyncapi_command(paths: tuple[str, ...], out_dir: str, detail_type_from: str,
                            owner: str) -> None:
    """Build a catalog folder from AsyncAPI 3.0/2.x documents (YAML or JSON).

    Each document is first checked against the official AsyncAPI JSON Schemas. Files without
    an `asyncapi` field are taken as shared JSON Schemas, known by their file name. Messages
    that cannot be imported (Avro, RAML, Protobuf payloads, $refs to URLs) are skipped with a
    reason; the catalog is written only if it validates, and never empty.
    """
    documents: list[AsyncApiFile] = []
    schemas: dict[str | Path, Any] = {}
    invalid, validated = [], 0
    for path in paths:
        data = _read_yaml(path)
        if isinstance(data, dict) and "asyncapi" in data:
            documents.append(AsyncApiFile(data, Path(path)))
            result = check_document(data)
            validated += result.validated
            if not result.validated:
                click.echo(f"warning: {path}: {result.note}", err=True)
            invalid += [f"{path}: {line}" for line in result.errors]
        else:
            schemas[Path(path)] = data
    if invalid:
        for line in invalid:
            click.echo(f"error: {line}", err=True)
        click.echo(f"error: {len(invalid)} problem(s) against the AsyncAPI JSON Schemas; "
                   "nothing written", err=True)
        sys.exit(2)
    imported = import_asyncapi(documents, schemas, detail_type_from=detail_type_from,
                               owner=owner, read=_read_yaml)
    for line in imported.warnings:
        click.echo(f"warning: {line}", err=True)
    for line in imported.skipped:
        click.echo(f"skipped: {line}", err=True)
    catalog = imported.catalog
    if not catalog.event_types and not catalog.consumers:
        click.echo(f"error: nothing to import from {len(documents)} document(s) (no message "
                   "could be imported); nothing written", err=True)
        sys.exit(1)
    _write_import(catalog, out_dir)
    versions = sum(len(t.versions) for t in catalog.event_types)
    click.echo(f"imported {len(catalog.event_types)} event type(s) ({versions} version(s)), "
               f"{len(catalog.consumers)} consumer(s) into {out_dir}"
               + (f"; {len(imported.skipped)} message(s) skipped" if imported.skipped else "")
               + f"; {validated} of {len(documents)} document(s) validated against the "
                 "AsyncAPI JSON Schemas")


def _write_import(catalog: Catalog, out_dir: str) -> None:
    """Write an import atomically; an invalid result prints every problem and exits 1."""
    try:
        write_catalog(catalog, out_dir)
    except CatalogWriteError as error:
        for problem in error.problems:
            click.echo(f"error: {problem}", err=True)
        click.echo(f"error: {len(error.problems)} problem(s): the import would make an "
                   f"invalid catalog; {out_dir} is untouched", err=True)
        sys.exit(1)


@catalog.command(name="import-pact")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@catalog_option
@click.option("--team", default="", help="Team owning the consumer (default: its name).")
@click.option("--event-type", "event_types", multiple=True, metavar="DESCRIPTION=TYPE",
              help="The detail-type of the message with this description (repeatable); "
                   "wins over the message's metadata.")
def import_pact_command(paths: tuple[str, ...], catalog_path: str, team: str,
                        event_types: tuple[str, ...]) -> None:
    """Write the consumer contracts of Pact v2/v3/v4 message pacts into a catalog folder.

    Each consumer becomes consumers/<consumer id>.yaml; each message becomes the contract of
    its event type as Pact's matching rules mean it, replacing that event type's subscription
    (the consumer's other subscriptions, functions and rule targets are kept). The event type
    comes from --event-type, else the message metadata (detail-type, detailType, eventType,
    ...), else an EventBridge envelope in the body, else the description; each line says
    which. Messages that cannot be a JSON Schema contract are listed with the reason.
    """
    mapping = event_type_mapping(event_types)
    loaded = load_catalog(catalog_path)
    known = [t.detail_type for t in loaded.event_types]
    consumers: dict[str, Consumer] = {}
    described: set[str] = set()
    for path in paths:
        data = _read_yaml(path)
        if not isinstance(data, dict):
            raise InputError(f"{path}: expected a JSON object (a pact file)")
        try:
            result = import_pact(data, known, team, mapping)
        except InputError as error:
            raise InputError(f"{path}: {error}") from None
        consumer = result.consumer
        click.echo(f"{path}: Pact v{result.specification}, consumer {consumer.name}: "
                   f"{len(result.messages)} message(s) imported, {len(result.refused)} refused")
        for message in result.messages:
            described.add(message.description)
            click.echo(f"  {message.description!r} -> {message.detail_type} "
                       f"(event type from {message.type_from})")
            for note in message.notes:
                click.echo(f"    note: {note}")
        for reason in result.refused:
            click.echo(f"  refused: {reason}", err=True)
        if not result.messages:
            raise InputError(f"{path}: no message of the pact could be imported")
        unknown = next((m for m in result.messages if m.detail_type not in known), None)
        if unknown is not None:
            raise InputError(f"{path}: message {unknown.description!r} maps to "
                             f"{unknown.detail_type!r} (from {unknown.type_from}), which the "
                             "catalog lacks; give --event-type 'DESCRIPTION=TYPE' or a "
                             "detail-type in the message metadata")
        # one consumer's pacts with several providers make one consumer
        consumers[consumer.name] = keep_declared(consumer, consumers.get(consumer.name), "")
    unused = sorted(set(mapping) - described)
    if unused:
        raise InputError(f"--event-type: no imported message is described {unused[0]!r}")
    existing = {c.name: c for c in loaded.consumers}
    merged = [keep_declared(c, existing.get(c.name), team) for c in consumers.values()]
    for target in _write_consumers(merged, Path(catalog_path)):
        click.echo(f"wrote {target}")




def _write_consumers(consumers: list[Consumer], root: Path) -> list[Path]:
    """Write consumers/<name>.yaml files through the shared import writer: the catalog is
    rebuilt beside itself, checked, and only then moved into place (else left as it was)."""
    written = write_catalog(Catalog(consumers=tuple(consumers)), root)
    return [p for p in written if p.parent.name == "consumers"]


@catalog.command(name="import-schema-registry")
@click.option("--registry", required=True, metavar="NAME",
              help="The EventBridge Schema Registry to read (e.g. discovered-schemas).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Catalog folder to write the event types into.")
@click.option("--owner", default="", help="Team recorded as owner (default: the registry name).")
@aws_options
def import_schema_registry_command(registry: str, out_dir: str, owner: str,
                                   profile: str | None, region: str | None,
                                   endpoint_url: str | None) -> None:
    """Build catalog event types from an EventBridge Schema Registry, every version kept.

    Reads OpenApi3 (schema discovery) and JSONSchemaDraft4 content; the compatibility mode
    recorded is the strictest the registry's version history satisfies.
    """
    schemas, = aws_clients(aws_settings(profile, region, endpoint_url), "schemas")
    with aws_errors():
        imported = Catalog(event_types=tuple(import_schema_registry(schemas, registry, owner)))
    write_catalog(imported, out_dir)
    load_catalog(out_dir)  # what was written must be a valid catalog
    click.echo(f"imported {len(imported.event_types)} event type(s) from {registry} "
               f"into {out_dir}")


def _read_yaml(path: str | Path) -> Any:
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path} is not YAML/JSON: {str(exc).splitlines()[0]}") from None


def _print_changes(title: str, changes: list[Change]) -> None:
    click.echo(f"{title}:")
    if not changes:
        click.echo("  no differences")
    marks = {COMPATIBLE: "ok   ", INCOMPATIBLE: "BREAK", CANNOT_TELL: "?    "}
    for change in changes:
        click.echo(f"  {marks[change.verdict]} {change.path} {change.kind}: {change.reason}")


def _schema_arg(value: str, loaded: Catalog | None) -> tuple[Any, str | None]:
    if "@" in value and loaded is not None and not Path(value).exists():
        name, version = value.rsplit("@", 1)
        event_type = loaded.event_type(name)
        found = event_type.version(version) if event_type else None
        if found is None:
            raise InputError(f"{value}: no such event type/version in the catalog "
                             "(expected EventType@version)")
        return found.schema, event_type.compatibility if event_type else None
    path = Path(value)
    try:
        schema = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read schema {value}: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{value} is not JSON or YAML: {str(exc).splitlines()[0]}") from None
    problem = schema_problem(schema)
    if problem:
        raise InputError(f"{value} is not a JSON Schema: {problem}")
    return schema, None



@click.group()
def contracts() -> None:
    """Verify consumer contracts against schemas, examples and stored traffic."""


@contracts.command(name="verify")
@click.option("--consumer", default=None, help="Only this consumer's contracts.")
@catalog_option
@db_option
@click.option("--no-live", is_flag=True, help="Skip the check against stored events.")
@click.option("--sample", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Newest stored events checked per event type and version.")
@click.option("--junit", "junit_path", default=None, metavar="FILE",
              type=click.Path(dir_okay=False), help="Also write the results as JUnit XML.")
@output_options
def verify_command(consumer: str | None, catalog_path: str, db_url: str | None, no_live: bool,
                   sample: int, junit_path: str | None, output: str) -> None:
    """Check every contract (or one consumer's) and store the results; exit 1 on failure.

    For each subscribed event version: the producer's schema (can a valid event fail the
    contract?), the producer's examples, and the newest stored events of that version.
    """
    loaded = load_catalog(catalog_path)
    if consumer and not any(c.name == consumer for c in loaded.consumers):
        raise InputError(f"no consumer {consumer!r} in {catalog_path} (known: "
                         f"{', '.join(sorted(c.name for c in loaded.consumers))})")
    store = None if no_live and db_url is None else open_store(db_url)
    events = None if no_live or store is None else stored_event_source(store, sample)
    results = verify(loaded, consumer, events)
    if store is not None:
        store.write_contract_results([r.as_row() for r in results])
    if junit_path:
        write_junit(results, junit_path)
    failed = [r for r in results if not r.passed]
    rows = [r.as_row() | {"violations": list(r.violations), "summary": r.summary,
                          "status": r.status} for r in results]
    if output == "json":
        echo_json({"passed": not failed, "catalog_revision": loaded.revision, "results": rows})
    elif output != "table":
        emit_rows(output, rows,
                  ["consumer", "detail_type", "version", "check_kind", "passed", "status"])
    else:
        for result in results:
            status = result.status.upper()
            click.echo(f"{status} {result.consumer}: {result.name}{_counts(result)}")
            for line in result.explain().splitlines() if not result.passed else ():
                click.echo(f"     {line}")
        unchecked = sum(r.status == "not checked" for r in results)
        click.echo(f"{len(results) - len(failed) - unchecked} passed, {len(failed)} failed, "
                   f"{unchecked} not checked")
    if failed:
        sys.exit(1)


def _counts(result: ContractResult) -> str:
    if "checked" not in result.summary:
        return ""
    return f" ({result.summary['checked']} checked, {result.summary['failing']} failing)"




@contracts.command(name="ingest-junit")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--consumer", default=None,
              help="Consumer the results belong to (default: from the test suite names).")
@click.option("--revision", default="", help="Catalog revision the results were run against.")
@db_option
@json_option
def ingest_junit(path: str, consumer: str | None, revision: str, db_url: str | None,
                 as_json: bool) -> None:
    """Store contract results from a JUnit XML file produced by another pipeline."""
    results = read_junit(path, revision, int(time.time() * 1000), consumer)
    store = open_store(db_url)
    stored = store.write_contract_results([r.as_row() for r in results])
    failed = sum(not r.passed for r in results)
    if as_json:
        echo_json({"stored": stored, "failed": failed, "origin": f"junit:{Path(path).name}"})
    else:
        click.echo(f"stored {stored} result(s) from {path} ({failed} failed) in {store.url}")


