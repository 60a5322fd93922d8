"""The demo end to end: `eventscope demo` on moto's server, collected by the real collectors,
shown by the real dashboard, and every planted problem found by the findings and the CLI.

One bounded run (10 minutes of history, 20 s live, the dashboard on a free port) serves the
module; its `--json` account of what it published and how its consumers fared is the ground
truth the findings are compared with.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import date
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from eventscope.catalog.loader import load_catalog
from eventscope.cli import main
from eventscope.findings import summaries
from eventscope.findings.check import read_thresholds, run_check_summaries
from eventscope.store import open_store
from tests.signals import linux_only, signal_another_thread

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "eventscope" / "demo_catalog"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    """`eventscope demo ARGS` as a child process; its stderr lines collected as they come
    (and its stdout, for `_finish`)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-m", "eventscope", "demo", *args], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    lines: list[str] = []
    stdout: list[str] = []

    def read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    readers = [threading.Thread(target=read, args=pair, daemon=True)
               for pair in ((process.stderr, lines), (process.stdout, stdout))]
    for reader in readers:
        reader.start()
    process.stdout_lines, process.readers = stdout, readers  # type: ignore[attr-defined]
    return process, lines


def _finish(process: subprocess.Popen[str], timeout: float) -> str:
    """The child's stdout once it has exited (TimeoutExpired after `timeout` seconds)."""
    process.wait(timeout=timeout)
    for reader in process.readers:  # type: ignore[attr-defined]
        reader.join(timeout=10)  # until they have drained the closed pipes
    return "\n".join(process.stdout_lines)  # type: ignore[attr-defined]


def _wait_for(lines: list[str], prefix: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in list(lines):
            if line.startswith(prefix):
                return line
        time.sleep(0.2)
    raise AssertionError(f"no {prefix!r} line within {timeout} s: {lines[-5:]}")


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode(errors="replace")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One bounded demo run: its store URL, its own account (--json), and the dashboard's
    answers while it was running."""
    db = tmp_path_factory.mktemp("demo") / "demo.db"
    url, port = f"sqlite:///{db}", _free_port()
    process, lines = _start("--backfill", "0.17", "--duration", "20", "--port", str(port),
                            "--db", url, "--json")
    try:
        _wait_for(lines, "dashboard: http://127.0.0.1:", timeout=90)
        pages = {path: _get(f"http://127.0.0.1:{port}{path}")
                 for path in ("/_stcore/health", "/")}
        stdout = _finish(process, timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, lines[-10:]
    yield {"url": url, "account": json.loads(stdout), "pages": pages, "port": port,
           "stderr": lines}


def _cli(run: dict[str, Any], *args: str) -> Any:
    result = CliRunner().invoke(main, [*args, "--db", run["url"], "--catalog", str(CATALOG),
                                       "--json"])
    assert result.exit_code in (0, 1), result.output  # check exits 1 when it finds errors
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def findings(run: dict[str, Any]) -> list[dict[str, Any]]:
    return _cli(run, "check")["findings"]


def _finding(found: list[dict[str, Any]], kind: str, **subject: str) -> dict[str, Any]:
    matches = [f for f in found if f["kind"] == kind
               and all(f["subject"].get(k) == v for k, v in subject.items())]
    assert len(matches) == 1, (kind, subject, [f["summary"] for f in found if f["kind"] == kind])
    return matches[0]


def test_everything_published_is_collected(run: dict[str, Any]) -> None:
    """Every bus event (history and live) reaches the store through the tap, and every
    consumer invocation through the logs collector."""
    account = run["account"]
    published = account["backfill_events"] + account["live_events"]
    assert account["live_events"] > 0 and account["backfill_events"] > 0
    assert account["collected"]["events"] == published
    assert account["collected"]["invocations"] == account["invocations"]
    # Only the idempotent consumers' answered repeats carry no event id (no handler line).
    assert account["collected"]["unattributed_invocations"] == account["skipped_repeats"]


def test_the_dashboard_serves_while_the_demo_runs(run: dict[str, Any]) -> None:
    """The dashboard started by the demo answered its health check and served the app."""
    health, app = run["pages"]["/_stcore/health"], run["pages"]["/"]
    assert health == (200, "ok")
    assert app[0] == 200 and "<div id=\"root\">" in app[1]


def test_the_dashboard_stops_with_the_demo(run: dict[str, Any]) -> None:
    """After the demo exits, nothing listens on the dashboard's port any more (the
    dashboard command's streamlit child is stopped too)."""
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", run["port"])) != 0


def test_warranty_handler_misses_cancellations_and_returns(findings: list[dict]) -> None:
    """warranty-handler lacks OrderCancelled and OrderReturned: declared by the catalog, and
    seen in the data for cancelled orders it had handled (its rule does not match them)."""
    cancelled = _finding(findings, "missing_subscription", consumer="warranty-handler",
                         detail_type="OrderCancelled")
    assert cancelled["severity"] == "error"
    assert cancelled["evidence"]["evidence"] == "declarations_and_data"
    assert cancelled["evidence"]["observed"]["orders"] > 0
    assert "catalog" in cancelled["evidence"]["static"]["views"]
    _finding(findings, "missing_subscription", consumer="warranty-handler",
             detail_type="OrderReturned")


def test_order_paid_v2_breaks_invoice_generator_with_key_error(run: dict[str, Any]) -> None:
    """The failures command shows invoice-generator's KeyError on OrderPaid v2, as many
    times as the demo's invoice-generator raised it."""
    raised = run["account"]["outcomes"]["invoice-generator OrderPaid error KeyError"]
    report = _cli(run, "failures", "--consumer", "invoice-generator")
    (key_error,) = [e for e in report["top_errors"] if e["error_type"] == "KeyError"]
    assert key_error["detail_type"] == "OrderPaid" and key_error["count"] == raised
    assert key_error["first_message"] == "'totalAmount'"
    v2 = [r for r in report["rates"] if r["detail_type"] == "OrderPaid" and r["version"] == "2"]
    assert v2 and v2[0]["errors"] >= raised


def test_fraud_check_processes_duplicates_twice(run: dict[str, Any]) -> None:
    """duplicates: fraud-check processed exactly the events the demo made it process twice."""
    expected = run["account"]["processed_twice"]["fraud-check"]
    report = _cli(run, "duplicates")
    (fraud,) = [c for c in report["consumers"] if c["consumer"] == "fraud-check"]
    assert expected > 0 and fraud["processed_twice"] == expected
    assert [c["consumer"] for c in report["consumers"] if c["processed_twice"]] == ["fraud-check"]


def test_order_priority_changed_is_undocumented(run: dict[str, Any]) -> None:
    """undocumented: OrderPriorityChanged, as often as it was published, and nothing else."""
    report = _cli(run, "undocumented")["undocumented"]
    assert [(u["detail_type"], u["count"]) for u in report] == [
        ("OrderPriorityChanged", run["account"]["published"]["OrderPriorityChanged"])]


def test_deprecated_order_placed_is_still_consumed(findings: list[dict],
                                                   run: dict[str, Any]) -> None:
    """OrderPlaced, deprecated in the catalog and past its sunset, still reaches analytics-sink."""
    found = _finding(findings, "deprecated_in_use", detail_type="OrderPlaced")
    assert found["severity"] == "error" and found["evidence"]["days_to_sunset"] < 0
    assert found["evidence"]["consumers"] == ["analytics-sink"]
    assert found["evidence"]["replacement"] == "OrderCreated"
    assert found["evidence"]["emitted"] == run["account"]["published"]["OrderPlaced"]


def test_customer_emails_reach_consumers_that_do_not_need_them(findings: list[dict],
                                                               run: dict[str, Any]) -> None:
    """The undeclared e-mail in OrderPlaced is an error finding naming analytics-sink; the
    store holds no e-mail address in any payload (redacted before the store)."""
    found = _finding(findings, "pii_exposure", detail_type="OrderPlaced",
                     path="detail.customerEmail")
    assert found["severity"] == "error" and found["evidence"]["consumers"] == ["analytics-sink"]
    store = open_store(run["url"], must_exist=True)
    with store.engine.connect() as conn:
        leaked = conn.exec_driver_sql(
            "SELECT count(*) FROM events WHERE detail LIKE '%@example.com%'").scalar()
    assert leaked == 0


def test_the_demo_stores_no_customer_name_or_address_in_clear(run: dict[str, Any]) -> None:
    """OrderCreated's declared PII (the customer's name, the shipping address, an object) is
    a catalog token in every stored OrderCreated: the demo's collectors redact it."""
    store = open_store(run["url"], must_exist=True)
    with store.engine.connect() as conn:
        details = [json.loads(row[0]) for row in conn.exec_driver_sql(
            "SELECT detail FROM events WHERE detail_type = 'OrderCreated'")]
    assert details  # the demo published orders
    for detail in details:
        assert detail["customer"]["name"].startswith("pii:catalog:")
        assert detail["shippingAddress"].startswith("pii:catalog:")


def test_findings_functions_agree_with_the_cli(run: dict[str, Any],
                                               findings: list[dict]) -> None:
    """The library's check over the store's summaries yields the CLI's findings."""
    store = open_store(run["url"], must_exist=True)
    catalog = load_catalog(CATALOG)
    found, _ = run_check_summaries(summaries.check_summaries(store.engine, catalog), catalog,
                                   read_thresholds(None), date.today())
    assert sorted((f.kind, json.dumps(f.subject, sort_keys=True)) for f in found) == sorted(
        (f["kind"], json.dumps(f["subject"], sort_keys=True)) for f in findings)


@linux_only
def test_sigterm_stops_everything_cleanly(tmp_path: Path) -> None:
    """SIGTERM during the live phase: collectors commit, the emulator stops, exit status 0.

    The signal goes to one of the demo's other threads, as the kernel may deliver a signal
    sent to the process: the demo once waited for it in one untimed wait of its main thread,
    where Python never ran the handler, and ignored the SIGTERM for good (seen in CI)."""
    process, lines = _start("--backfill", "0", "--no-dashboard", "--db",
                            f"sqlite:///{tmp_path / 'demo.db'}")
    try:
        _wait_for(lines, "live:", timeout=60)
        time.sleep(2)
        signal_another_thread(process.pid, signal.SIGTERM)
        stdout = _finish(process, timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, lines[-10:]
    assert "stored: events=" in stdout


def test_no_aws_writes_ndjson_that_ingest_reads(tmp_path: Path) -> None:
    """--no-aws: the same company as NDJSON files, ingested into a store without rejects."""
    runner = CliRunner()
    made = runner.invoke(main, ["demo", "--no-aws", "--out", str(tmp_path), "--events", "300",
                                "--json"])
    assert made.exit_code == 0, made.output
    written = json.loads(made.stdout)
    assert written["events"] == 300 and written["logs"] > 300
    db = f"sqlite:///{tmp_path / 'in.db'}"
    ingested = runner.invoke(main, ["ingest", written["events_path"], written["logs_path"],
                                    "--db", db])
    assert ingested.exit_code == 0, ingested.output
    counts = open_store(db).counts()
    assert counts["events"] == 300 and counts["quarantined"] == 0


def test_no_aws_without_out_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["demo", "--no-aws"])
    assert result.exit_code == 2 and "--no-aws needs --out" in result.output


def test_a_busy_dashboard_port_is_a_one_line_error(tmp_path: Path) -> None:
    """The port is checked before anything starts: one line, exit status 2."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["demo", "--port", str(port), "--db",
                                           f"sqlite:///{tmp_path / 'demo.db'}"])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: port {port} on 127.0.0.1 is in use: pass --port"


def test_the_catalog_describes_the_traffic(findings: list[dict]) -> None:
    """Apart from the planted problems, the demo catalog and the company agree: every
    sampled payload of a catalogued type conforms to its version's schema."""
    assert [f["summary"] for f in findings if f["kind"] == "schema_drift"] == []


def test_contracts_are_verified_against_the_stored_events(run: dict[str, Any]) -> None:
    """The demo runs `contracts verify` after the history: every consumer contract holds
    (the version bump broke invoice-generator through a field its contract never declared),
    and the results are in the store for the dashboard's Contracts page."""
    (line,) = [line for line in run["stderr"] if line.startswith("contracts: ")]
    counts = re.fullmatch(r"contracts: (\d+) passed, 0 failed, (\d+) not checked", line)
    assert counts, line
    passed, unchecked = int(counts[1]), int(counts[2])
    store = open_store(run["url"], must_exist=True)
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT count(*) FROM contract_results").scalar()
    assert rows == passed + unchecked and passed > 0
