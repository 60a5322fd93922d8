"""The command line: ingest and stats end to end, clear errors, documentation."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import orjson
import pytest
from click.testing import CliRunner

from eventscope.cli import main
from tests.conftest import DATA

ROOT = Path(__file__).parent.parent
EVENTS = str(DATA / "events" / "order-events.ndjson")
LOGS = str(DATA / "ingest" / "consumer-logs.ndjson")
BAD = str(DATA / "ingest" / "bad-lines.ndjson")


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, list(args))


def test_ingest_prints_a_summary(store_url: str) -> None:
    """The summary names events, invocations and quarantine reasons."""
    result = run("ingest", EVENTS, LOGS, BAD, "--db", store_url)
    assert result.exit_code == 0, result.output
    assert "events:       4 read, 4 stored, 0 already stored" in result.output
    assert "2 invocations, 2 stored" in result.output
    assert "quarantined:  6 (invalid_json: 1, missing_fields: 2" in result.output


def test_ingest_json_reports_duplicates_on_reingest(store_url: str) -> None:
    """`ingest --json` counts what was already stored on a second run."""
    run("ingest", EVENTS, "--db", store_url)
    result = run("ingest", EVENTS, "--db", store_url, "--json")
    summary = orjson.loads(result.output)
    assert (summary["events_stored"], summary["event_duplicates"]) == (0, 4)


def test_stats_json_has_the_documented_keys(store_url: str) -> None:
    """`stats --json` is one object with the keys scripts rely on."""
    run("ingest", EVENTS, LOGS, BAD, "--db", store_url)
    stats = orjson.loads(run("stats", "--json", "--db", store_url).output)
    assert {k: stats[k] for k in ("events", "invocations", "failed_invocations",
                                  "unattributed_invocations", "quarantined")} == {
        "events": 4, "invocations": 2, "failed_invocations": 1,
        "unattributed_invocations": 1, "quarantined": 6}


def test_stats_reads_the_store_from_the_environment(store_url: str) -> None:
    """EVENTSCOPE_DB selects the store when --db is not given."""
    run("ingest", EVENTS, "--db", store_url)
    result = CliRunner().invoke(main, ["stats", "--json"], env={"EVENTSCOPE_DB": store_url})
    assert orjson.loads(result.output)["events"] == 4


@pytest.mark.parametrize(("args", "message"), [
    (["ingest", "/no/such/file.ndjson"], "error: no such file: /no/such/file.ndjson"),
    (["stats", "--db", "nonsense"], "error: not a database URL"),
    (["stats", "--db", "sqlite:////no/such/dir/x.db"], "error: no store at /no/such/dir/x.db"),
    (["stats", "--db", "postgresql://u@127.0.0.1:1/x?connect_timeout=2"],
     "error: cannot open store"),
])
def test_user_mistakes_are_one_line_errors(args: list[str], message: str, tmp_path: Path) -> None:
    """A missing file, a bad URL or an unreachable store: one line on stderr, exit 2."""
    completed = subprocess.run([sys.executable, "-m", "eventscope", *args], cwd=tmp_path,
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2
    assert completed.stderr.startswith(message), completed.stderr
    assert completed.stderr.count("\n") == 1
    assert "Traceback" not in completed.stderr


def _command_names(group: click.Group, prefix: str = "eventscope") -> list[str]:
    names = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        names.append(f"{prefix} {name}")
        if isinstance(command, click.Group):
            names.extend(_command_names(command, f"{prefix} {name}"))
    return names


def test_every_command_is_documented_in_the_readme() -> None:
    """Each command and subcommand appears in README.md under its own heading."""
    assert len(_command_names(main)) > 20  # the lazily loaded commands are all listed
    readme = (ROOT / "README.md").read_text()
    headings = set(re.findall(r"^#+ `(eventscope [^`]+?)`", readme, flags=re.MULTILINE))
    undocumented = [name for name in _command_names(main)
                    if not any(h == name or h.startswith(name + " ") for h in headings)]
    assert not undocumented, f"undocumented in README.md: {undocumented}"
