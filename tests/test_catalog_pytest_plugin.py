"""The contracts pytest plugin, run in a separate pytest session with `pytester`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from eventscope.catalog.loader import load_catalog
from eventscope.contracts.checks import verify

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "eventscope" / "demo_catalog"
CONTRACTS = Path(__file__).parent / "data" / "catalog" / "contracts"
PLUGIN = ["-p", "eventscope.contracts.pytest_plugin"]


def test_each_contract_check_becomes_one_passing_test(pytester: pytest.Pytester):
    """The example catalog yields one test per (consumer, event, version, check), all pass."""
    result = pytester.runpytest(*PLUGIN, f"--eventscope-catalog={EXAMPLE}", "-q")
    result.assert_outcomes(passed=len(verify(load_catalog(EXAMPLE))))


def test_test_ids_name_consumer_event_version_and_check(pytester: pytest.Pytester):
    """Collected ids read eventscope::<consumer>::<Event> v<version> <check>."""
    result = pytester.runpytest(*PLUGIN, f"--eventscope-catalog={EXAMPLE}",
                                "--eventscope-consumer=warranty-handler", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*eventscope::warranty-handler::OrderCreated v1 schema",
                                 "*eventscope::warranty-handler::OrderCreated v1 examples"])


def test_broken_contract_fails_with_a_readable_message(pytester: pytest.Pytester):
    """A broken contract fails its test with the violations and their JSON paths."""
    result = pytester.runpytest(*PLUGIN, f"--eventscope-catalog={CONTRACTS}")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "*contract of crm-notifier broken for OrderCreated v1 schema*",
        "*$.customer.email: `customer.email` became required in the contract schema*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_plugin_is_inert_without_the_option(pytester: pytest.Pytester):
    """Without --eventscope-catalog, a suite runs exactly its own tests."""
    pytester.makepyfile("def test_one():\n    assert True\n")
    pytester.runpytest(*PLUGIN).assert_outcomes(passed=1)


def test_bad_catalog_is_a_usage_error(pytester: pytest.Pytester, tmp_path: Path):
    """A missing catalog folder stops the run with a one-line usage error."""
    result = pytester.runpytest(*PLUGIN, f"--eventscope-catalog={tmp_path / 'none'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*eventscope: catalog*expected a catalog folder*"])


def test_plugin_is_registered_as_a_pytest11_entry_point():
    """pyproject registers the plugin under its module name, so -p never loads it twice."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["pytest11"] == {
        "eventscope.contracts.pytest_plugin": "eventscope.contracts.pytest_plugin"}


# What a team's unrelated test run must not pay for because eventscope is installed.
HEAVY = ("jsonschema", "jsonschema_rs", "referencing", "sqlalchemy", "pandas", "networkx",
         "yaml", "orjson", "click", "boto3", "streamlit", "eventscope.catalog",
         "eventscope.contracts.checks", "eventscope.store", "eventscope.findings")


def heavy_in(modules: list[str]) -> list[str]:
    """The HEAVY modules (or their submodules) among MODULES."""
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    """A fresh interpreter importing the plugin holds none of the catalog's or store's stacks."""
    code = ("import json, sys; import eventscope.contracts.pytest_plugin; "
            "print(json.dumps(sorted(sys.modules)))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                       text=True, check=True, timeout=60).stdout)
    assert "eventscope.contracts.pytest_plugin" in loaded
    assert heavy_in(loaded) == []


def test_an_unrelated_project_runs_unchanged_with_the_plugin(tmp_path: Path) -> None:
    """pytest on a tiny project, plugin loaded: its test passes, and during the run none of
    the heavy modules was imported (the project's own test looks)."""
    (tmp_path / "test_tiny.py").write_text(
        "import sys\n\n"
        f"HEAVY = {HEAVY!r}\n\n"
        "def test_adds():\n    assert 1 + 1 == 2\n\n"
        "def test_plugin_loaded_light():\n"
        "    assert 'eventscope.contracts.pytest_plugin' in sys.modules\n"
        "    assert [m for m in sys.modules if any(m == h or m.startswith(h + '.')"
        " for h in HEAVY)] == []\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "COV_"))}  # this run's own pytest settings stay here
    result = subprocess.run([sys.executable, "-m", "pytest", *PLUGIN, "-q", "-p",
                             "no:cacheprovider", "test_tiny.py"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
