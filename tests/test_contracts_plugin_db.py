"""The pytest plugin's `--eventscope-db`: the `live` contract check reads stored events
through the read model (`read.stored_event_source`, the reader `contracts verify` uses)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

# Imported here so numpy is loaded before pytester's in-process runs: they drop the modules a
# run imports, and numpy cannot be imported twice in one process.
import eventscope.findings.read  # noqa: F401
from eventscope.records import BusEvent
from eventscope.store import open_store

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).parent.parent / "eventscope" / "demo_catalog"
PLUGIN = ["-p", "eventscope.contracts.pytest_plugin", f"--eventscope-catalog={EXAMPLE}",
          "--eventscope-consumer=warranty-handler"]


def _store(tmp_path: Path, detail: dict) -> str:
    url = f"sqlite:///{tmp_path / 'live.db'}"
    store = open_store(url)
    store.write_batch([BusEvent(id="ev-1", source="com.shop.orders", detail_type="OrderCreated",
                                time_ms=1_714_550_400_000, detail=orjson.dumps(detail).decode(),
                                size_bytes=64, version="1", correlation_key="o-1")])
    store.engine.dispose()
    return url


def test_a_stored_event_breaking_the_contract_fails_the_live_test(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    """warranty-handler needs `items`; a stored OrderCreated v1 without them fails `live`."""
    url = _store(tmp_path, {"orderId": "o-1", "version": "1"})
    result = pytester.runpytest(*PLUGIN, f"--eventscope-db={url}", "-k", "live")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*contract of warranty-handler broken for OrderCreated v1 live*"])


def test_a_stored_event_keeping_the_contract_passes_the_live_test(
        pytester: pytest.Pytester, tmp_path: Path) -> None:
    url = _store(tmp_path, {"orderId": "o-1", "version": "1", "items": [{"sku": "A-1"}]})
    pytester.runpytest(*PLUGIN, f"--eventscope-db={url}", "-k", "live").assert_outcomes(passed=1)


def test_a_missing_store_is_a_usage_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    result = pytester.runpytest(*PLUGIN, f"--eventscope-db=sqlite:///{tmp_path / 'none.db'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*eventscope: no store at*"])
