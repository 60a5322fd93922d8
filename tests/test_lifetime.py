"""Children that die with their parent: the dashboard a demo starts ends with the demo even
when the demo is killed with SIGKILL (it runs in its own session, beyond Ctrl-C's reach, and
held the demo's port afterwards)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eventscope.lifetime import PARENT_ENV, die_with_parent_named
from eventscope.store import open_store

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="PR_SET_PDEATHSIG is Linux's")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_demos_dashboard_ends_when_the_demo_is_killed(tmp_path: Path) -> None:
    """The demo's `launch_dashboard` in a process then killed with SIGKILL: the dashboard
    (healthy before) is gone within seconds. (Whether its port is free is not asserted:
    once freed, another test's server may take it.)"""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    open_store(url).engine.dispose()
    port = _free_port()
    script = ("import time\n"
              "from eventscope.collectors.demo import launch_dashboard, wait_healthy\n"
              f"child = launch_dashboard({url!r}, None, {port})\n"
              f"wait_healthy(child, {port})\n"
              "print(child.pid, flush=True)\n"
              "time.sleep(600)\n")
    demo = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert demo.stdout is not None
        dashboard = int(demo.stdout.readline())
        assert _alive(dashboard)
    finally:
        demo.kill()
        demo.wait()
    deadline = time.monotonic() + 15
    while _alive(dashboard) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(dashboard):  # leave nothing behind, then fail
        os.killpg(dashboard, 9)
        pytest.fail("the dashboard outlived the demo that started it")


def test_only_a_pid_names_the_parent_and_the_name_is_not_passed_on() -> None:
    """The variable is removed from the environment handed on; a value that is not a pid
    asks for nothing (this test process is still running afterwards)."""
    environ = {PARENT_ENV: "not-a-pid", "OTHER": "kept"}
    die_with_parent_named(environ)
    assert environ == {"OTHER": "kept"}
