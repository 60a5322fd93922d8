"""The optional parts of the installation (`pip install "eventscope[x]"`) and the one check
that says which one a command needs when it is missing.

The core (ingest, catalog, findings, contracts, the CLI) installs with `pip install
eventscope`; AWS, the dashboard, PostgreSQL and the live demo bring heavy stacks and come as
extras (see pyproject.toml). `require` looks the modules up without importing them, so a
guard costs nothing when the extra is installed; `missing_extra` names the extra behind an
import that failed anyway, so the CLI says which one to install wherever the import happens.
"""

from __future__ import annotations

from importlib.util import find_spec

from eventscope.errors import EventscopeError


# The top-level modules each extra brings that eventscope imports itself.
EXTRA_OF_MODULE: dict[str, str] = {
    "boto3": "aws", "botocore": "aws",
    "streamlit": "dashboard", "plotly": "dashboard",
    "psycopg": "postgres",
    "moto": "demo", "flask": "demo",
}


class MissingExtra(EventscopeError):
    """A feature needs an extra that is not installed; the message says how to install it."""

    def __init__(self, extra: str, module: str, feature: str = "this command") -> None:
        self.extra, self.module = extra, module
        super().__init__(self.needed_by(feature))

    def needed_by(self, feature: str) -> str:
        """One line: FEATURE needs the extra, and the pip command that installs it."""
        return f'{feature} needs the {self.extra} extra: pip install "eventscope[{self.extra}]"'


def installed(module: str) -> bool:
    """Whether MODULE can be imported (looked up, not imported)."""
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a blocked finder
        return False


def require(extra: str, *modules: str, feature: str = "this command") -> None:
    """Raise `MissingExtra` unless every one of MODULES is installed."""
    for module in modules:
        if not installed(module):
            raise MissingExtra(extra, module, feature)


def missing_extra(error: ModuleNotFoundError) -> MissingExtra | None:
    """The `MissingExtra` behind a failed import, or None when no extra brings that module."""
    top = (error.name or "").partition(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    return MissingExtra(extra, top) if extra else None
