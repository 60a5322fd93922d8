"""How the benches run eventscope's commands: as a user's installed copy runs.

pip compiles a package's modules to bytecode when it installs it. A shell that sets
PYTHONDONTWRITEBYTECODE (this workplace's does) would make every command the benches start
compile eventscope's ~210 KB of source again (~20 % of `lifecycle`'s instructions, ~70 ms of
an ingest run's CPU), a cost no installed copy pays: `compile_sources` compiles the modules
once, and `installed_env` is the environment the commands run in.
"""

from __future__ import annotations

import compileall
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def compile_sources() -> None:
    """Compile eventscope's modules to bytecode, as installing the package does."""
    for folder in ("eventscope", "collectors", "dashboard"):
        compileall.compile_dir(str(ROOT / folder), quiet=1)


def installed_env(**extra: str) -> dict[str, str]:
    """This process's environment, with bytecode read and written, plus `extra`."""
    env = {**os.environ, **extra}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env
