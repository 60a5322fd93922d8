"""Faults, access control and configuration audit: with login configured an anonymous session
gets the login page and nothing else; environments follow the allow-list from the OIDC
claims; revealing PII needs its role; the dashboard refuses a non-local bind without login
unless told `--insecure-bind`; the server starts with what it must (headless, no error
details, no telemetry, XSRF and CORS protections left on)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from eventscope.cli import main
from eventscope.cli.dashboard_cmd import streamlit_command
from eventscope.dashboard import access
from tests.dashboard_harness import APP, PAGES, seed
from tests.faults.test_faults_pii import page_text

AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s",
        "client_id": "c", "client_secret": "x",
        "server_metadata_url": "https://idp.example/.well-known/openid-configuration"}
ANN = {"is_logged_in": True, "email": "ann@example.com", "groups": ["oncall"]}


@pytest.fixture
def stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Two seeded environments: default and prod."""
    urls = {"default": seed(f"sqlite:///{tmp_path / 'dev.db'}"),
            "prod": seed(f"sqlite:///{tmp_path / 'prod.db'}")}
    monkeypatch.setenv("EVENTSCOPE_DB", urls["default"])
    monkeypatch.setenv("EVENTSCOPE_ENVIRONMENTS", '{"prod": "%s"}' % urls["prod"])
    return urls


def run(name: str, user: dict[str, Any], secrets: dict[str, Any], **query: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.secrets.update(secrets)
    at.user = user
    for key, value in query.items():
        at.query_params[key] = value
    at.switch_page(f"app_pages/{name}.py")
    return at.run()


@pytest.mark.parametrize("name", PAGES)
def test_an_anonymous_session_gets_only_the_login_page(name: str, stores: dict[str, str]) -> None:
    """Deep links included: no table, no payload, no store, no sidebar; one Log in button."""
    at = run(name, {"is_logged_in": False}, {"auth": AUTH}, order="o-1")
    assert not at.exception
    assert [b.label for b in at.button] == ["Log in"]
    assert not at.dataframe and not at.json and not at.sidebar.children
    text = page_text(at)
    for secret in ("o-1", "dev.db", "prod.db", "OrderPlaced", "ann@example.com"):
        assert secret not in text


def test_a_logged_in_user_sees_the_pages(stores: dict[str, str]) -> None:
    at = run("lifecycle", ANN, {"auth": AUTH}, order="o-1")
    assert not at.exception and at.text[0].value == "Order o-1: 3 events"


def test_the_allow_list_chooses_the_environments_per_user(stores: dict[str, str]) -> None:
    """ann (group oncall) may open default only; prod is not even offered."""
    secrets = {"auth": AUTH, "eventscope": {"access": {"environments": {
        "default": {"groups": ["oncall"]}, "prod": {"users": ["bob@example.com"]}}}}}
    at = run("overview", ANN, secrets, env="prod")
    assert at.sidebar.selectbox[0].options == ["default"]
    assert "prod.db" not in page_text(at)
    bob = run("overview", {"is_logged_in": True, "email": "bob@example.com"}, secrets)
    assert bob.sidebar.selectbox[0].options == ["prod"]


def test_a_user_on_no_allow_list_sees_no_environment(stores: dict[str, str]) -> None:
    secrets = {"auth": AUTH, "eventscope": {"access": {"environments": {
        "default": {"users": ["bob@example.com"]}}}}}
    at = run("lifecycle", ANN, secrets, order="o-1")
    assert any("may not see any environment" in e.value for e in at.error)
    text = page_text(at)
    assert "o-1" not in text and "dev.db" not in text and not at.dataframe


def test_revealing_pii_needs_the_role(stores: dict[str, str]) -> None:
    """Without the reveal_pii role the toggle is disabled and, even forced, reveals nothing."""
    at = run("lifecycle", ANN, {"auth": AUTH}, order="o-1")
    assert at.toggle(key="reveal").disabled
    at.session_state["reveal"] = True  # a forged widget value, as a hostile client could send
    at.run()
    assert "ann@example.com" not in str(at.json[0].value)
    secrets = {"auth": AUTH, "eventscope": {"access": {"roles": {
        "reveal_pii": {"groups": ["oncall"]}}}}}
    allowed = run("lifecycle", ANN, secrets, order="o-1")
    assert not allowed.toggle(key="reveal").disabled
    allowed.toggle(key="reveal").set_value(True).run()
    assert "ann@example.com" in str(allowed.json[0].value)


def test_an_unverified_email_claim_matches_no_user() -> None:
    policy = access.policy_from({"auth": AUTH, "eventscope": {"access": {"roles": {
        "reveal_pii": {"users": ["ann@example.com"]}}}}})
    assert access.holds("reveal_pii", ANN, policy)
    assert not access.holds("reveal_pii", {**ANN, "email_verified": False}, policy)


def test_a_malformed_policy_allows_nobody() -> None:
    policy = access.policy_from({"auth": AUTH, "eventscope": {"access": {
        "environments": {"default": "everyone"}, "roles": {"replay": ["ann@example.com"]}}}})
    assert access.visible_environments(["default"], ANN, policy) == []
    assert not access.holds("replay", ANN, policy)


@pytest.mark.parametrize("host, local", [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("dashboard.internal", False)])
def test_local_addresses(host: str, local: bool) -> None:
    assert access.is_local_address(host) is local


@pytest.fixture
def no_exec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[list[str]]:
    """Where `eventscope dashboard` would replace itself by the server: the command recorded
    instead. Run from an empty folder with an empty home (no secrets.toml)."""
    started: list[list[str]] = []
    monkeypatch.setattr(os, "execve", lambda path, args, env: started.append(list(args)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return started


def test_a_non_local_bind_without_login_is_refused(no_exec: list[list[str]],
                                                   tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["dashboard", "--host", "0.0.0.0", "--db",
                                       f"sqlite:///{tmp_path / 's.db'}"])
    assert result.exit_code == 2 and no_exec == []
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --host 0.0.0.0")


def test_insecure_bind_starts_with_a_warning(no_exec: list[list[str]], tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["dashboard", "--host", "0.0.0.0", "--insecure-bind",
                                       "--allowed-host", "dash.example",
                                       "--db", f"sqlite:///{tmp_path / 's.db'}"])
    assert result.exit_code == 0, result.output
    assert "without login" in result.output
    command = no_exec[0]
    assert command[command.index("--server.address") + 1] == "0.0.0.0"
    assert command[command.index("--server.allowedHosts") + 1] == "dash.example"


def test_a_wildcard_bind_without_an_allowed_host_is_one_usage_line(
        no_exec: list[list[str]], tmp_path: Path) -> None:
    """0.0.0.0 answers any Host header (DNS rebinding): the name users reach it by is asked
    for, as one `error:` line and exit 2, and nothing starts."""
    result = CliRunner().invoke(main, ["dashboard", "--host", "0.0.0.0", "--insecure-bind",
                                       "--db", f"sqlite:///{tmp_path / 's.db'}"])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "--allowed-host" in result.output
    assert no_exec == []


def test_a_non_local_bind_with_login_configured_starts(no_exec: list[list[str]],
                                                       tmp_path: Path) -> None:
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(
        "[auth]\n" + "".join(f'{k} = "{v}"\n' for k, v in AUTH.items()))
    result = CliRunner().invoke(main, ["dashboard", "--host", "0.0.0.0", "--allowed-host",
                                       "dash.example", "--db", f"sqlite:///{tmp_path / 's.db'}"])
    assert result.exit_code == 0, result.output
    assert len(no_exec) == 1


def test_config_audit_of_the_server_command() -> None:
    """Headless, local by default, no error details or telemetry, XSRF and CORS protection
    pinned on, only the bound host's names accepted, upload limits Streamlit's."""
    command = streamlit_command("127.0.0.1", 8501)
    pairs = list(zip(command[5::2], command[6::2]))
    options = dict(pairs)
    assert options["--server.address"] == "127.0.0.1"
    assert options["--server.headless"] == "true"
    assert options["--client.showErrorDetails"] == "none"
    assert options["--browser.gatherUsageStats"] == "false"
    assert options["--global.developmentMode"] == "false"
    assert options["--server.enableXsrfProtection"] == "true"
    assert options["--server.enableCORS"] == "true"
    assert {v for k, v in pairs if k == "--server.allowedHosts"} == {
        "localhost", "127.0.0.1", "::1"}
    assert "--server.maxUploadSize" not in options
    assert not (APP.parent / ".streamlit" / "config.toml").exists()
