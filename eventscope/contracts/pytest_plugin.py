"""A pytest plugin running a catalog's consumer contracts inside a team's own test suite.

`pytest --eventscope-catalog PATH` adds one test per (consumer, event type, version, check),
with ids like `eventscope::warranty-handler::OrderCreated v1 schema`, each failing with the
violations and their JSON paths. `--eventscope-consumer NAME` keeps one consumer's contracts;
`--eventscope-db URL` adds the `live` check against stored events. Without
`--eventscope-catalog` the plugin does nothing. Registered through the `pytest11` entry point,
or explicitly with `-p eventscope.contracts.pytest_plugin`.

Installed, it is loaded into every pytest run of the environment, so loading it imports
nothing but pytest and `eventscope.errors`: the catalog, the checks and the store (jsonschema,
SQLAlchemy, pandas ...) are imported only once `--eventscope-catalog` is given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from eventscope.errors import EventscopeError

if TYPE_CHECKING:
    from eventscope.contracts.checks import ContractResult

LIVE_SAMPLE = 1000  # newest stored events checked per type and version, as `contracts verify`


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("eventscope", "eventscope consumer contracts")
    group.addoption("--eventscope-catalog", metavar="PATH", default=None,
                    help="Run the consumer contracts of this catalog folder as tests.")
    group.addoption("--eventscope-consumer", metavar="NAME", default=None,
                    help="Only this consumer's contracts.")
    group.addoption("--eventscope-db", metavar="URL", default=None,
                    help="Also check contracts against events stored at this URL.")


class ContractViolation(AssertionError):
    """A failed contract check; its message lists each violation with its JSON path."""


class ContractItem(pytest.Item):
    """One contract check as a test."""

    def __init__(self, *, result: ContractResult, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result = result

    def runtest(self) -> None:
        if not self.result.passed:
            raise ContractViolation(self.result.explain())
        if self.result.status == "not checked":
            pytest.skip("not checked: no stored event or example of this version")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, ContractViolation):
            r = self.result
            return (f"contract of {r.consumer} broken for {r.name} "
                    f"(catalog revision {r.catalog_revision}):\n{excinfo.value}")
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return f"eventscope contract {self.result.consumer}", None, self.name


class ContractCollector(pytest.Collector):
    """The contracts of one consumer, as a node so ids read consumer::check."""

    def __init__(self, *, results: list[ContractResult], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results = results

    def collect(self) -> list[pytest.Item]:
        return [ContractItem.from_parent(self, name=r.name, result=r) for r in self.results]


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    path = config.getoption("--eventscope-catalog")
    if not path:
        return
    try:
        results = _results(path, config.getoption("--eventscope-consumer"),
                           config.getoption("--eventscope-db"))
    except EventscopeError as error:
        raise pytest.UsageError(f"eventscope: {error}") from None
    by_consumer: dict[str, list[ContractResult]] = {}
    for result in results:
        by_consumer.setdefault(result.consumer, []).append(result)
    for consumer, group in by_consumer.items():
        collector = ContractCollector.from_parent(session, name=f"eventscope::{consumer}",
                                                  results=group)
        items.extend(collector.collect())


def _results(path: str, consumer: str | None, db_url: str | None) -> list[ContractResult]:
    from eventscope.catalog.loader import load_catalog
    from eventscope.contracts.checks import verify

    catalog = load_catalog(path)
    if consumer and not any(c.name == consumer for c in catalog.consumers):
        raise EventscopeError(f"no consumer {consumer!r} in {path}")
    events = None
    if db_url:
        from eventscope.findings.read import stored_event_source  # the CLI's reader too
        from eventscope.store import open_store
        events = stored_event_source(open_store(db_url, must_exist=True), LIVE_SAMPLE)
    return verify(catalog, consumer, events)
