"""`python -m eventscope.dashboard.serve run dashboard/app.py [options]`: Streamlit's own command
line in a process that has already imported what the pages need (pandas, Plotly, networkx, the
findings modules), so the first page viewed after the server starts does not pay those imports
(about a second on two cores). `eventscope dashboard` starts the server this way.

The modules holding `st.cache_data` / `st.cache_resource` functions (`data`, and `ui` which
imports it) are not preloaded: decorating outside a running Streamlit runtime logs "No runtime
found" once per cached function. Their own bodies are cheap; what they import is preloaded.
"""

from __future__ import annotations

import sys


def preload() -> None:
    """Import the modules every page's first run would import."""
    import plotly.graph_objects  # noqa: F401

    import eventscope.dashboard.figures  # noqa: F401
    import eventscope.dashboard.views  # noqa: F401
    from eventscope.findings import (deprecated, duplicates, graph, lifecycle,  # noqa: F401
                                     load, payloads, read, subscriptions, summaries,
                                     undocumented)


def main() -> int:
    from streamlit.web import cli

    preload()
    status: int = cli.main(prog_name="streamlit")
    return status


if __name__ == "__main__":
    sys.exit(main())
