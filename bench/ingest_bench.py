"""Ingest benchmark: `eventscope ingest` against sqlite-utils and a raw sqlite3 floor.

Owns the ingest benchmark: it generates (once, cached in bench/out/) the bench company's files
with `eventscope.simulator` (1,000,000 events of ~1 KB over 30 detail-types, ~3 log records per
event by default), then, in one run on those same files, measures

  a. `eventscope ingest EVENTS --db sqlite:///...` into a fresh store, then
     `eventscope ingest LOGS` into the same store (each timed, with its peak RSS);
  b. `sqlite-utils insert DB events EVENTS --nl --pk id` into a fresh file (the peer);
  c. the floor: stdlib `sqlite3` `executemany` of pre-parsed tuples into the same `events`
     table, made by `eventscope.store.open_store` so schema, keys, indexes and pragmas match,
     in one transaction, with tuple preparation excluded from the time;

and prints rows/s, the ratios against their targets and the machine it ran on.

Usage: .venv/bin/python bench/ingest_bench.py [--events N] [--out DIR] [--regenerate]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eventscope import simulator  # noqa: E402
from eventscope.store import events as events_table  # noqa: E402
from eventscope.store import open_store  # noqa: E402

SEED = 7
CHUNK = 50_000
TARGET_VS_PEER = 3.0  # events: ours >= 3x sqlite-utils
TARGET_VS_FLOOR = 0.5  # events: ours >= 50 % of the raw sqlite3 floor
TARGET_LOGS_PER_S = 100_000


@dataclass
class Dataset:
    """The generated files and what they hold."""

    events_path: str
    logs_path: str
    events: int
    logs: int
    detail_types: int
    event_bytes_mean: float
    seed: int
    simulator_sha: str
    generate_seconds: float


@dataclass
class Run:
    """One timed measurement."""

    name: str
    rows: int
    seconds: float | None = None
    peak_rss_mb: float | None = None
    cpu_seconds: float | None = None  # user + system, its worker processes included
    note: str = ""

    @property
    def rate(self) -> float | None:
        return self.rows / self.seconds if self.seconds else None


# --------------------------------------------------------------------------- data


def simulator_sha(seed: int) -> str:
    """A fingerprint of the simulator's output (its first 3,000 events and their logs).

    Files whose fingerprint differs came from a simulator that behaves differently, and are
    regenerated; cosmetic edits of the simulator's source keep the cached files.
    """
    digest = hashlib.sha256()
    items = simulator.simulate(simulator.CompanyConfig.bench(), seed=seed, n_events=3000)
    for item in items:
        digest.update(orjson.dumps(item.record))
    return digest.hexdigest()[:16]


def ensure_dataset(out: Path, n_events: int, seed: int, regenerate: bool) -> Dataset:
    """The bench files for (n_events, seed), generated unless an up-to-date copy exists."""
    manifest = out / f"data-{n_events}-{seed}.json"
    if manifest.exists() and not regenerate:
        data = Dataset(**json.loads(manifest.read_text()))
        if (data.simulator_sha == simulator_sha(seed) and Path(data.events_path).exists()
                and Path(data.logs_path).exists()):
            return data
    data = generate(out, n_events, seed)
    manifest.write_text(json.dumps(asdict(data), indent=2))
    return data


def generate(out: Path, n_events: int, seed: int) -> Dataset:
    """Write the bench company's events and logs files, tallying detail-types on the way."""
    types: Counter[str] = Counter()
    items = simulator.simulate(simulator.CompanyConfig.bench(), seed=seed, n_events=n_events)
    summary = simulator.write_ndjson(_tally(items, types), out,
                                     events_name=f"events-{n_events}-{seed}.ndjson",
                                     logs_name=f"logs-{n_events}-{seed}.ndjson")
    size = summary.events_path.stat().st_size
    return Dataset(str(summary.events_path), str(summary.logs_path), summary.events, summary.logs,
                   len(types), size / max(summary.events, 1) - 1, seed, simulator_sha(seed),
                   round(summary.seconds, 1))


def _tally(items: Iterable[simulator.SimItem], types: Counter[str]) -> Iterator[simulator.SimItem]:
    for item in items:
        if item.kind == "event":
            types[item.record["detail-type"]] += 1
        yield item


# --------------------------------------------------------------------------- runs


def fresh_db(path: Path) -> Path:
    """Remove a SQLite file and its WAL/SHM companions."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


def timed_process(argv: list[str], log_path: Path) -> tuple[float, float, float, int]:
    """Run a command; return (wall seconds, peak RSS in MB of its largest process, CPU
    seconds of it and its children, exit status)."""
    with open(log_path, "wb") as log:
        began = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, proc.returncode


def count_rows(db: Path, table: str) -> int:
    """Rows in a table, 0 if the table is missing."""
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def find_eventscope(explicit: str | None) -> str | None:
    """The eventscope executable: given, next to this Python, or on PATH."""
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "eventscope"
    return str(beside) if beside.exists() else shutil.which("eventscope")


def run_ours(exe: str | None, path: str, db: Path, rows: int, label: str, out: Path,
             table: str) -> Run:
    """`eventscope ingest PATH --db sqlite:///DB`, timed, with its peak RSS."""
    run = Run(f"eventscope ingest ({label})", rows)
    if exe is None:
        run.note = "skipped: no eventscope executable"
        return run
    if _timed_run(run, [exe, "ingest", path, "--db", f"sqlite:///{db}"],
                  out / f"ours-{label}.log"):
        run.note = f"{count_rows(db, table):,} {table} rows stored"
    return run


def run_sqlite_utils(path: str, db: Path, rows: int, out: Path) -> Run:
    """`sqlite-utils insert DB events PATH --nl --pk id`, timed."""
    run = Run("sqlite-utils insert (events)", rows)
    exe = Path(sys.executable).parent / "sqlite-utils"
    exe_name = str(exe) if exe.exists() else shutil.which("sqlite-utils")
    if exe_name is None:
        run.note = "skipped: sqlite-utils not installed"
        return run
    argv = [exe_name, "insert", str(fresh_db(db)), "events", path, "--nl", "--pk", "id"]
    if _timed_run(run, argv, out / "sqlite-utils.log"):
        run.note = f"{count_rows(db, 'events'):,} rows stored"
    return run


def _timed_run(run: Run, argv: list[str], log: Path) -> bool:
    """Time a command into `run`; False (and a note saying where to look) when it failed."""
    seconds, rss, cpu, status = timed_process(argv, log)
    if status != 0:
        run.note = f"failed (exit {status}), see {log}"
        return False
    run.seconds, run.peak_rss_mb, run.cpu_seconds = seconds, rss, cpu
    return True


# --------------------------------------------------------------------------- the floor

_COLUMNS = [c.name for c in events_table.columns]


def event_tuple(line: bytes) -> tuple[Any, ...]:
    """One envelope line as a row of eventscope's `events` table, in column order."""
    env = orjson.loads(line)
    detail = env["detail"]
    time_ms = int(datetime.fromisoformat(env["time"].replace("Z", "+00:00")).timestamp() * 1000)
    row = {
        "id": env["id"], "source": env["source"], "detail_type": env["detail-type"],
        "time_ms": time_ms, "version": detail.get("version"),
        "correlation_key": detail.get("orderId"), "account": env.get("account"),
        "region": env.get("region"), "resources": orjson.dumps(env["resources"]).decode(),
        "detail": orjson.dumps(detail).decode(), "size_bytes": len(line),
    }
    return tuple(row[name] for name in _COLUMNS)


def tuple_chunks(path: str, size: int = CHUNK) -> Iterator[list[tuple[Any, ...]]]:
    """Pre-parsed rows in chunks, so memory stays flat while preparation stays untimed."""
    chunk: list[tuple[Any, ...]] = []
    with open(path, "rb") as handle:
        for line in handle:
            chunk.append(event_tuple(line.rstrip(b"\n")))
            if len(chunk) == size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def run_floor(path: str, db: Path, rows: int) -> Run:
    """sqlite3 executemany into eventscope's own events table, one transaction, prep untimed."""
    run = Run("sqlite3 executemany floor (events)", rows)
    store = open_store(f"sqlite:///{fresh_db(db)}")  # schema, keys, indexes
    raw = store.engine.raw_connection()  # a connection with the store's own pragmas
    conn: sqlite3.Connection = raw.driver_connection
    sql = (f"INSERT INTO events ({', '.join(_COLUMNS)}) "
           f"VALUES ({', '.join('?' for _ in _COLUMNS)})")
    elapsed = 0.0
    for chunk in tuple_chunks(path):
        began = time.perf_counter()
        conn.executemany(sql, chunk)
        elapsed += time.perf_counter() - began
        if not conn.in_transaction:  # sqlite3 opens one implicitly; commit() below closes it
            raise RuntimeError("the floor must insert in a single transaction")
    began = time.perf_counter()
    conn.commit()
    elapsed += time.perf_counter() - began
    raw.close()
    store.engine.dispose()
    run.seconds = elapsed
    run.note = f"{count_rows(db, 'events'):,} rows stored"
    return run


# --------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    """CPU count and model, RAM, Python and SQLite versions."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gib": round(ram_gib, 1),
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform()}


def _fmt(value: float | None, pattern: str) -> str:
    return "—" if value is None else format(value, pattern)


def ratio_lines(ours_events: Run, ours_logs: Run, peer: Run, floor: Run) -> list[str]:
    """Measured ratios beside their targets."""
    def verdict(measured: float | None, target: float) -> str:
        if measured is None:
            return "n/a"
        return "meets target" if measured >= target else "BELOW target"

    vs_peer = ours_events.rate / peer.rate if ours_events.rate and peer.rate else None
    vs_floor = ours_events.rate / floor.rate if ours_events.rate and floor.rate else None
    return [
        f"  events, ours / sqlite-utils : {_fmt(vs_peer, '.2f')}x   "
        f"(target >= {TARGET_VS_PEER:.0f}x)   {verdict(vs_peer, TARGET_VS_PEER)}",
        f"  events, ours / floor        : {_fmt(vs_floor and vs_floor * 100, '.0f')}%   "
        f"(target >= {TARGET_VS_FLOOR:.0%})   {verdict(vs_floor, TARGET_VS_FLOOR)}",
        f"  logs, ours                  : {_fmt(ours_logs.rate, ',.0f')} records/s   "
        f"(target >= {TARGET_LOGS_PER_S:,})   {verdict(ours_logs.rate, TARGET_LOGS_PER_S)}",
    ]


def report(host: dict[str, Any], data: Dataset, runs: list[Run]) -> str:
    """The whole printed report."""
    lines = [
        f"machine : {host['nproc']} CPUs, {host['cpu']}, {host['ram_gib']} GiB RAM, "
        f"Python {host['python']}, SQLite {host['sqlite']}",
        f"data    : {data.events:,} events (mean {data.event_bytes_mean:,.0f} B, "
        f"{data.detail_types} detail-types), {data.logs:,} log records "
        f"({data.logs / max(data.events, 1):.2f} per event), seed {data.seed}",
        f"          {data.events_path}",
        f"          {data.logs_path}",
        "",
        f"  {'what':<38} {'seconds':>9} {'lines/s':>12} {'CPU s':>7} {'peak RSS':>10}  note",
    ]
    for run in runs:
        rss = f"{run.peak_rss_mb:,.0f} MB" if run.peak_rss_mb else "—"
        lines.append(f"  {run.name:<38} {_fmt(run.seconds, '9.2f'):>9} "
                     f"{_fmt(run.rate, ',.0f'):>12} {_fmt(run.cpu_seconds, '7.1f'):>7} "
                     f"{rss:>10}  {run.note}")
    lines += ["", *ratio_lines(*runs)]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="bus events (default 1M)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--regenerate", action="store_true", help="regenerate the data files")
    parser.add_argument("--eventscope", help="path to the eventscope executable")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Generate (or reuse) the files, run the four measurements, print the report."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    data = ensure_dataset(args.out, args.events, args.seed, args.regenerate)
    print(f"data ready in {time.perf_counter() - began:.1f} s "
          f"(generation itself took {data.generate_seconds} s)", file=sys.stderr)
    exe = find_eventscope(args.eventscope)
    ours_db = fresh_db(args.out / "ours.db")
    runs = [
        run_ours(exe, data.events_path, ours_db, data.events, "events", args.out, "events"),
        run_ours(exe, data.logs_path, ours_db, data.logs, "logs", args.out, "invocations"),
        run_sqlite_utils(data.events_path, args.out / "sqlite-utils.db", data.events, args.out),
        run_floor(data.events_path, args.out / "floor.db", data.events),
    ]
    host = machine()
    print(report(host, data, runs))
    results = {"machine": host, "data": asdict(data),
               "runs": [asdict(r) | {"rate": r.rate} for r in runs]}
    (args.out / "ingest-results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
