"""The findings commands end to end on a real store: tables, --json shapes, check exit codes."""

from __future__ import annotations

from pathlib import Path

import click
import orjson
import pytest
from click.testing import CliRunner

from eventscope.cli import main
from eventscope.store import open_store
from tests.findings_scenario import bus_events, invocations
from tests.test_findings_alerts import moto_endpoint, webhook  # noqa: F401 - fixtures


def run(*args: str, env: dict[str, str] | None = None) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), env=env)


@pytest.fixture
def filled(store_url: str) -> str:
    store = open_store(store_url)
    store.write_batch(bus_events(), invocations())
    store.engine.dispose()
    return store_url


def _json(*args: str) -> dict:
    result = run(*args, "--json")
    assert result.exit_code in (0, 1), result.output
    return orjson.loads(result.output)


def test_graph_json_and_formats(filled: str) -> None:
    """--json gives nodes and edges; --format dot and mermaid print diagrams."""
    data = _json("graph", "--db", filled)
    assert (data["catalog"], len(data["edges"])) == (False, 9)
    assert run("graph", "--db", filled, "--format", "dot").output.startswith("digraph")
    assert run("graph", "--db", filled, "--format", "mermaid").output.startswith("flowchart LR")


def test_failures_json_shape_and_filters(filled: str) -> None:
    """rates, final_failures and top_errors; --consumer and --type narrow them."""
    data = _json("failures", "--db", filled, "--consumer", "billing-fn", "--type", "OrderPaid")
    assert set(data) == {"rates", "final_failures", "top_errors", "retention"}
    assert [(r["consumer"], r["detail_type"], r["failed"]) for r in data["rates"]] == [
        ("billing-fn", "OrderPaid", 2)]
    assert [f["event_id"] for f in data["final_failures"]] == ["e2"]


def test_failures_since_window_and_bad_value(filled: str) -> None:
    """An ISO --since after every invocation leaves no rates; a bad value is a usage error."""
    assert _json("failures", "--db", filled, "--since", "2030-01-01")["rates"] == []
    result = run("failures", "--db", filled, "--since", "yesterday-ish")
    assert result.exit_code == 2 and "neither a duration" in result.output


def test_lifecycle_by_event_id_prints_outcomes_and_gaps(filled: str) -> None:
    result = run("lifecycle", "e3", "--db", filled)
    assert result.exit_code == 0, result.output
    assert "warranty-fn                    retried_then_ok  2 attempt(s)" in result.output
    assert "gap: missed_cancellation consumer=warranty-fn" in result.output


def test_lifecycle_json_and_no_match(filled: str) -> None:
    data = _json("lifecycle", "o-1", "--db", filled)
    assert data["matches"] == ["o-1"]
    assert [e["id"] for e in data["lifecycle"]["events"]] == ["e1", "e2", "e3"]
    missing = run("lifecycle", "nope", "--db", filled)
    assert missing.exit_code == 1 and "no order matches 'nope'" in missing.output


def test_undocumented_without_catalog_says_skipped(filled: str) -> None:
    assert _json("undocumented", "--db", filled) == {
        "skipped": "no catalog given (--catalog PATH)", "undocumented": []}


def test_subscriptions_and_duplicates_json(filled: str) -> None:
    data = _json("subscriptions", "--db", filled)
    assert [(m["consumer"], m["evidence"]) for m in data["missing"]] == [("warranty-fn", "data")]
    assert _json("duplicates", "--db", filled, "--resends") == {
        "consumers": [], "producer_resends": [], "retention": []}


def test_check_exits_1_at_threshold_and_0_below(filled: str, tmp_path: Path) -> None:
    """Undeclared PII is an error by default; allowing PII leaves only warnings (exit 0)."""
    result = run("check", "--db", filled, "--json")
    assert result.exit_code == 1
    data = orjson.loads(result.output)
    assert {"kind", "severity", "subject", "summary", "evidence"} == set(data["findings"][0])
    relaxed = tmp_path / "thresholds.yaml"
    relaxed.write_text("pii_allowed: true\nfail_on: error\n")
    assert run("check", "--db", filled, "--thresholds", str(relaxed)).exit_code == 0
    strict = tmp_path / "strict.yaml"
    strict.write_text("pii_allowed: true\nfail_on: warning\n")
    assert run("check", "--db", filled, "--thresholds", str(strict)).exit_code == 1


def test_check_bad_thresholds_file_is_one_line_error(filled: str, tmp_path: Path) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text("failure_rate: {warnng: 0.1}\n")
    result = run("check", "--db", filled, "--thresholds", str(bad))
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {bad}: unknown setting failure_rate.warnng"


def test_check_notify_webhook_sends_once_across_runs(filled: str, webhook) -> None:  # noqa: F811
    """--notify sends each finding once; the second run remembers them in the store."""
    url, received = webhook
    first = orjson.loads(run("check", "--db", filled, "--json", "--notify", "--webhook",
                             url).output)
    assert first["notified"] == {"sent": len(received), "already_sent": 0, "errors": []}
    assert len(received) == 4
    second = orjson.loads(run("check", "--db", filled, "--json", "--notify", "--webhook",
                              url).output)
    assert (second["notified"]["sent"], second["notified"]["already_sent"]) == (0, 4)
    assert len(received) == 4


def test_check_notify_sns_through_the_cli(filled: str, moto_endpoint: str) -> None:  # noqa: F811
    """--sns-topic publishes through the shared AWS client factory (--endpoint-url: moto)."""
    import boto3
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    sns = boto3.client("sns", endpoint_url=moto_endpoint, region_name="eu-west-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    topic = sns.create_topic(Name="cli-alerts")["TopicArn"]
    result = run("check", "--db", filled, "--json", "--notify", "--sns-topic", topic,
                 "--endpoint-url", moto_endpoint, env=env)
    assert orjson.loads(result.output)["notified"]["sent"] == 4


def test_check_notify_without_channel_is_an_error(filled: str) -> None:
    result = run("check", "--db", filled, "--notify")
    assert result.exit_code == 2 and "needs --sns-topic" in result.output


def test_check_grades_stored_contract_failures(filled: str) -> None:
    """A failing contract check stored by `contracts verify` becomes a contract_failure."""
    store = open_store(filled)
    store.write_contract_results([{
        "consumer": "warranty", "detail_type": "OrderPaid", "version": "2",
        "check_kind": "schema", "passed": False, "checked_ms": 1, "catalog_revision": "r1",
        "violations": orjson.dumps([{"path": "$.amount", "message": "amount is not required"
                                     }]).decode(), "summary": "{}", "origin": "eventscope"}])
    found = _json("check", "--db", filled)["findings"]
    failures = [f for f in found if f["kind"] == "contract_failure"]
    assert [(f["subject"], f["summary"]) for f in failures] == [(
        {"consumer": "warranty", "detail_type": "OrderPaid", "version": "2"},
        "warranty's contract for OrderPaid fails: amount is not required")]


def test_bus_rules_snapshot_feeds_the_subscriptions_check(filled: str) -> None:
    """The latest `collect rules` snapshot is read as who the bus delivers what to."""
    from eventscope.collectors.rules_collector import rule_row, target_row
    from eventscope.cli.findings_cmd import _bus_subscriptions
    from eventscope.tables import rule_snapshots, rule_targets

    store = open_store(filled)
    assert _bus_subscriptions(store) is None
    rule = {"Name": "warranty-orders", "State": "ENABLED",
            "Arn": "arn:aws:events:eu-west-1:123456789012:rule/shop-bus/warranty-orders",
            "EventPattern": '{"detail-type":["OrderCreated"],"source":["com.shop.orders"]}'}
    target = {"Id": "q", "Arn": "arn:aws:sqs:eu-west-1:123456789012:warranty-handler"}
    store.write_rows({rule_snapshots: [rule_row("shop-bus", 5, rule)],
                      rule_targets: [target_row("shop-bus", "warranty-orders", 5, target)]})
    rows = _bus_subscriptions(store).to_dict("records")
    assert rows == [{"rule": "warranty-orders", "source": "com.shop.orders",
                     "detail_type": "OrderCreated", "target": target["Arn"],
                     "consumer": "warranty-handler"}]


def test_latency_per_event_type_and_consumer(filled: str) -> None:
    """p50/p95/max event -> first invocation per (detail-type, consumer), in every format."""
    rows = _json("latency", "--db", filled)["latency"]
    by_pair = {(r["detail_type"], r["consumer"]): r for r in rows}
    assert by_pair[("OrderPaid", "billing-fn")]["first_p95_ms"] == 1000.0
    assert by_pair[("OrderPaid", "warranty-fn")]["skewed"] == 1
    table = run("latency", "--db", filled)
    assert table.exit_code == 0 and table.output.startswith("detail_type ")
    lines = run("latency", "--db", filled, "--nl").output.splitlines()
    assert [orjson.loads(line) for line in lines] == rows
    csv_lines = run("latency", "--db", filled, "--csv").output.splitlines()
    assert csv_lines[0].startswith("detail_type,consumer,events,skewed,first_p50_ms")
    assert len(csv_lines) == len(rows) + 1
    assert _json("latency", "--db", filled, "--since", "2030-01-01") == {"latency": [],
                                                                           "retention": []}


def test_check_grades_latency_from_the_thresholds_file(filled: str, tmp_path: Path) -> None:
    thresholds = tmp_path / "t.yaml"
    thresholds.write_text("pii_allowed: true\nlatency_p95_ms: {warning: 500, error: 900, "
                          "min_events: 1}\n")
    result = run("check", "--db", filled, "--thresholds", str(thresholds), "--json")
    slow = [f for f in orjson.loads(result.output)["findings"] if f["kind"] == "latency_p95"]
    assert [(f["severity"], f["subject"]) for f in slow] == [
        ("error", {"consumer": "billing-fn", "detail_type": "OrderPaid"})]
    assert result.exit_code == 1


@pytest.mark.parametrize("command", ["graph", "failures", "undocumented", "subscriptions",
                                     "duplicates", "check", "latency"])
def test_table_commands_print_rows_as_nl_and_csv(filled: str, command: str) -> None:
    """--nl gives one JSON object a line, --csv a header and the same number of rows; at
    most one of --json/--nl/--csv."""
    nl = run(command, "--db", filled, "--nl")
    assert nl.exit_code in (0, 1), nl.output
    objects = [orjson.loads(line) for line in nl.stdout.splitlines()]
    assert all(isinstance(o, dict) for o in objects)
    csv = run(command, "--db", filled, "--csv")
    assert len(csv.stdout.splitlines()) == len(objects) + 1
    both = run(command, "--db", filled, "--nl", "--csv")
    assert both.exit_code == 2 and "at most one of --json, --nl and --csv" in both.output


def test_failures_nl_rows_are_the_json_rates(filled: str) -> None:
    rates = _json("failures", "--db", filled)["rates"]
    lines = run("failures", "--db", filled, "--nl").stdout.splitlines()
    assert [orjson.loads(line) for line in lines] == rates
