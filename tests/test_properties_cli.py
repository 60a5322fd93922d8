"""Every store-reading CLI command with `--json` on any store shape (tests/store_shapes.py), on
SQLite and PostgreSQL: no traceback, exit 0 or 1 (never a usage or internal error for a valid
store), and the output is one JSON document."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from eventscope.cli import main
from eventscope.findings.frames import FAILED
from eventscope.store import Store, open_store
from tests.store_shapes import (FUNCTIONS, KINDS, ORDERS, WINDOW, EngineTracker, StoreShape,
                                no_cancellation, store_shapes, write)

ENV = {"EVENTSCOPE_DB": None, "EVENTSCOPE_CATALOG": None, "EVENTSCOPE_SNS_TOPIC": None,
       "EVENTSCOPE_WEBHOOK": None}
SINCE, UNTIL = (datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()
                for ms in WINDOW)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.engine.dispose()



def commands(shape: StoreShape, query: str, consumer: str, detail_type: str) -> list[list[str]]:
    """Every command that reads the store, with `--json` and the options that change its path
    (a window, minute and sub-minute buckets, a selection); the catalog ones with a catalog."""
    found = [
        ["stats"], ["graph"], ["failures"], ["failures", "--since", SINCE, "--until", UNTIL],
        ["failures", "--bucket", "5m"], ["failures", "--bucket", "30s", "--since", SINCE],
        ["failures", "--consumer", consumer, "--type", detail_type],
        ["lifecycle", query], ["undocumented"], ["subscriptions"], ["duplicates", "--resends"],
        ["latency"], ["latency", "--since", SINCE, "--until", UNTIL], ["check"],
    ]
    if shape.catalog is not None:
        found += [["catalog", "conformance"], ["contracts", "verify"]]
    return found


def invoke(store: Store, engines: EngineTracker, shape: StoreShape, args: list[str]) -> Result:
    """One command on the store, the catalog (if any) given as $EVENTSCOPE_CATALOG."""
    env = {**ENV, "EVENTSCOPE_CATALOG": None if shape.catalog is None else str(shape.catalog)}
    url = store.engine.url.render_as_string(hide_password=False)
    try:
        return CliRunner().invoke(main, [*args, "--db", url, "--json"], env=env)
    finally:
        engines.dispose()


def gate_failed(document: Any) -> bool:
    """Whether `check`'s document holds a finding at or above the default `fail_on` (error)."""
    return any(f["severity"] == "error" for f in document["findings"])


@settings(max_examples=7, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(shape=store_shapes(max_events=8, max_invocations=10),
       query=st.sampled_from([o for o in ORDERS if o] + ["e0", "zzz"]),
       consumer=st.sampled_from(FUNCTIONS), detail_type=st.sampled_from([k for _, k in KINDS]))
@example(shape=StoreShape(), query="ord-1", consumer="billing-fn", detail_type="OrderCreated")
@example(shape=no_cancellation(), query="ord-1", consumer="warranty-handler",
         detail_type="OrderCreated")
def test_every_command_answers_json_on_any_store_shape(
        store: Store, engines: EngineTracker, shape: StoreShape, query: str, consumer: str,
        detail_type: str) -> None:
    """No command raises; each exits 0 or 1 and prints one JSON document."""
    write(store, shape)
    for args in commands(shape, query, consumer, detail_type):
        result = invoke(store, engines, shape, args)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args, result.exception, result.stderr)
        assert result.stderr == "" or not result.stderr.startswith("Traceback"), args
        try:
            document = orjson.loads(result.stdout)
        except orjson.JSONDecodeError:
            pytest.fail(f"{args}: not one JSON document: {result.stdout[:200]!r} "
                        f"{result.stderr[:200]!r}")
        assert result.exit_code in (0, 1), (args, result.exit_code, result.stderr)
        if args[0] == "check":  # 1 exactly when a finding is at or above `fail_on` (error)
            assert result.exit_code == int(gate_failed(document)), document


@settings(max_examples=12, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(shape=store_shapes(max_events=8, max_invocations=10, catalog=False))
def test_failures_json_counts_equal_what_was_written(store: Store, engines: EngineTracker,
                                                     shape: StoreShape) -> None:
    """`failures --json`: the invocations and failed invocations are the rows written."""
    write(store, shape)
    document = orjson.loads(invoke(store, engines, shape, ["failures"]).stdout)
    rates = document["rates"]
    assert sum(r["invocations"] for r in rates) == len(shape.invocations)
    assert sum(r["failed"] for r in rates) == sum(i.outcome in FAILED for i in shape.invocations)
    stats = orjson.loads(invoke(store, engines, shape, ["stats"]).stdout)
    assert (stats["events"], stats["invocations"]) == (len(shape.events), len(shape.invocations))


PANDAS_COMMANDS = [["graph"], ["failures"], ["failures", "--since", SINCE, "--until", UNTIL],
                   ["subscriptions"], ["duplicates", "--resends"], ["latency"], ["check"],
                   ["undocumented"]]


@settings(max_examples=6, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(shape=store_shapes(max_events=8, max_invocations=10))
@example(shape=no_cancellation())
def test_findings_answer_alike_whatever_backs_pandas_strings(
        store: Store, engines: EngineTracker, shape: StoreShape) -> None:
    """A command process runs pandas without pyarrow (`cli.lean_process`), so its strings
    are Python-backed; this process's are pyarrow-backed. On any store shape (odd types and
    sources, missing keys and versions, unknown functions), every findings command gives the
    same JSON both ways."""
    import pandas as pd
    pytest.importorskip("pyarrow")
    write(store, shape)
    for args in PANDAS_COMMANDS:
        arrow = invoke(store, engines, shape, args)
        with pd.option_context("mode.string_storage", "python"):
            plain = invoke(store, engines, shape, args)
        assert (plain.exit_code, orjson.loads(plain.stdout)) == \
            (arrow.exit_code, orjson.loads(arrow.stdout)), args
