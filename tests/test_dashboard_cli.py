"""`eventscope dashboard`: the Streamlit command it runs and its option errors."""

from __future__ import annotations

from click.testing import CliRunner

from eventscope.cli import main
from eventscope.cli.dashboard_cmd import app_path, parse_environments, streamlit_command


def test_streamlit_binds_localhost_headless_without_error_details_or_telemetry() -> None:
    command = streamlit_command("127.0.0.1", 8600)
    pairs = dict(zip(command[5::2], command[6::2]))
    assert command[1:4] == ["-m", "eventscope.dashboard.serve", "run"]
    assert pairs["--server.address"] == "127.0.0.1"
    assert pairs["--server.port"] == "8600"
    assert pairs["--server.headless"] == "true"
    assert pairs["--client.showErrorDetails"] == "none"
    assert pairs["--browser.gatherUsageStats"] == "false"


def test_app_is_found_through_the_package() -> None:
    assert app_path().name == "app.py" and (app_path().parent / "app_pages").is_dir()


def test_default_host_is_localhost() -> None:
    result = CliRunner().invoke(main, ["dashboard", "--help"])
    assert "[default: 127.0.0.1]" in result.output


def test_a_missing_catalog_is_a_one_line_error(tmp_path) -> None:
    result = CliRunner().invoke(main, ["dashboard", "--catalog", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: no catalog at")


def test_environments_are_name_equals_url() -> None:
    assert parse_environments(("prod=sqlite:///p.db",)) == {"prod": "sqlite:///p.db"}
    result = CliRunner().invoke(main, ["dashboard", "--env", "nourl"])
    assert result.exit_code == 2 and "NAME=URL" in result.output


def test_stopping_the_command_stops_the_server(tmp_path) -> None:
    """SIGTERM to `eventscope dashboard` stops Streamlit too: nothing keeps the port."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "eventscope", "dashboard", "--db",
                                f"sqlite:///{tmp_path / 's.db'}", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        health, healthy = f"http://127.0.0.1:{port}/_stcore/health", False
        for _ in range(120):
            try:
                healthy = urllib.request.urlopen(health, timeout=1).status == 200
                break
            except OSError:
                time.sleep(0.25)
        assert healthy, "the dashboard never answered its health check"
        process.terminate()
        process.wait(timeout=20)
    finally:
        process.kill()
    with socket.socket() as client:
        assert client.connect_ex(("127.0.0.1", port)) != 0
