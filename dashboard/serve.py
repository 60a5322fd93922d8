"""`python -m eventscope.dashboard.serve run dashboard/app.py [options]`: Streamlit's own command
line in a process that imports what the pages need (pandas, Plotly, networkx, the findings
modules) while the server starts, so the first page viewed after a start does not pay those
imports (about two seconds on two cores). `eventscope dashboard` starts the server this way.

The imports run in a background thread started before the server: the server answers (and
the browser downloads and starts the app's JavaScript) meanwhile. The app's first script run
waits for them (`wait_preloaded`) instead of importing the same modules at the same time from
another thread.

The modules holding `st.cache_data` / `st.cache_resource` functions (`data`, and `ui` which
imports it) are not preloaded: decorating outside a running Streamlit runtime logs "No runtime
found" once per cached function. Their own bodies are cheap; what they import is preloaded.
"""

from __future__ import annotations

import logging
import sys
import threading

PRELOADED = threading.Event()
PRELOADED.set()  # nothing to wait for unless `preload_in_background` started
log = logging.getLogger("eventscope.dashboard")


def preload() -> None:
    """Import the modules every page's first run would import."""
    import plotly.graph_objects  # noqa: F401

    import eventscope.dashboard.figures  # noqa: F401
    import eventscope.dashboard.views  # noqa: F401
    from eventscope.findings import (deprecated, duplicates, graph, lifecycle,  # noqa: F401
                                     load, payloads, read, subscriptions, summaries,
                                     undocumented)


def preload_in_background() -> None:
    """Start `preload` in a daemon thread; `wait_preloaded` returns once it is done."""
    PRELOADED.clear()

    def run() -> None:
        try:
            preload()
        except Exception:  # noqa: BLE001 - the page's own import will raise it with context
            log.exception("preloading the dashboard's modules failed")
        finally:
            PRELOADED.set()

    threading.Thread(target=run, name="eventscope-preload", daemon=True).start()


def wait_preloaded(timeout_s: float = 120.0) -> None:
    """Block until a background preload (if any) is done."""
    PRELOADED.wait(timeout_s)


def main() -> int:
    from streamlit.web import cli

    # Through the package's module, not this `__main__` copy: app.py waits on that one.
    from eventscope.dashboard import serve

    serve.preload_in_background()
    status: int = cli.main(prog_name="streamlit")
    return status


if __name__ == "__main__":
    sys.exit(main())
