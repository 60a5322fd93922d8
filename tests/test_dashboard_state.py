"""The URL is the dashboard's state: `ui.url_text` / `ui.url_select` keep what the user typed
or chose across reruns, follow a changed URL, and (sticky) survive a navigation that drops the
query; the sidebar's environment survives page switches; `eventscope dashboard` pins the Host
allow-list, XSRF and CORS; preloading the pages' modules logs no warning. (Under AppTest; the
same stories in a real browser are in test_dashboard_state_browser.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from eventscope.cli import main
from eventscope.cli.dashboard_cmd import allowed_hosts, streamlit_command
from tests.dashboard_harness import APP, seed

ROOT = Path(__file__).resolve().parent.parent


def text_script() -> None:
    import streamlit as st

    from eventscope.dashboard import ui

    value = ui.url_text("Order", "order", key="box", aliases=("event",))
    st.text(f"shown: {value}")


def select_script() -> None:
    import streamlit as st

    from eventscope.dashboard import ui

    value = ui.url_select("Env", ["default", "staging", "prod"], "env", key="env", sticky=True)
    st.text(f"env: {value}")


def shown(at: AppTest) -> str:
    return str(at.text[0].value).strip()


def param(at: AppTest, name: str) -> str | None:
    """A query parameter of the app's URL after its run (AppTest holds a str or a list)."""
    value = at.query_params.get(name)
    return value[-1] if isinstance(value, list) else value


def test_url_text_keeps_five_orders_typed_in_a_row() -> None:
    """Each typed value is shown and put in the URL; none snaps back to the one before."""
    at = AppTest.from_function(text_script)
    at.query_params["order"] = "ord-0"
    at.run()
    assert at.text_input(key="box").value == "ord-0"
    for n in range(1, 6):
        at.text_input(key="box").input(f"ord-{n}").run()
        assert at.text_input(key="box").value == f"ord-{n}"
        assert shown(at) == f"shown: ord-{n}"
        assert param(at, "order") == f"ord-{n}"


def test_url_text_follows_a_changed_url_and_an_alias() -> None:
    at = AppTest.from_function(text_script)
    at.query_params["event"] = "e-1"
    at.run()
    assert shown(at) == "shown: e-1" and "event" not in at.query_params
    at.text_input(key="box").input("typed").run()
    at.query_params["order"] = "from-a-link"
    at.run()
    assert at.text_input(key="box").value == "from-a-link"


def test_url_text_cleared_removes_the_parameter() -> None:
    at = AppTest.from_function(text_script)
    at.query_params["order"] = "ord-1"
    at.run()
    at.text_input(key="box").input("").run()
    assert "order" not in at.query_params and shown(at) == "shown:"


def test_sticky_select_survives_a_navigation_that_drops_the_query() -> None:
    """A sidebar click drops every query parameter: the choice stays and goes back into the
    URL."""
    at = AppTest.from_function(select_script)
    at.run()
    assert shown(at) == "env: default" and "env" not in at.query_params
    at.selectbox(key="env").select("staging").run()
    assert param(at, "env") == "staging"
    at.query_params.clear()
    at.run()
    assert shown(at) == "env: staging" and param(at, "env") == "staging"
    at.query_params["env"] = "prod"  # a link naming another environment wins
    at.run()
    assert shown(at) == "env: prod"
    at.query_params["env"] = "no-such-env"
    at.run()
    assert shown(at) == "env: default" and "env" not in at.query_params


@pytest.fixture
def two_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    default, staging = (seed(f"sqlite:///{tmp_path / name}.db") for name in ("a", "b"))
    monkeypatch.setenv("EVENTSCOPE_DB", default)
    monkeypatch.setenv("EVENTSCOPE_ENVIRONMENTS", json.dumps({"staging": staging}))
    monkeypatch.delenv("EVENTSCOPE_CATALOG", raising=False)
    return default, staging


def test_the_environment_survives_every_page_switch(two_stores: tuple[str, str]) -> None:
    """Staging chosen on the overview; every page switch without query parameters (what a
    sidebar click sends) still reads staging and puts it back in the URL."""
    _, staging = two_stores
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.switch_page("app_pages/overview.py").run()
    at.selectbox(key="env").select("staging").run()
    for name in ("failures", "graph", "lifecycle", "subscriptions", "contracts", "overview"):
        at.query_params.clear()
        at.switch_page(f"app_pages/{name}.py").run()
        assert not at.exception, name
        assert at.selectbox(key="env").value == "staging", name
        assert param(at, "env") == "staging", name
        assert at.session_state["eventscope_context"].url == staging, name


def test_the_root_opens_the_overview(two_stores: tuple[str, str]) -> None:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Overview"]


def test_the_server_pins_hosts_xsrf_and_cors() -> None:
    command = streamlit_command("127.0.0.1", 8600)
    hosts = [command[i + 1] for i, arg in enumerate(command) if arg == "--server.allowedHosts"]
    pairs = dict(zip(command[5::2], command[6::2]))
    assert hosts == ["localhost", "127.0.0.1", "::1"]
    assert pairs["--server.enableXsrfProtection"] == "true"
    assert pairs["--server.enableCORS"] == "true"
    assert allowed_hosts("10.0.0.5") == ["10.0.0.5"]
    assert allowed_hosts("0.0.0.0", ("dash.example.com",)) == ["dash.example.com"]


def test_a_wildcard_bind_needs_a_host_name() -> None:
    result = CliRunner().invoke(main, ["dashboard", "--host", "0.0.0.0", "--insecure-bind"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "--allowed-host" in lines[0]
    assert "Traceback" not in result.output


def test_preloading_the_pages_modules_logs_no_warning() -> None:
    """`serve.preload` runs before Streamlit's runtime exists: a cached loader decorated then
    logs "No runtime found" (26 of them at every start, before)."""
    done = subprocess.run([sys.executable, "-c", "from eventscope.dashboard.serve import preload;"
                           " preload()"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr and "No runtime" not in done.stderr


def test_the_undocumented_sample_payload_is_chosen_by_the_url(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """?sample=EVENT_ID picks that event's payload; choosing another writes it back."""
    monkeypatch.setenv("EVENTSCOPE_DB", seed(f"sqlite:///{tmp_path / 's.db'}"))
    monkeypatch.setenv("EVENTSCOPE_CATALOG",
                       str(ROOT / "tests" / "data" / "dashboard" / "catalog"))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["sample"] = "e4"
    at.switch_page("app_pages/undocumented.py").run()
    assert not at.exception
    box = at.selectbox(key="sample")
    assert box.value == "e4" and len(box.options) > 1
    first = box.options[0].split("(")[-1].rstrip(")")
    assert first != "e4"
    box.select(first).run()  # the default option is left out of the URL
    assert at.selectbox(key="sample").value == first and param(at, "sample") is None
    at.selectbox(key="sample").select("e4").run()
    assert param(at, "sample") == "e4"


def tokenising_script() -> None:
    import streamlit as st

    from eventscope.dashboard import ui

    value = ui.url_text("Order", "order", key="box",
                        to_url=lambda typed: "tok-" + str(len(typed.strip())))
    st.text(f"shown: {value}")


def test_url_text_puts_only_the_transformed_value_in_the_url() -> None:
    """What the user typed stays in the box; the URL gets `to_url` of it (the lifecycle's
    store form of an e-mail), and the box does not snap to the URL's form afterwards."""
    at = AppTest.from_function(tokenising_script).run()
    at.text_input(key="box").input("ann@example.com").run()
    assert param(at, "order") == "tok-15"
    assert "ann@example.com" not in str(at.query_params)
    at.run()
    assert at.text_input(key="box").value == "ann@example.com"


def big_table_script() -> None:
    import pandas as pd

    from eventscope.dashboard import ui

    ui.table(pd.DataFrame({"n": range(ui.SHOWN_ROWS + 5)}), "big")


def test_a_long_table_sends_its_first_rows_and_says_so() -> None:
    at = AppTest.from_function(big_table_script).run()
    assert len(at.dataframe[0].value) == 1_000
    assert "Showing the first 1,000 of 1,005 rows" in at.caption[0].value
