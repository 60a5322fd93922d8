"""Child processes that die with their parent: Linux's `PR_SET_PDEATHSIG`.

Owns asking the kernel to kill this process when the thread that started it ends, however
it ends (a `kill -9` runs no cleanup, so a parent cannot stop its children then). Used by
ingest's parsing workers and by the dashboard a demo starts (which runs in its own session,
so the demo can stop it with its streamlit server as one group).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # prctl(2)
PARENT_ENV = "EVENTSCOPE_DIE_WITH_PARENT"  # a pid: `die_with_parent_named` reads it


def die_with_parent(parent: int | None) -> None:
    """Ask Linux to kill this process when the thread that started it ends, even by kill -9;
    exit at once if `parent` (its pid, when given) is already gone. Elsewhere nothing is
    done: a child notices only when it next talks to its parent."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def die_with_parent_named(environ: dict[str, str]) -> None:
    """`die_with_parent` for a process whose starter named itself in `PARENT_ENV` (removed
    from `environ`, so this process's own children do not inherit it); a value that is
    not a pid is ignored."""
    named = environ.pop(PARENT_ENV, "")
    if named.isdigit():
        die_with_parent(int(named))
