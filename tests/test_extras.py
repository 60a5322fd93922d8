"""A command whose extra is missing says which extra to install, in one line, and exits 2.

The CLI runs in a subprocess whose import system refuses the extra's modules (a meta-path
finder inserted first), exactly as in an environment where the extra was never installed;
the clean virtual environments of tests/test_packaging.py check the same from a real wheel.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventscope.extras import EXTRA_OF_MODULE, MissingExtra, installed, missing_extra, require

ROOT = Path(__file__).parent.parent

# Runs `eventscope ARGS...` with the comma-separated top-level modules of argv[1] unimportable.
WITHOUT = """
import sys

class Refuse:
    def __init__(self, names):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Refuse(set(sys.argv[1].split(","))))
from eventscope.cli import main
sys.argv = ["eventscope", *sys.argv[2:]]
main()
"""
AWS = "boto3,botocore"
EVERY_EXTRA = ",".join(EXTRA_OF_MODULE)


def run_without(modules: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WITHOUT, modules, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def needs(command: str, extra: str) -> str:
    """The one line on stderr when COMMAND lacks EXTRA."""
    return (f"error: eventscope {command} needs the {extra} extra: "
            f'pip install "eventscope[{extra}]"\n')


def test_dashboard_without_streamlit_names_the_dashboard_extra(tmp_path: Path) -> None:
    result = run_without("streamlit", "dashboard", "--db", f"sqlite:///{tmp_path}/s.db",
                         cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, needs("dashboard", "dashboard"))


def test_aws_command_without_boto3_names_the_aws_extra(tmp_path: Path) -> None:
    """`tap install` imports the collectors (botocore) before it builds a client."""
    result = run_without(AWS, "tap", "install", "--bus", "shop-bus", "--region", "eu-west-1",
                         "--endpoint-url", "http://127.0.0.1:9", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, needs("tap", "aws"))


def test_collect_without_boto3_names_the_aws_extra(tmp_path: Path) -> None:
    result = run_without(AWS, "collect", "rules", "--bus", "shop-bus", "--region", "eu-west-1",
                         "--endpoint-url", "http://127.0.0.1:9", "--db", f"sqlite:///{tmp_path}/s.db",
                         cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, needs("collect", "aws"))


def test_postgresql_url_without_psycopg_names_the_postgres_extra(tmp_path: Path) -> None:
    result = run_without("psycopg", "stats", "--db", "postgresql://nobody@127.0.0.1:9/none",
                         cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, needs("stats", "postgres"))


def test_live_demo_without_moto_names_the_demo_extra(tmp_path: Path) -> None:
    result = run_without("moto", "demo", "--duration", "1", "--no-dashboard", "--db",
                         f"sqlite:///{tmp_path}/d.db", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (2, needs("demo", "demo"))
    assert not (tmp_path / "d.db").exists()  # refused before anything was started


def test_core_commands_run_without_any_extra(tmp_path: Path) -> None:
    """--help lists every command; demo --no-aws, ingest and check need no extra."""
    assert run_without(EVERY_EXTRA, "--help", cwd=tmp_path).returncode == 0
    made = run_without(EVERY_EXTRA, "demo", "--no-aws", "--out", "data", "--events", "200",
                       cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    db = f"sqlite:///{tmp_path}/s.db"
    ingested = run_without(EVERY_EXTRA, "ingest", "data/events.ndjson", "data/logs.ndjson",
                           "--db", db, cwd=tmp_path)
    assert ingested.returncode == 0, ingested.stderr
    checked = run_without(EVERY_EXTRA, "check", "--db", db, "--catalog",
                          str(ROOT / "eventscope" / "demo_catalog"), cwd=tmp_path)
    assert checked.returncode == 1 and "needs the" not in checked.stderr  # problems planted


def test_a_missing_core_module_stays_an_internal_error(tmp_path: Path) -> None:
    """No extra brings pandas: without it the installation is broken, exit 3."""
    result = run_without("pandas", "check", "--db", f"sqlite:///{tmp_path}/s.db", cwd=tmp_path)
    assert result.returncode == 3 and "internal error" in result.stderr


def test_require_passes_for_installed_modules() -> None:
    require("aws", "json", "sqlalchemy")  # no exception


def test_require_names_the_extra_and_the_module() -> None:
    with pytest.raises(MissingExtra) as raised:
        require("dashboard", "json", "eventscope_no_such_module", feature="the dashboard")
    assert (raised.value.extra, raised.value.module) == ("dashboard", "eventscope_no_such_module")
    assert str(raised.value) == ('the dashboard needs the dashboard extra: '
                                 'pip install "eventscope[dashboard]"')


def test_installed_is_false_below_a_missing_package() -> None:
    assert not installed("eventscope_no_such_module.sub")


@given(st.sampled_from(sorted(EXTRA_OF_MODULE)), st.lists(st.from_regex(r"[a-z_]{1,8}",
                                                                        fullmatch=True)))
def test_an_extras_module_or_any_submodule_maps_to_its_extra(top: str, parts: list[str]) -> None:
    found = missing_extra(ModuleNotFoundError("x", name=".".join([top, *parts])))
    assert found is not None and found.extra == EXTRA_OF_MODULE[top]


@given(st.from_regex(r"[a-z_][a-z0-9_]{0,12}(\.[a-z_]{1,8}){0,2}", fullmatch=True))
def test_other_modules_map_to_no_extra(name: str) -> None:
    expected = EXTRA_OF_MODULE.get(name.partition(".")[0])
    found = missing_extra(ModuleNotFoundError("x", name=name))
    assert (found.extra if found else None) == expected


def test_every_extra_named_in_code_is_declared_in_pyproject() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert set(EXTRA_OF_MODULE.values()) <= set(declared)
    for module, extra in EXTRA_OF_MODULE.items():
        if module != "flask":  # flask comes with moto[server], not named directly
            assert any(r.lower().startswith(module) for r in declared[extra]), (module, extra)
