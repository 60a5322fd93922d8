"""JUnit XML for contract results: written for CI systems, read back from teams' pipelines.

Owns the mapping between `ContractResult`s and JUnit XML: one <testsuite> per consumer, one
<testcase> per (event type, version, check) named `OrderCreated v1 schema`, a <failure> with
the violations, <skipped> for a check that had nothing to check. Reading accepts JUnit XML
produced elsewhere (pytest, Jest, Maven Surefire): unknown test names become `junit` checks of
the suite's consumer.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from itertools import groupby
from pathlib import Path

from eventscope.contracts.checks import ContractResult
from eventscope.errors import InputError

MAX_JUNIT_BYTES = 50 * 1024 * 1024
# a detail-type is free-form (`EC2 Instance State-change Notification v1 live`)
_OUR_NAME = re.compile(r"^(?P<type>.+?)(?: v(?P<version>[\w.-]+))? "
                       r"(?P<check>schema|examples|live|junit)$", re.DOTALL)
_CLASS_PREFIX = "eventscope.contracts."


def to_junit_xml(results: Iterable[ContractResult]) -> bytes:
    """A JUnit XML document with one test suite per consumer."""
    ordered = sorted(results, key=lambda r: (r.consumer, r.detail_type, r.version, r.check_kind))
    root = ET.Element("testsuites", name="eventscope contracts")
    for consumer, group in groupby(ordered, key=lambda r: r.consumer):
        items = list(group)
        failures = sum(not r.passed for r in items)
        skipped = sum(r.status == "not checked" for r in items)
        suite = ET.SubElement(root, "testsuite", name=consumer, tests=str(len(items)),
                              failures=str(failures), errors="0", skipped=str(skipped))
        for result in items:
            case = ET.SubElement(suite, "testcase", classname=_CLASS_PREFIX + consumer,
                                 name=result.name)
            if not result.passed:
                first = result.violations[0]["message"] if result.violations else "failed"
                failure = ET.SubElement(case, "failure", message=first[:500],
                                        type="ContractViolation")
                failure.text = result.explain()
            elif result.status == "not checked":
                ET.SubElement(case, "skipped", message="not checked: nothing to check "
                              "(no stored event or example of this version)")
    root.set("tests", str(len(ordered)))
    root.set("failures", str(sum(not r.passed for r in ordered)))
    root.set("skipped", str(sum(r.status == "not checked" for r in ordered)))
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def write_junit(results: Iterable[ContractResult], path: str | Path) -> None:
    """Write the results as JUnit XML to `path`."""
    Path(path).write_bytes(to_junit_xml(results))


def read_junit(path: str | Path, revision: str = "", checked_ms: int = 0,
               consumer: str | None = None) -> list[ContractResult]:
    """Contract results from a JUnit XML file, ours or another tool's.

    `consumer` overrides the suite name as the consumer (for suites named after a project).
    Entities are not expanded by ElementTree, and the file size is capped.
    """
    file = Path(path)
    try:
        if file.stat().st_size > MAX_JUNIT_BYTES:
            raise InputError(f"{path}: larger than {MAX_JUNIT_BYTES // 2**20} MiB")
        root = ET.fromstring(file.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    except ET.ParseError as exc:
        raise InputError(f"{path} is not XML: {exc}") from None
    if root.tag not in ("testsuites", "testsuite"):
        raise InputError(f"{path} is not JUnit XML (root element <{root.tag}>)")
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    origin = f"junit:{file.name}"
    return [_result(suite, case, consumer, revision, checked_ms, origin)
            for suite in suites for case in suite.findall("testcase")]


def _result(suite: ET.Element, case: ET.Element, consumer: str | None, revision: str,
            checked_ms: int, origin: str) -> ContractResult:
    classname = case.get("classname", "")
    owner = consumer or (classname[len(_CLASS_PREFIX):] if classname.startswith(_CLASS_PREFIX)
                         else suite.get("name", "") or "unknown")
    name = case.get("name", "")
    match = _OUR_NAME.match(name)
    detail_type, version, check = ((match["type"], match["version"] or "", match["check"])
                                   if match else (name, "", "junit"))
    problems = [e for tag in ("failure", "error") for e in case.findall(tag)]
    violations = tuple({"path": "$", "message": (e.get("message") or e.text or tag).strip()[:2000],
                        "kind": e.tag}
                       for tag, e in ((p.tag, p) for p in problems))
    skipped = case.find("skipped") is not None
    summary = {"classname": classname, "time": case.get("time"), "skipped": skipped}
    return ContractResult(owner, detail_type, version, check, not problems, violations,
                          summary, checked_ms, revision, origin)
