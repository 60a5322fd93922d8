"""The `eventscope` command line: a thin Click layer over the library.

Owns the command group and the exit-status contract every command keeps:

- 0: done, nothing wrong found;
- 1: a check or gate found problems (`check`, `contracts verify`, `catalog validate` ...);
- 2: a usage or input error: Click's own usage errors, and a user's mistake
  (`EventscopeError`, or a file the system cannot read or write) printed as one line
  `error: ...` on stderr, no traceback;
- 3: an internal error (any other exception): one line on stderr naming the log file that
  holds the traceback, written to a new file in the system's temporary directory.

Commands live in the modules of this package, named in `COMMANDS` below and imported when
used; their shared options are in `eventscope.cli.options`. `run` is the process entry (the
console script, `python -m eventscope`): it sets the process up (`lean_process`), runs
`main`, the group tests invoke, and ends the process quickly (`quick_exit`).
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import unicodedata
from collections.abc import Mapping, MutableMapping
from typing import Any, NoReturn

import click

from eventscope.errors import EventscopeError
from eventscope.extras import MissingExtra, missing_extra


# Each command's module is imported only when that command runs (or help lists it), so a
# quick `eventscope ingest` does not pay for pandas, the findings and the dashboard.
COMMANDS: dict[str, str] = {
    "ingest": "ingest_cmd:ingest",
    "stats": "ingest_cmd:stats",
    "catalog": "catalog_cmd:catalog",
    "contracts": "catalog_cmd:contracts",
    "graph": "findings_cmd:graph",
    "failures": "findings_cmd:failures",
    "lifecycle": "findings_cmd:lifecycle",
    "undocumented": "findings_cmd:undocumented",
    "subscriptions": "findings_cmd:subscriptions",
    "duplicates": "findings_cmd:duplicates",
    "latency": "findings_cmd:latency",
    "check": "findings_cmd:check",
    "dashboard": "dashboard_cmd:dashboard",
    "tap": "collect_cmd:tap",
    "logs": "logs_cmd:logs",
    "collect": "collect_cmd:collect",
    "replay": "collect_cmd:replay",
    "demo": "demo_cmd:demo",
    "prune": "prune_cmd:prune",
    "deploy": "deploy_cmd:deploy",
}

# The command list of `eventscope --help`, so help imports no command module (the catalog
# and findings modules pull in SQLAlchemy and jsonschema). tests/test_cli_imports.py checks
# that each line is the command's own first docstring line and that every command has one.
SHORT_HELP: dict[str, str] = {
    "catalog": "Check and compare the event catalog (events, consumers, lifecycles).",
    "check": "Run every finding against thresholds; exit 1 when any is at or above `fail_on`.",
    "collect": "Collect from AWS into the store: the bus tap, consumer logs, bus rules, or all.",
    "contracts": "Verify consumer contracts against schemas, examples and stored traffic.",
    "dashboard": "Open the dashboard (Streamlit) over the store, on http://HOST:PORT.",
    "demo": "Run the demo company on an emulated AWS, collect it, and open the dashboard.",
    "deploy": "Deploy the collectors on AWS Lambda with CloudFormation.",
    "duplicates": "Events delivered or processed more than once per consumer; producer re-sends.",
    "failures": "Failure rates per consumer x event type x version, final failures, top errors.",
    "graph": "Producers -> event types -> consumers, each edge declared / subscribed / observed.",
    "ingest": "Read NDJSON files of bus events and consumer log records into the store.",
    "latency": "Event -> consumer latency per (detail-type, consumer): p50/p95/max to the first "
               "invocation and to the first success.",
    "lifecycle": "Every event of one order (QUERY: order id, event id, or key prefix) with "
                 "outcomes.",
    "logs": "Push Lambda logs to eventscope: subscription filters towards its handler.",
    "prune": "Delete what is older than the store's retention, in batches; print what was freed.",
    "replay": "Re-trigger stored events on the bus, or for one consumer (dry run unless --yes).",
    "stats": "Print counts of what the store holds: events, types, invocations by outcome.",
    "subscriptions": "Missing subscriptions to cancellations: from the catalog and from the data.",
    "tap": "Install or remove the bus tap (an SQS queue fed by a match-all rule).",
    "undocumented": "Events seen on the bus that the catalog does not document (needs --catalog).",
}


EXIT_OK, EXIT_FOUND, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def write_crash_log(error: BaseException, command: str | None) -> str:
    """The path of a new file (private, unique, in the temporary directory) holding the
    traceback of ERROR. Nothing from the input chooses where it is written."""
    import tempfile  # here, not at start-up: only a crash needs them (~10 ms of imports)
    import traceback
    handle, path = tempfile.mkstemp(prefix="eventscope-crash-", suffix=".log")
    with open(handle, "w", encoding="utf-8") as log:
        log.write(f"eventscope {command or '?'}\n")  # the command's name, not its arguments
        log.write("".join(traceback.format_exception(error)))
    return path


def one_line(text: str) -> str:
    """TEXT as one printable line: line breaks become spaces, other control characters
    (terminal escapes from a hostile file name or payload) '?'."""
    joined = " ".join(text.splitlines())
    return "".join(c if unicodedata.category(c)[0] != "C" else "?" for c in joined)


def user_error(message: str) -> NoReturn:
    """Exit 2 with the user's mistake as one line on stderr."""
    click.echo("error: " + one_line(message), err=True)
    sys.exit(EXIT_USAGE)


def internal_error(error: BaseException, command: str | None) -> NoReturn:
    """Exit 3 with one line: what broke and where its traceback is."""
    first = one_line((str(error).splitlines() or [""])[0])[:200]
    what = f"{type(error).__name__}: {first}" if first else type(error).__name__
    try:
        where = f"the traceback is in {write_crash_log(error, command)}"
    except OSError as exc:
        where = f"no traceback log could be written ({exc.strerror})"
    click.echo(f"error: internal error ({what}); {where}. Please report it.", err=True)
    sys.exit(EXIT_INTERNAL)


class _Group(click.Group):
    """The top-level group: lazily loaded commands and the exit-status contract."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from SHORT_HELP (a command missing there is imported for its
        own help), cut to the terminal's width as Click does."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            listed = SHORT_HELP.get(name)
            command = (self.get_command(ctx, name) if listed is None
                       else click.Command(name, help=listed))
            rows.append((name, command.get_short_help_str(limit) if command else ""))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name].split(":")
        command: click.Command = getattr(importlib.import_module(f"eventscope.cli.{module}"),
                                         attribute)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Abort,
                click.exceptions.Exit, BrokenPipeError):
            raise  # Click's usage errors exit 2; Click handles the others
        except MissingExtra as error:
            user_error(error.needed_by(f"eventscope {ctx.invoked_subcommand}"))
        except ModuleNotFoundError as error:  # an optional stack imported without its guard
            needed = missing_extra(error)
            if needed is None:
                internal_error(error, ctx.invoked_subcommand)
            user_error(needed.needed_by(f"eventscope {ctx.invoked_subcommand}"))
        except EventscopeError as error:
            user_error(str(error))
        except OSError as error:
            if error.filename is None:  # not about a file the user named: ours to fix
                internal_error(error, ctx.invoked_subcommand)
            user_error(f"{error.strerror or error}: {error.filename}")
        except Exception as error:  # noqa: BLE001 - the contract: any other exception is ours
            internal_error(error, ctx.invoked_subcommand)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="eventscope")
def main() -> None:
    """eventscope: see what really happens on your event bus."""


def run() -> None:
    """The console script and `python -m eventscope`: `main` in a process of its own, set up
    for a short command first (`lean_process`) and ended quickly (`quick_exit`). Tests call
    `main` (Click's runner) instead."""
    lean_process(os.environ, sys.modules)
    try:
        main()
    finally:
        quick_exit(sys.modules)


def quick_exit(modules: Mapping[str, Any]) -> None:
    """What a CLI process does once its command is done (whatever its exit status), before
    the interpreter shuts down:

    - closes the connections of the stores it opened (`store.close_engines`; nothing to do,
      and nothing imported, when it opened none);
    - moves every object left into the garbage collector's permanent generation
      (`gc.freeze`). The shutdown's collection then skips the hundreds of thousands of
      objects that importing pandas, numpy and SQLAlchemy made: 0.06-0.2 s of a command run
      end to end (paired on the findings bench's 1M store; README, Performance). That
      collection is also what closed the stores' connections (their engines end in
      reference cycles), hence the first step: a SQLite store's -wal and -shm files are
      still removed at exit.

    Files, atexit handlers and objects freed by reference counting are finalised as before.
    """
    store = modules.get("eventscope.store")
    if store is not None:
        store.close_engines()
    gc.freeze()


def lean_process(environ: MutableMapping[str, str], modules: MutableMapping[str, Any]) -> None:
    """What a CLI process needs less of, set before anything imports numpy or pandas:

    - no OpenBLAS thread pool (`OPENBLAS_NUM_THREADS=1` unless set): numpy starts one thread
      per core at import, ~50 ms on a busy machine, and no command does linear algebra;
    - pandas without pyarrow: pandas imports pyarrow whenever it is installed (~80 ms) and
      then backs its string columns with it, while no command reads or writes Arrow data.
      pyarrow comes with the dashboard extra only, so this is how the core install runs
      anyway. The dashboard runs in a process of its own (`eventscope dashboard` execs it)
      and keeps pyarrow. Nothing is hidden once pandas or pyarrow is loaded (an embedding
      process's choice stands).
    """
    environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if "pandas" not in modules and "pyarrow" not in modules:
        modules["pyarrow"] = None  # `import pyarrow` raises ImportError, as if not installed
