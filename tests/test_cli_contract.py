"""The exit-status contract of every command (README "Exit status"):

0 ok; 1 a check or gate found problems; 2 a usage or input error, a user's mistake printed as
one line `error: ...` without a traceback; 3 an internal error, one line naming a log file
that holds the traceback.

Every command and subcommand is enumerated from the CLI itself, so a new command without
an input-error case here fails `test_every_command_has_an_input_error_case`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import orjson
import pytest
from click.testing import CliRunner, Result

from eventscope.cli import main
from eventscope.store import open_store
from tests.conftest import DATA
from tests.findings_scenario import bus_events, invocations

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "eventscope" / "demo_catalog"
BROKEN_CATALOG = DATA / "catalog" / "broken"
CONTRACTS = DATA / "catalog" / "contracts"
MISSING = "/no/such/eventscope-path"


def _leaves(group: click.Group, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...],
                                                                        click.Command]:
    """Every command reachable from GROUP, groups included, by its words."""
    found: dict[tuple[str, ...], click.Command] = {}
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None
        found[(*prefix, name)] = command
        if isinstance(command, click.Group):
            found.update(_leaves(command, (*prefix, name)))
    return found


COMMANDS = _leaves(main)
LEAVES = {words: c for words, c in COMMANDS.items() if not isinstance(c, click.Group)}


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


def _filled(url: str) -> str:
    store = open_store(url)
    store.write_batch(bus_events(), invocations())
    store.engine.dispose()
    return url


def assert_one_line_error(result: Result, starts: str = "error: ") -> None:
    """Exit 2, a single `error: ...` line on stderr, no traceback anywhere."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.stderr.startswith(starts), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output


def assert_usage_error(result: Result) -> None:
    """Exit 2 with Click's usage message (Usage:, Error:) and no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Usage:" in result.stderr and "Error:" in result.stderr, result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("words", sorted(COMMANDS), ids=" ".join)
def test_help_exits_0(words: tuple[str, ...]) -> None:
    result = run(*words, "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage:")


@pytest.mark.parametrize("words", sorted(COMMANDS), ids=" ".join)
def test_a_bogus_option_is_a_usage_error(words: tuple[str, ...]) -> None:
    result = run(*words, "--no-such-option")
    assert_usage_error(result)
    assert "No such option '--no-such-option'" in result.stderr


def test_a_bogus_command_is_a_usage_error() -> None:
    assert_usage_error(run("no-such-command"))
    assert_usage_error(run("catalog", "no-such-command"))


# One input error per command: ("error", args) gives one `error:` line, ("usage", args)
# Click's usage message; both exit 2. {db} is a fresh SQLite URL, {tmp} a temporary folder.
INPUT_ERRORS: dict[tuple[str, ...], tuple[str, list[str]]] = {
    ("ingest",): ("error", [MISSING + ".ndjson", "--db", "{db}"]),
    ("stats",): ("error", ["--db", "nonsense"]),
    ("graph",): ("error", ["--db", "nonsense"]),
    ("failures",): ("usage", ["--since", "yesterday", "--db", "{db}"]),
    ("lifecycle",): ("error", ["o-1", "--db", "sqlite:///" + MISSING + "/x.db"]),
    ("undocumented",): ("error", ["--db", "nonsense"]),  # even without a catalog
    ("subscriptions",): ("error", ["--db", "postgresql://u@127.0.0.1:1/x?connect_timeout=2"]),
    ("duplicates",): ("error", ["--db", "nonsense"]),
    ("latency",): ("usage", ["--until", "2w ago", "--db", "{db}"]),
    ("check",): ("error", ["--thresholds", MISSING + ".yaml", "--db", "{db}"]),
    ("dashboard",): ("error", ["--catalog", MISSING]),
    ("catalog", "validate"): ("usage", [MISSING]),
    ("catalog", "diff"): ("error", [MISSING + ".json", MISSING + "2.json"]),
    ("catalog", "conformance"): ("error", ["--catalog", MISSING, "--db", "{db}"]),
    ("catalog", "export-asyncapi"): ("error", ["--catalog", MISSING, "--out", "{tmp}/out"]),
    ("catalog", "import-asyncapi"): ("usage", [MISSING + ".yaml", "--out", "{tmp}/out"]),
    ("catalog", "import-pact"): ("usage", [MISSING + ".json", "--catalog", str(EXAMPLE)]),
    ("catalog", "import-schema-registry"): ("usage", ["--out", "{tmp}/out"]),
    ("contracts", "verify"): ("error", ["--catalog", str(EXAMPLE), "--no-live",
                                        "--consumer", "nobody"]),
    ("contracts", "ingest-junit"): ("error", [MISSING + ".xml", "--db", "{db}"]),
    ("tap", "install"): ("usage", ["--bus", "b", "--sample", "5"]),
    ("tap", "remove"): ("usage", ["--region", "eu-west-1"]),
    ("tap", "redrive"): ("usage", ["--region", "eu-west-1"]),  # neither --bus nor --queue-url
    ("logs", "subscribe"): ("error", ["--prefix", "/aws/lambda/", "--destination-arn",
                                      "not-an-arn", "--region", "eu-west-1"]),
    ("logs", "unsubscribe"): ("usage", ["--region", "eu-west-1"]),  # no --prefix
    ("collect", "tap"): ("error", ["--bus", "b", "--db", "nonsense", "--region", "eu-west-1"]),
    ("collect", "logs"): ("usage", ["--since", "last tuesday", "--db", "{db}"]),
    ("collect", "rules"): ("error", ["--bus", "b", "--db", "nonsense", "--region",
                                     "eu-west-1"]),
    ("collect", "all"): ("usage", ["--bus", "b", "--heartbeat", "soon", "--db", "{db}"]),
    ("replay",): ("usage", ["--bus", "b", "--since", "1 week", "--db", "{db}"]),
    ("demo",): ("error", ["--no-aws", "--out", "{tmp}/a-file/out", "--events", "5"]),
    ("prune",): ("error", ["--payload-days", "40", "--db", "{db}"]),
    ("deploy", "template"): ("error", ["--sample-rate", "2"]),
}


def test_every_command_has_an_input_error_case() -> None:
    assert set(INPUT_ERRORS) == set(LEAVES)


@pytest.mark.parametrize("words", sorted(INPUT_ERRORS), ids=" ".join)
def test_an_input_error_exits_2_without_a_traceback(words: tuple[str, ...],
                                                    tmp_path: Path) -> None:
    kind, args = INPUT_ERRORS[words]
    (tmp_path / "a-file").write_text("not a folder")
    filled = [a.replace("{db}", _sqlite(tmp_path)).replace("{tmp}", str(tmp_path))
              for a in args]
    result = run(*words, *filled)
    if kind == "error":
        assert_one_line_error(result)
    else:
        assert_usage_error(result)


@pytest.mark.parametrize(("words", "option"), [
    (("failures",), "--bucket"), (("collect", "logs"), "--overlap"),
    (("collect", "all"), "--overlap"), (("collect", "all"), "--logs-every"),
    (("collect", "all"), "--rules-every"), (("collect", "all"), "--heartbeat")])
def test_a_bad_duration_is_a_usage_error_everywhere(words: tuple[str, ...], option: str) -> None:
    result = run(*words, option, "2024-01-01")
    assert_usage_error(result)
    assert f"Invalid value for '{option}'" in result.stderr
    assert "is not a duration like 15m, 2h, 1d or 1w" in result.stderr


@pytest.mark.parametrize("args", [
    ["failures", "--since", "1w", "--json"], ["failures", "--until", "2024-01-01T00:00:00Z",
                                                "--json"],
    ["latency", "--since", "15m", "--json"], ["latency", "--since", "2024-01-01", "--json"],
    ["failures", "--bucket", "1w", "--json"],
])
def test_every_time_option_takes_the_one_grammar(args: list[str], tmp_path: Path) -> None:
    """Durations with any unit (s, m, h, d, w) and ISO times are accepted alike."""
    result = run(*args, "--db", _filled(_sqlite(tmp_path)))
    assert result.exit_code == 0, result.output
    orjson.loads(result.stdout)


@pytest.mark.parametrize(("words", "option"), [
    (("failures",), "--since"), (("failures",), "--until"), (("latency",), "--since"),
    (("latency",), "--until"), (("replay",), "--since"), (("replay",), "--until"),
    (("collect", "logs"), "--since"), (("collect", "all"), "--since")])
def test_a_bad_time_is_a_usage_error_everywhere(words: tuple[str, ...], option: str) -> None:
    result = run(*words, option, "a fortnight")
    assert_usage_error(result)
    assert f"Invalid value for '{option}'" in result.stderr
    assert "neither a duration like 15m, 2h, 1d or 1w nor an ISO 8601 time" in result.stderr


# Gates: a found problem exits 1, a clean input 0.

def test_check_exits_1_when_a_finding_reaches_fail_on(tmp_path: Path) -> None:
    url = _filled(_sqlite(tmp_path))
    found = run("check", "--db", url, "--json")
    assert found.exit_code == 1, found.output
    assert any(f["severity"] == "error" for f in orjson.loads(found.stdout)["findings"])
    relaxed = tmp_path / "t.yaml"
    relaxed.write_text("pii_allowed: true\n")
    assert run("check", "--db", url, "--thresholds", str(relaxed)).exit_code == 0


def test_contracts_verify_exits_1_on_a_failed_contract() -> None:
    assert run("contracts", "verify", "--catalog", str(CONTRACTS), "--no-live").exit_code == 1
    assert run("contracts", "verify", "--catalog", str(EXAMPLE), "--no-live",
               "--consumer", "warranty-handler").exit_code == 0


def test_catalog_validate_exits_1_on_a_broken_catalog() -> None:
    assert run("catalog", "validate", str(BROKEN_CATALOG)).exit_code == 1
    assert run("catalog", "validate", str(EXAMPLE)).exit_code == 0


def test_catalog_diff_exits_1_when_the_mode_breaks(tmp_path: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps({"type": "string"}))
    new.write_text(json.dumps({"type": "integer"}))
    assert run("catalog", "diff", str(old), str(new), "--mode", "BACKWARD").exit_code == 1
    assert run("catalog", "diff", str(old), str(old), "--mode", "BACKWARD").exit_code == 0


def test_lifecycle_exits_1_when_no_order_matches(tmp_path: Path) -> None:
    url = _filled(_sqlite(tmp_path))
    assert run("lifecycle", "nope", "--db", url).exit_code == 1
    assert run("lifecycle", "o-1", "--db", url).exit_code == 0


# Internal errors: exit 3, one line naming the log, the traceback in the log.

def _assert_internal_error(result: Result, log_dir: Path, message: str) -> None:
    assert result.exit_code == 3, (result.exit_code, result.output)
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: internal error (RuntimeError: {message}); "
                                    "the traceback is in ")
    assert "Traceback" not in result.output
    path = Path(re.search(r"the traceback is in (\S+?)\. ", result.stderr).group(1))
    assert path.parent == log_dir and path.name.startswith("eventscope-crash-")
    text = path.read_text()
    assert "Traceback (most recent call last)" in text and f"RuntimeError: {message}" in text


@pytest.mark.parametrize("words", sorted(LEAVES), ids=" ".join)
def test_any_exception_in_a_command_exits_3_with_the_log_path(
        words: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a command raises that is not a user's mistake is an internal error."""
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("injected\nsecond line")

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr(LEAVES[words], "callback", broken)
    _assert_internal_error(run(*words, *_required_args(LEAVES[words])), tmp_path, "injected")


def _required_args(command: click.Command) -> list[str]:
    """Placeholder values for a command's required options and arguments."""
    args: list[str] = []
    for param in command.params:
        if not param.required:
            continue
        value = "x"
        if isinstance(param.type, click.Path):  # an existing file or folder, as it asks
            value = str(EXAMPLE if param.type.dir_okay else ROOT / "README.md")
        args += [param.opts[0], value] if isinstance(param, click.Option) else [value]
    return args


def test_a_finding_that_crashes_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash deep in the findings layer reaches the user as exit 3 and a log."""
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("failure rates broke")

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    monkeypatch.setattr("eventscope.findings.summaries.failure_rates", broken)
    result = run("failures", "--db", _filled(_sqlite(tmp_path)))
    _assert_internal_error(result, tmp_path, "failure rates broke")


# The same, through a real process: nothing but the one line on stderr.

def _eventscope(args: list[str], cwd: Path, code: str = "") -> subprocess.CompletedProcess:
    script = code + "\nfrom eventscope.cli import main\nmain(prog_name='eventscope')\n"
    return subprocess.run([sys.executable, "-c", script, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False,
                          env={"PATH": "/usr/bin:/bin", "TMPDIR": str(cwd),
                               "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize(("args", "code", "first"), [
    (["ingest", MISSING], 2, "error: no such file"),
    (["stats", "--db", "nonsense"], 2, "error: not a database URL"),
    (["collect", "logs", "--since", "soon"], 2, "Usage: eventscope collect logs"),
    (["check", "--bogus"], 2, "Usage: eventscope check"),
    (["latency", "--db", "sqlite:///" + MISSING + "/x.db"], 2, "error: no store at"),
])
def test_errors_in_a_process_have_no_traceback(args: list[str], code: int, first: str,
                                               tmp_path: Path) -> None:
    completed = _eventscope(args, tmp_path)
    assert completed.returncode == code, completed.stderr
    assert completed.stderr.startswith(first), completed.stderr
    assert "Traceback" not in completed.stderr and completed.stdout == ""


def test_an_internal_error_in_a_process_is_one_line_and_a_log(tmp_path: Path) -> None:
    patch = ("import eventscope.findings.summaries as s\n"
             "def broken(*a, **k):\n    raise RuntimeError('deep down')\n"
             "s.failure_rates = broken\n")
    url = _filled(_sqlite(tmp_path))
    completed = _eventscope(["failures", "--db", url], tmp_path, patch)
    assert completed.returncode == 3, completed.stderr
    assert completed.stderr.count("\n") == 1 and "Traceback" not in completed.stderr
    log = Path(re.search(r"the traceback is in (\S+?)\. ", completed.stderr).group(1))
    assert log.parent == tmp_path
    assert "RuntimeError: deep down" in log.read_text()
    assert log.read_text().startswith("eventscope failures\n")  # the command, no arguments


def test_an_error_message_cannot_drive_the_terminal(tmp_path: Path) -> None:
    """A file name with a terminal escape and a line break is printed as one inert line."""
    result = run("ingest", str(tmp_path / "evil\x1b[2J\nname.ndjson"), "--db", _sqlite(tmp_path))
    assert_one_line_error(result)
    assert "\x1b" not in result.stderr and "evil?[2J name.ndjson" in result.stderr


def test_contracts_verify_rows_as_nl_and_csv() -> None:
    """One row per check, in both row formats, the same results as --json."""
    args = ["contracts", "verify", "--catalog", str(CONTRACTS), "--no-live"]
    def timeless(rows: list[dict]) -> list[dict]:  # each run checks at its own time
        return [{k: v for k, v in r.items() if k != "checked_ms"} for r in rows]

    results = orjson.loads(run(*args, "--json").stdout)["results"]
    nl = run(*args, "--nl")
    assert nl.exit_code == 1
    assert timeless([orjson.loads(line) for line in nl.stdout.splitlines()]) == \
        timeless(results)
    csv = run(*args, "--csv").stdout.splitlines()
    assert csv[0].startswith("consumer,detail_type,version,check_kind,passed")
    assert len(csv) == len(results) + 1


def test_catalog_conformance_rows_as_nl(tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    run("ingest", str(DATA / "events" / "order-events.ndjson"), "--db", url)
    args = ["catalog", "conformance", "--catalog", str(EXAMPLE), "--db", url]
    drift = orjson.loads(run(*args, "--json").stdout)["drift"]
    lines = run(*args, "--nl").stdout.splitlines()
    assert drift and [orjson.loads(line) for line in lines] == drift
