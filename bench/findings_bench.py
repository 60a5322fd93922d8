"""Findings benchmark: the order lifecycle and every finding on the ingest bench's 1M store.

Reads the store `bench/bench_store.py` builds once from the ingest bench's data set (default
1,000,000 events of ~1 KB over 30 detail-types and ~3.45M Lambda log records, which make
~0.83M invocations of 6 functions), then prints one line per figure: value, target, met or
missed.

- Lifecycle in process: `read.find_orders` + `read.lifecycle` (what both faces call) for 50
  orders drawn at random, median and p95, warm engine; beside it the peer, the same two index
  reads in plain `sqlite3`, and the ratio. Target 5 ms.
- Every findings command in process (`--json`, through the `python -m eventscope` entry
  point run in this process, findings modules imported first): each run opens its own
  store, so its connection and SQLite page cache start cold (the OS file cache does not). Target 1
  s each.
- Every command end to end: `python -m eventscope CMD --json` as a new process, start-up
  included, wall and CPU seconds, with eventscope's modules compiled to bytecode first as an
  install does (and PYTHONDONTWRITEBYTECODE dropped for the commands). Target 0.3 s for
  `lifecycle`, 1 s for the findings.

Each command runs in its own child process with a timeout (`--timeout`, default 120 s): a
command that takes longer is reported as missed, and the bench goes on. Medians of
`--runs` (default 3) runs; CPU seconds are given beside wall seconds, as the machines these
run on are often shared. Usage:

    .venv/bin/python bench/findings_bench.py                 # 1M events (builds the store once)
    .venv/bin/python bench/findings_bench.py --events 50000  # a quick run
    .venv/bin/python bench/findings_bench.py --out /data/bench-data   # where data and store live
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import runpy
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_store import ensure_store, machine_line, verdict_line  # noqa: E402
from installed import compile_sources, installed_env  # noqa: E402

LIFECYCLE_TARGET_S = 0.005
LIFECYCLE_CLI_TARGET_S = 0.3
FINDING_TARGET_S = 1.0
COMMANDS = ["failures", "check", "graph", "subscriptions", "duplicates", "latency",
            "undocumented"]
LOOKUPS = 50


def sample_keys(db: Path, count: int, seed: int = 1) -> list[str]:
    """`count` correlation keys of events drawn at random (by rowid: index reads)."""
    with sqlite3.connect(db) as conn:
        top = conn.execute("SELECT max(rowid) FROM events").fetchone()[0] or 0
        rng, keys = random.Random(seed), []
        while len(keys) < count and top:
            row = conn.execute("SELECT correlation_key FROM events WHERE rowid = ?",
                               (rng.randint(1, top),)).fetchone()
            if row and row[0] and row[0] not in keys:
                keys.append(row[0])
    return keys


# --------------------------------------------------------------------------- child processes

def child_lifecycle(url: str, keys: list[str]) -> dict[str, float]:
    """In this process: the lifecycle lookups through the read model, and the sqlite3 peer."""
    from eventscope.findings import read
    from eventscope.store import open_store
    conn = sqlite3.connect(url.removeprefix("sqlite:///"))
    _peer_lookups(conn, keys)  # every order's pages read once: both sides time cached reads
    engine = open_store(url, must_exist=True).engine
    read.lifecycle(engine, read.find_orders(engine, keys[0])[0])  # first use: compile, connect
    ours = []
    for key in keys:
        began = time.perf_counter()
        found = read.find_orders(engine, key)
        life = read.lifecycle(engine, found[0])
        ours.append(time.perf_counter() - began)
        assert life["key"] == key and life["events"], key
    fresh = []
    for key in keys[:10]:
        began = time.perf_counter()
        engine = open_store(url, must_exist=True).engine
        read.lifecycle(engine, read.find_orders(engine, key)[0])
        fresh.append(time.perf_counter() - began)
        engine.dispose()
    peer = _peer_lookups(conn, keys)
    return {"median": statistics.median(ours), "p95": sorted(ours)[int(0.95 * len(ours))],
            "fresh_median": statistics.median(fresh), "peer_median": statistics.median(peer)}


def _peer_lookups(conn: sqlite3.Connection, keys: list[str]) -> list[float]:
    """The peer: plain sqlite3 reading each order's events and their invocations by index."""
    times = []
    for key in keys:
        began = time.perf_counter()
        rows = conn.execute("SELECT id, source, detail_type, time_ms, version FROM events "
                            "WHERE correlation_key = ?", (key,)).fetchall()
        ids = [row[0] for row in rows]
        conn.execute("SELECT request_id, start_ms, consumer, event_id, outcome, duration_ms, "
                     "error_type, error_message FROM invocations WHERE event_id IN "
                     f"({','.join('?' * len(ids))})", ids).fetchall()
        times.append(time.perf_counter() - began)
    return times


def child_command(url: str, command: list[str], runs: int) -> dict[str, float]:
    """In this process: `eventscope COMMAND --db URL --json` `runs` times through the entry
    point `python -m eventscope` runs (the findings modules imported first), each run with
    its own store, output discarded; medians of wall and CPU seconds."""
    from eventscope.findings import (check, duplicates, graph, latency, read, subscriptions,
                                     summaries, undocumented)
    del check, duplicates, graph, latency, read, subscriptions, summaries
    del undocumented  # imported only so that the runs below do not pay for imports
    walls, cpus = [], []
    for _ in range(runs):
        sys.argv = ["eventscope", *command, "--db", url, "--json"]
        began, cpu = time.perf_counter(), time.process_time()
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            try:
                runpy.run_module("eventscope", run_name="__main__", alter_sys=True)
                status = 0
            except SystemExit as done:
                status = done.code if isinstance(done.code, int) else 0
        walls.append(time.perf_counter() - began)
        cpus.append(time.process_time() - cpu)
        if status not in (0, 1):
            raise SystemExit(f"{command}: exit {status}")
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus)}


def in_child(argv: list[str], timeout: float) -> dict[str, float] | None:
    """This script run as a child with `argv`; its JSON answer, None when it timed out."""
    try:
        done = subprocess.run([sys.executable, __file__, *argv], capture_output=True,
                              text=True, timeout=timeout, check=False, env=_env())
    except subprocess.TimeoutExpired:
        return None
    if done.returncode:
        raise SystemExit(f"{argv}: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def end_to_end(url: str, command: list[str], runs: int, timeout: float
               ) -> dict[str, float] | None:
    """`python -m eventscope COMMAND --db URL --json` as new processes: medians of wall and
    CPU seconds (its children included); None when a run timed out."""
    walls, cpus = [], []
    for _ in range(runs):
        _children_cpu_delta()  # children reaped before this run are not counted
        began = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "eventscope", *command, "--db", url,
                                 "--json"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=_env())
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None
        walls.append(time.perf_counter() - began)
        cpus.append(_children_cpu_delta())
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus)}


_LAST_CHILDREN_CPU = [0.0]


def _children_cpu_delta() -> float:
    """CPU seconds of the children reaped since the last call."""
    times = os.times()
    total = times.children_user + times.children_system
    delta, _LAST_CHILDREN_CPU[0] = total - _LAST_CHILDREN_CPU[0], total
    return delta


def _env() -> dict[str, str]:
    """The commands' environment: an installed user's (`installed.installed_env`), with no
    catalog from this shell."""
    env = installed_env(PYTHONPATH=str(ROOT))
    env.pop("EVENTSCOPE_CATALOG", None)
    return env


# --------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out",
                        help="where the data files and the store are (built once)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds a command may take before it counts as missed")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        kind, url, *rest = args.child
        answer = (child_lifecycle(url, rest) if kind == "lifecycle"
                  else child_command(url, rest, args.runs))
        print(json.dumps(answer))
        return 0
    began = time.perf_counter()
    url, facts = ensure_store(args.out, args.events, args.seed)
    print(machine_line())
    print(f"store: {facts['events']:,} events (mean {facts['event_bytes_mean']} B, "
          f"{facts['detail_types']} detail-types), {facts['invocations']:,} invocations of "
          f"{facts['functions']} functions (from {facts['log_records']:,} log records); "
          f"ready in {time.perf_counter() - began:.0f} s")
    keys = sample_keys(Path(url.removeprefix("sqlite:///")), LOOKUPS)
    _children_cpu_delta()
    life = in_child(["--child", "lifecycle", url, *keys], args.timeout)
    peer = life and life["peer_median"]
    print(verdict_line(f"lifecycle in process (median of {len(keys)})",
                       life and life["median"], LIFECYCLE_TARGET_S, "ms",
                       f"p95 {life['p95'] * 1000:.2f} ms; sqlite3 peer {peer * 1000:.2f} ms, "
                       f"ours / peer {life['median'] / peer:.1f}x" if life else "timed out"))
    print(verdict_line("lifecycle in process, new engine per lookup", life and
                       life["fresh_median"], LIFECYCLE_TARGET_S, "ms", "median of 10"))
    compile_sources()
    cli = end_to_end(url, ["lifecycle", keys[0]], args.runs, args.timeout)
    floor = end_to_end(url, ["--version"], args.runs, args.timeout)
    print(verdict_line("eventscope lifecycle, end to end", cli and cli["wall"],
                       LIFECYCLE_CLI_TARGET_S, "s",
                       f"CPU {cli['cpu']:.3f} s; `eventscope --version` {floor['wall']:.3f} s"
                       if cli and floor else "timed out"))
    for command in COMMANDS:
        bound = args.timeout * args.runs
        inside = in_child(["--runs", str(args.runs), "--child", "command", url, command], bound)
        print(verdict_line(f"{command}, in process", inside and inside["wall"],
                           FINDING_TARGET_S, "s", f"CPU {inside['cpu']:.3f} s" if inside
                           else f"timed out after {bound:.0f} s"))
        outside = end_to_end(url, [command], args.runs, args.timeout)
        print(verdict_line(f"eventscope {command}, end to end", outside and outside["wall"],
                           FINDING_TARGET_S, "s", f"CPU {outside['cpu']:.3f} s" if outside
                           else f"timed out after {args.timeout:.0f} s"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
