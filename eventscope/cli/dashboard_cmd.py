"""`eventscope dashboard`: start the Streamlit dashboard over a store, bound to localhost.

Binding to a non-local address is refused unless login is configured (`[auth]` in a
secrets.toml Streamlit reads) or `--insecure-bind` says the network in front is trusted.

Runs `python -m eventscope.dashboard.serve run dashboard/app.py` (Streamlit's command line after
importing the pages' modules; the app found next to the installed `eventscope.dashboard` package,
so it works from any directory) headless, with error details hidden
from users and usage statistics off; the store, catalog and extra environments reach the
app through environment variables.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.util import find_spec
from pathlib import Path

import click
import sqlalchemy as sa

from eventscope.cli.options import db_option
from eventscope.dashboard.access import is_local_address, login_configured, secrets_files
from eventscope.errors import EventscopeError
from eventscope.extras import require
from eventscope.lifetime import die_with_parent_named
from eventscope.store import resolve_url


def app_path() -> Path:
    """The dashboard's app.py, located through the `eventscope.dashboard` package."""
    spec = find_spec("eventscope.dashboard")
    if spec is None or not spec.submodule_search_locations:
        raise EventscopeError("the dashboard package is not installed with this eventscope")
    path = Path(list(spec.submodule_search_locations)[0]) / "app.py"
    if not path.is_file():
        raise EventscopeError(f"dashboard app not found at {path}")
    return path


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "[::]")


def allowed_hosts(host: str, named: tuple[str, ...] = ()) -> list[str]:
    """The Host header values the server accepts (DNS-rebinding guard): the names given with
    --allowed-host, else the bound host (any loopback name for a loopback address)."""
    if named:
        return list(dict.fromkeys(named))
    if is_local_address(host):
        return list(LOOPBACK_NAMES)
    return [host.strip("[]")]


def streamlit_command(host: str, port: int, hosts: list[str] | None = None) -> list[str]:
    """The streamlit command line (through `eventscope.dashboard.serve`, which imports the pages'
    modules first): headless, bound to `host`, no error details, no telemetry; the Host
    allow-list pinned (`hosts`, default `allowed_hosts(host)`), XSRF protection and CORS
    (same origin only) on whatever a config file says."""
    pinned = [arg for name in (hosts or allowed_hosts(host))
              for arg in ("--server.allowedHosts", name)]
    return [sys.executable, "-m", "eventscope.dashboard.serve", "run", str(app_path()),
            "--server.address", host, "--server.port", str(port), *pinned,
            "--server.enableXsrfProtection", "true", "--server.enableCORS", "true",
            "--server.headless", "true", "--server.fileWatcherType", "none",
            "--server.runOnSave", "false", "--client.showErrorDetails", "none",
            "--client.toolbarMode", "viewer", "--browser.gatherUsageStats", "false",
            "--global.developmentMode", "false"]


def parse_environments(values: tuple[str, ...]) -> dict[str, str]:
    """{name: url} from NAME=URL options."""
    named = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not name or not url:
            raise click.BadParameter(f"{value!r} is not NAME=URL", param_hint="--env")
        named[name] = url
    return named


@click.command()
@db_option
@click.option("--catalog", "catalog_path", metavar="PATH", envvar="EVENTSCOPE_CATALOG",
              default=None, help="Catalog directory or file. Also $EVENTSCOPE_CATALOG.")
@click.option("--env", "environments", multiple=True, metavar="NAME=URL",
              help="Another bus / environment's store, selectable in the sidebar (repeatable).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. A non-local one needs login configured ([auth] in "
                   ".streamlit/secrets.toml) or --insecure-bind.")
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
@click.option("--allowed-host", "hosts", multiple=True, metavar="NAME",
              help="A host name users reach the dashboard by (repeatable); other Host headers "
                   "are refused. Default: the bound host. Needed with a wildcard --host.")
@click.option("--insecure-bind", is_flag=True,
              help="Bind to a non-local address without login (behind an authenticating "
                   "proxy): anyone reaching the port sees every payload.")
def dashboard(db_url: str | None, catalog_path: str | None, environments: tuple[str, ...],
              host: str, port: int, hosts: tuple[str, ...], insecure_bind: bool) -> None:
    """Open the dashboard (Streamlit) over the store, on http://HOST:PORT."""
    require("dashboard", "streamlit", "plotly")
    if not is_local_address(host) and not insecure_bind and not login_configured(
            secrets_files(app_path().parent)):
        raise EventscopeError(f"--host {host} is not a local address and no login is "
                               "configured ([auth] in .streamlit/secrets.toml): refusing to "
                               "serve payloads to the network; pass --insecure-bind if a "
                               "proxy in front authenticates")
    if host in WILDCARD_ADDRESSES and not hosts:
        raise EventscopeError(f"--host {host} accepts connections for any host name: name the "
                              "one users reach it by with --allowed-host NAME")
    if catalog_path and not Path(catalog_path).exists():
        raise EventscopeError(f"no catalog at {catalog_path}")
    if insecure_bind and not is_local_address(host):  # once it is sure to start
        click.echo(f"warning: serving on {host} without login (--insecure-bind)", err=True)
    env = dict(os.environ, EVENTSCOPE_DB=resolve_url(db_url))
    if catalog_path:
        env["EVENTSCOPE_CATALOG"] = str(Path(catalog_path).resolve())
    if environments:
        env["EVENTSCOPE_ENVIRONMENTS"] = json.dumps(parse_environments(environments))
    shown = sa.engine.make_url(env["EVENTSCOPE_DB"]).render_as_string(hide_password=True)
    click.echo(f"eventscope dashboard on http://{host}:{port} (store {shown})", err=True)
    command = streamlit_command(host, port, allowed_hosts(host, hosts))
    die_with_parent_named(env)  # started by a demo: end with it, however it ends
    # The server replaces this process, so a SIGTERM or Ctrl-C sent to `eventscope dashboard`
    # reaches Streamlit itself and nothing is left running behind it.
    os.execve(command[0], command, env)
