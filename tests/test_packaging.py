"""eventscope as a team installs it: the wheel, in fresh virtual environments, outside the repo.

Builds the wheel once from the package sources, checks what it holds and declares, then
installs it into two fresh virtual environments (`python -m venv`, packages from the index
through pip's cache, installed by this run's pip): the core alone, and with every extra
(`[all]`, the union of `aws`, `dashboard`, `postgres` and `demo`). In each it runs the CLI from a
directory outside the repository, an unrelated tiny pytest project (the plugin installed, nothing
changes), and a project that runs a catalog's contracts through the plugin. The core environment
also shows each missing extra's one-line message.

The wheel and both environments are built once per run (shared by xdist workers under a
file lock), the two installs side by side; the whole module takes about two minutes on two
shared cores. It needs the package index: under CI=true it always runs; elsewhere it skips,
saying so, only when the index cannot be reached.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from eventscope.catalog.loader import load_catalog
from eventscope.contracts.checks import verify

ROOT = Path(__file__).parent.parent
SOURCES = ("pyproject.toml", "README.md", "eventscope", "collectors", "dashboard")
DEMO_CATALOG = ROOT / "eventscope" / "demo_catalog"
BROKEN_CONTRACTS = Path(__file__).parent / "data" / "catalog" / "contracts"
INSTALL_TIMEOUT_S = 900
PYTEST = f"pytest=={pytest.__version__}"  # the projects' own test runner, as in this run


@dataclass(frozen=True)
class Env:
    """A fresh virtual environment holding the wheel (and `extras`) and pytest."""

    path: Path
    extras: str

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    @property
    def eventscope(self) -> str:
        return str(self.path / "bin" / "eventscope")

    def run(self, *args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items()  # nothing of this run leaks into theirs
               if not k.startswith(("PYTEST_", "EVENTSCOPE_", "VIRTUAL_ENV", "PYTHON"))}
        env["PATH"] = f"{self.path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)


# Every environment the wheel is installed into: the core alone, each extra alone, all of them.
ENVS = {"core": "", "aws": "[aws]", "dashboard": "[dashboard]", "postgres": "[postgres]",
        "all": "[all]"}


@dataclass(frozen=True)
class Built:
    wheel: Path
    envs: dict[str, Env]

    @property
    def core(self) -> Env:
        return self.envs["core"]

    @property
    def full(self) -> Env:
        return self.envs["all"]


def _envs(root: Path) -> dict[str, Env]:
    return {name: Env(root / name, extras) for name, extras in ENVS.items()}


def _index_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError:
        return False
    return True


def _build(root: Path) -> Built:
    """The wheel from a copy of the package sources, and both environments, side by side."""
    for left in ("source", "dist", *ENVS):  # from a build that failed half-way
        shutil.rmtree(root / left, ignore_errors=True)
    source = root / "source"
    for name in SOURCES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.pyc", "*.egg-info"))
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w",
                    str(root / "dist"), str(source)], check=True, capture_output=True,
                   timeout=INSTALL_TIMEOUT_S)
    wheel, = (root / "dist").glob("eventscope-*.whl")
    envs = _envs(root)
    installs = []
    for env in envs.values():
        # No pip of its own: this run's pip installs into it (`--python`), a recent pip
        # resolving more than twice as fast as the one `venv` bundles.
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env.path)],
                       check=True, timeout=120)
        installs.append(subprocess.Popen(
            [sys.executable, "-m", "pip", "--python", env.python, "install", "--quiet",
             "--no-compile", "--disable-pip-version-check", f"{wheel}{env.extras}", PYTEST],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for env, install in zip(envs.values(), installs):
        output, _ = install.communicate(timeout=INSTALL_TIMEOUT_S)
        if install.returncode != 0:
            raise RuntimeError(f"installing {wheel.name}{env.extras} failed:\n{output[-3000:]}")
    return Built(wheel, envs)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """Built once per run: xdist workers share their base directory's parent."""
    if os.environ.get("CI") != "true" and not _index_reachable():
        pytest.skip("not checked: the package index (pypi.org) is not reachable")
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "packaging"
    root.mkdir(exist_ok=True)
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = root / "built.json"
        if not done.exists():
            began = time.monotonic()
            result = _build(root)
            done.write_text(json.dumps({"seconds": round(time.monotonic() - began, 1)}))
        else:
            wheel, = (root / "dist").glob("eventscope-*.whl")
            result = Built(wheel, _envs(root))
    yield result


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working directory outside the repository."""
    assert ROOT not in tmp_path.parents
    return tmp_path


# ------------------------------------------------------------------------- the wheel itself

def _names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def _dist_info(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        info, = {n.split("/")[0] for n in archive.namelist() if n.endswith(".dist-info/RECORD")}
        return archive.read(f"{info}/{name}").decode()


def test_wheel_installs_only_the_eventscope_package(built: Built) -> None:
    tops = {name.split("/")[0] for name in _names(built.wheel)}
    assert tops == {"eventscope", f"{built.wheel.name.split('-py')[0]}.dist-info"}
    assert _dist_info(built.wheel, "top_level.txt").split() == ["eventscope"]


def test_wheel_holds_demo_catalog_schemas_and_dashboard_pages(built: Built) -> None:
    names = set(_names(built.wheel))
    catalog = {f"eventscope/demo_catalog/{p.relative_to(DEMO_CATALOG).as_posix()}"
               for p in DEMO_CATALOG.rglob("*") if p.is_file()}
    pages = {f"eventscope/dashboard/app_pages/{p.name}"
             for p in (ROOT / "dashboard" / "app_pages").glob("*.py")}
    schemas = {f"eventscope/catalog/schemas/{p.name}"
               for p in (ROOT / "eventscope" / "catalog" / "schemas").glob("*.json")}
    assert len(catalog) > 20 and pages and schemas
    assert catalog | pages | schemas | {"eventscope/dashboard/app.py"} <= names


def test_wheel_declares_core_dependencies_and_each_extra(built: Built) -> None:
    metadata = _dist_info(built.wheel, "METADATA").splitlines()
    requires = [line.split(": ", 1)[1] for line in metadata if line.startswith("Requires-Dist:")]
    extras = {line.split(": ", 1)[1] for line in metadata if line.startswith("Provides-Extra:")}
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert extras == set(declared["optional-dependencies"]) >= {"aws", "dashboard", "postgres",
                                                                 "all"}
    core = [r for r in requires if "extra ==" not in r]
    assert len(core) == len(declared["dependencies"]) and all(">=" in r for r in core)
    for extra in extras:
        assert any(r.endswith(f'extra == "{extra}"') for r in requires), extra


def test_wheel_registers_the_command_and_the_pytest_plugin(built: Built) -> None:
    entry_points = _dist_info(built.wheel, "entry_points.txt")
    assert "eventscope = eventscope.cli:run" in entry_points
    assert ("eventscope.contracts.pytest_plugin = eventscope.contracts.pytest_plugin"
            in entry_points)


# ------------------------------------------------------------------- the core environment

def test_core_install_has_no_extra_stack(built: Built, outside: Path) -> None:
    code = ("import importlib.util as u; print([m for m in ('boto3', 'streamlit', 'plotly', "
            "'psycopg', 'moto') if u.find_spec(m)])")
    assert built.core.run(built.core.python, "-c", code, cwd=outside).stdout.strip() == "[]"


@pytest.mark.parametrize("which", ["core", "full"])
def test_help_lists_every_command(built: Built, outside: Path, which: str) -> None:
    env = getattr(built, which)
    result = env.run(env.eventscope, "--help", cwd=outside)
    assert result.returncode == 0, result.stderr
    assert all(f"  {c} " in result.stdout for c in ("ingest", "check", "dashboard", "demo"))


def test_core_demo_without_aws_then_ingest_then_check(built: Built, outside: Path) -> None:
    """The demo's files, ingested, checked against the installed demo catalog: the planted
    problems are found (exit 1)."""
    env = built.core
    made = env.run(env.eventscope, "demo", "--no-aws", "--out", "data", "--events", "300",
                   "--json", cwd=outside)
    assert made.returncode == 0, made.stderr
    catalog = Path(json.loads(made.stdout)["catalog"])
    assert env.path in catalog.parents and (catalog / "catalog.yaml").is_file()
    db = f"sqlite:///{outside / 'demo.db'}"
    ingested = env.run(env.eventscope, "ingest", "data/events.ndjson", "data/logs.ndjson",
                       "--db", db, cwd=outside)
    assert ingested.returncode == 0, ingested.stderr
    checked = env.run(env.eventscope, "check", "--db", db, "--catalog", str(catalog), "--json",
                      cwd=outside)
    assert checked.returncode == 1, checked.stderr
    kinds = {f["kind"] for f in json.loads(checked.stdout)["findings"]}
    assert {"missing_subscription", "deprecated_in_use", "pii_exposure"} <= kinds


@pytest.mark.parametrize(("args", "command", "extra"), [
    (["dashboard", "--db", "sqlite:///x.db"], "dashboard", "dashboard"),
    (["tap", "install", "--bus", "b", "--region", "eu-west-1", "--endpoint-url",
      "http://127.0.0.1:9"], "tap", "aws"),
    (["stats", "--db", "postgresql://nobody@127.0.0.1:9/none"], "stats", "postgres"),
    (["demo", "--duration", "1", "--no-dashboard", "--db", "sqlite:///d.db"], "demo", "demo"),
])
def test_core_names_the_missing_extra(built: Built, outside: Path, args: list[str],
                                      command: str, extra: str) -> None:
    result = built.core.run(built.core.eventscope, *args, cwd=outside)
    assert (result.returncode, result.stderr) == (
        2, f'error: eventscope {command} needs the {extra} extra: '
           f'pip install "eventscope[{extra}]"\n')


# ------------------------------------------------------- each extra alone, in its own env

# Per extra: a command it enables, and (in the same env) one whose extra is still missing.
MISSING = {
    "dashboard": (["dashboard", "--db", "sqlite:///x.db"], "dashboard"),
    "aws": (["tap", "install", "--bus", "b", "--region", "eu-west-1", "--endpoint-url",
             "http://127.0.0.1:9"], "tap"),
    "postgres": (["stats", "--db", "postgresql://nobody@127.0.0.1:9/none"], "stats"),
}


@pytest.mark.parametrize("extra", ["aws", "dashboard", "postgres"])
def test_each_extra_alone_enables_its_commands_and_names_the_others(
        built: Built, outside: Path, extra: str) -> None:
    """In an env with one extra: that extra's command gets past the extra check (it fails
    later, on the unreachable endpoint or database, with an `error:` line of its own), the
    other extras' commands still name their extra, and the core commands work."""
    env = built.envs[extra]
    for other, (args, command) in MISSING.items():
        if other == extra == "dashboard":
            continue  # it would start serving: the [all] tests check it answers
        result = env.run(env.eventscope, *args, cwd=outside, timeout=120)
        named = (f'error: eventscope {command} needs the {other} extra: '
                 f'pip install "eventscope[{other}]"\n')
        if other == extra:
            assert result.returncode == 2 and result.stderr.startswith("error:"), result.stderr
            assert result.stderr != named and "Traceback" not in result.stderr
        elif other != extra:
            assert (result.returncode, result.stderr) == (2, named)
    if extra == "dashboard":
        code = "import eventscope.dashboard.data, eventscope.dashboard.figures; print('ok')"
        shown = env.run(env.python, "-c", code, cwd=outside)
        assert (shown.returncode, shown.stdout) == (0, "ok\n"), shown.stderr[-2000:]
    made = env.run(env.eventscope, "demo", "--no-aws", "--out", "data", "--events", "50",
                   cwd=outside)
    assert made.returncode == 0, made.stderr


# --------------------------------------------------------------- pytest projects, both envs

TINY_TEST = """\
import sys

HEAVY = ("jsonschema", "sqlalchemy", "pandas", "yaml", "click", "boto3", "streamlit",
         "eventscope.catalog", "eventscope.store")


def test_adds():
    assert 1 + 1 == 2


def test_nothing_heavy_was_loaded_for_us():
    assert "eventscope.contracts.pytest_plugin" in sys.modules  # the entry point loaded it
    assert [m for m in sys.modules if m.split(".")[0] in HEAVY or m in HEAVY] == []
"""


@pytest.mark.parametrize("which", ["core", "full"])
def test_unrelated_project_passes_unchanged(built: Built, outside: Path, which: str) -> None:
    env = getattr(built, which)
    (outside / "test_tiny.py").write_text(TINY_TEST)
    result = env.run(env.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=outside)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_project_runs_a_catalogs_contracts_through_the_plugin(built: Built,
                                                               outside: Path) -> None:
    """Options in the project's own pytest.ini; every contract of the catalog is one test."""
    shutil.copytree(DEMO_CATALOG, outside / "catalog")
    (outside / "pytest.ini").write_text("[pytest]\naddopts = --eventscope-catalog=catalog\n")
    result = built.core.run(built.core.python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            cwd=outside)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(verify(load_catalog(DEMO_CATALOG)))} passed" in result.stdout


def test_project_sees_a_broken_contract_fail(built: Built, outside: Path) -> None:
    shutil.copytree(BROKEN_CONTRACTS, outside / "catalog")
    result = built.core.run(built.core.python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "--eventscope-catalog=catalog", cwd=outside)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "contract of crm-notifier broken for OrderCreated v1 schema" in result.stdout


# ---------------------------------------------------------------- the [all] environment

def test_all_brings_every_extras_modules(built: Built, outside: Path) -> None:
    code = ("import boto3, streamlit, plotly, psycopg, moto, flask; "
            "from eventscope.store import create_engine; "
            "print(create_engine('postgresql://nobody@127.0.0.1:9/none').dialect.driver)")
    result = built.full.run(built.full.python, "-c", code, cwd=outside)
    assert (result.returncode, result.stdout) == (0, "psycopg\n"), result.stderr


def test_all_runs_the_live_demo_on_the_emulator(built: Built, outside: Path) -> None:
    """A short live demo (moto, the collectors, the installed catalog's contracts)."""
    env = built.full
    result = env.run(env.eventscope, "demo", "--backfill", "0", "--duration", "2", "--rate",
                     "10", "--no-dashboard", "--db", f"sqlite:///{outside / 'd.db'}", "--json",
                     cwd=outside, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["collected"]["events"] > 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_all_serves_the_dashboard(built: Built, outside: Path) -> None:
    """`eventscope dashboard` from the wheel answers Streamlit's health check."""
    env, port = built.full, _free_port()
    variables = {k: v for k, v in os.environ.items() if not k.startswith("EVENTSCOPE_")}
    server = subprocess.Popen(
        [env.eventscope, "dashboard", "--db", f"sqlite:///{outside / 'd.db'}", "--port",
         str(port), "--catalog", str(DEMO_CATALOG)], cwd=outside, env=variables,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        answer = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None and answer != "ok":
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                            timeout=2) as response:
                    answer = response.read().decode()
            except OSError:
                time.sleep(0.3)
        assert answer == "ok", server.stderr.read() if server.poll() is not None else "no answer"
    finally:
        server.terminate()
        server.wait(timeout=30)
