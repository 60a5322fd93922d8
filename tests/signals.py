"""Signals sent the way the kernel may deliver them: to a process's thread other than its main one.

A signal sent to a process goes to any of its threads that does not block it; Python runs the
handler only when the main thread next executes bytecode. `signal_another_thread` makes that
case happen on purpose (Linux's tgkill), for the tests of the long-running commands' stop.
"""

from __future__ import annotations

import ctypes
import os
import sys

import pytest

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="tgkill and /proc/PID/task are Linux's")


def signal_another_thread(pid: int, signum: int) -> int:
    """Send `signum` to one of process `pid`'s threads other than its main thread; that
    thread's id. Raises AssertionError when the process has no other thread."""
    libc = ctypes.CDLL(None, use_errno=True)
    for tid in sorted(int(name) for name in os.listdir(f"/proc/{pid}/task")):
        if tid != pid and libc.tgkill(pid, tid, signum) == 0:
            return tid
    raise AssertionError(f"process {pid} has no thread besides its main thread")
