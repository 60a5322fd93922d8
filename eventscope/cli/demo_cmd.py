"""`eventscope demo`: the simulated company on an emulated AWS, collected and shown end to end.

A thin Click layer over `eventscope.collectors.demo` (which owns the emulator, the company's
resources, the live producers and consumers, the collectors and the dashboard), plus `--no-aws`: the
same company written straight to NDJSON files by the simulator, for `eventscope ingest`.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from collections.abc import Iterable, Iterator
from typing import Any

import click

from eventscope.cli.options import echo_json
from eventscope.errors import EventscopeError
from eventscope.extras import require

DEFAULT_DB = "sqlite:///eventscope-demo.db"


@click.command()
@click.option("--rate", type=click.FloatRange(0.1, 50), default=3.0, show_default=True,
              help="Bus events per second while live.")
@click.option("--backfill", "backfill_h", type=click.FloatRange(0, 48), default=1.0,
              show_default=True, help="Hours of history generated fast at start.")
@click.option("--db", "db_url", default=DEFAULT_DB, show_default=True, metavar="URL",
              help="Store URL. The default demo file is recreated on every run.")
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True,
              help="Dashboard port on 127.0.0.1.")
@click.option("--duration", "duration_s", type=click.FloatRange(1), default=None,
              help="Run this many seconds live, then collect what is left and stop.")
@click.option("--no-dashboard", is_flag=True, help="Do not start the dashboard.")
@click.option("--seed", type=int, default=0, show_default=True, help="The company's seed.")
@click.option("--no-aws", is_flag=True,
              help="No emulator: write the company's events and logs as NDJSON to --out.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Directory for --no-aws files.")
@click.option("--events", "n_events", type=click.IntRange(1), default=5000, show_default=True,
              help="Bus events to write with --no-aws.")
@click.option("--json", "as_json", is_flag=True, help="Print the closing counters as JSON.")
def demo(rate: float, backfill_h: float, db_url: str, port: int, duration_s: float | None,
         no_dashboard: bool, seed: int, no_aws: bool, out_dir: Path | None, n_events: int,
         as_json: bool) -> None:
    """Run the demo company on an emulated AWS, collect it, and open the dashboard.

    Starts moto's server on 127.0.0.1, creates the bus `shop-bus` with the consumers' rules,
    queues and log groups, an archive and the tap; backfills --backfill hours of history;
    then publishes about --rate events/s while consumers log like Lambda functions, `collect
    all` stores everything, and the dashboard shows it. Ctrl-C stops it all.
    """
    if no_aws:
        _no_aws(out_dir, n_events, seed, as_json)
        return
    if out_dir is not None:
        raise click.UsageError("--out goes with --no-aws")
    _live(rate, backfill_h, db_url, port, duration_s, not no_dashboard, seed, as_json)


def _no_aws(out_dir: Path | None, n_events: int, seed: int, as_json: bool) -> None:
    from eventscope.simulator import DEMO_CATALOG, CompanyConfig, simulate, write_ndjson

    if out_dir is None:
        raise click.UsageError("--no-aws needs --out DIR")
    now = datetime.now(timezone.utc)
    config = CompanyConfig.demo()
    arrivals = timedelta(minutes=n_events / 6.5 / config.orders_per_minute)
    start = now - arrivals - timedelta(days=3)  # the N-th event falls in the past
    items = simulate(config, seed=seed, start=start, n_events=2 * n_events)
    summary = write_ndjson(first_events(items, n_events, int(now.timestamp() * 1000)), out_dir)
    result = {"events": summary.events, "logs": summary.logs,
              "events_path": str(summary.events_path), "logs_path": str(summary.logs_path),
              "catalog": str(DEMO_CATALOG)}
    if as_json:
        echo_json(result)
        return
    click.echo(f"wrote {summary.events} events to {summary.events_path} and {summary.logs} "
               f"log records to {summary.logs_path}")
    click.echo(f"next: eventscope ingest {summary.events_path} {summary.logs_path} --db "
               f"{DEFAULT_DB} --catalog {DEMO_CATALOG} && eventscope dashboard --db {DEFAULT_DB} "
               f"--catalog {DEMO_CATALOG}")


def first_events(items: Iterable[Any], n_events: int, now_ms: int) -> Iterator[Any]:
    """The simulation's items up to its `n_events`-th bus event, none later than `now_ms`."""
    seen = 0
    for item in items:
        if item.time_ms > now_ms or (item.kind == "event" and seen == n_events):
            return
        seen += item.kind == "event"
        yield item


def _live(rate: float, backfill_h: float, db_url: str, port: int, duration_s: float | None,
          dashboard: bool, seed: int, as_json: bool) -> None:
    require("demo", "boto3", "moto", "flask", *(("streamlit", "plotly") if dashboard else ()))
    from eventscope.collectors.demo import DemoOptions, run_demo
    from eventscope.cli.collect_cmd import _stop_on_signals
    from eventscope.store import open_store

    if db_url == DEFAULT_DB:
        _remove_sqlite(db_url)
    options = DemoOptions(rate=rate, backfill_s=backfill_h * 3600, db_url=db_url, port=port,
                          duration_s=duration_s, dashboard=dashboard, seed=seed)
    store = open_store(db_url)
    stop = threading.Event()
    began = time.monotonic()
    with _stop_on_signals(stop):
        counters = run_demo(options, store, stop, echo=lambda line: click.echo(line, err=True))
    result: dict[str, Any] = {**counters.as_dict(), "seconds": round(time.monotonic() - began, 1)}
    if as_json:
        echo_json(result)
    else:
        click.echo(" ".join(f"{k}={v}" for k, v in result.items()
                            if isinstance(v, (int, float))))
        click.echo("stored: " + " ".join(f"{k}={v}" for k, v in counters.collected.items()))


def _remove_sqlite(url: str) -> None:
    """Start the default demo store afresh: a new emulator means new event ids."""
    path = url.removeprefix("sqlite:///")
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise EventscopeError(f"cannot remove the old demo store {path}: {exc}") from None
