"""Ingest benchmark: `eventscope ingest` against sqlite-utils at its best and a parse+insert floor.

Owns the ingest benchmark: it generates (once, cached in bench/out/) the bench company's files
with `eventscope.simulator` (1,000,000 events of ~1 KB over 30 detail-types, ~3.5 log records
per event by default), then, in one run on those same files, measures

  a. `eventscope ingest EVENTS --workers 0` (one core) into a fresh store, then its LOGS into
     the same store; then both again with the default workers (the parallel figure, printed
     apart: it uses more than one core);
  b. the peer, sqlite-utils at its best settings: `Table.insert_all(rows, pk="id",
     batch_size=100_000)` (it caps statements at 999 variables itself) inside one
     transaction (`db.atomic()`), WAL (`db.enable_wal()`) and `synchronous=NORMAL` as our
     store uses, rows parsed with orjson; one core;
  c. the floor: the same work done plainly: orjson parse of each line into a row of our
     `events` table + stdlib `sqlite3` `executemany` into the table `open_store` creates
     (same schema, keys, indexes, pragmas), one transaction; one core;
  d. the logs floor, likewise for the LOGS file: orjson parse of each record (and of its
     message when JSON), the Lambda lines the bench data holds recognised by their first
     word and assembled into one invocation per START (or platform.start) of a log stream,
     `executemany` into our `invocations` table, one transaction; one core. It stores the
     same rows as ours, every column (compared after each run). It leaves out what the
     events floor leaves out: rollups, redaction, quarantine, and the parsing of log shapes
     the bench data does not hold.

With `--load N` it then runs the parallel ingest (events, then logs) again into a fresh
store while N busy-loop processes (pure Python, at the default priority, started and stopped
by this script) compete for the same CPUs, and prints how much slower it ran than idle:

  raw wall ratio   = loaded wall / idle wall (what a user waits);
  CPU ratio        = loaded CPU seconds / idle CPU seconds (extra work contention causes);
  normalised ratio = loaded wall / (idle CPU seconds / fair cores). Idle, the ingest keeps
                     u = idle CPU s / idle wall s cores busy on average; beside N hogs on C
                     cores a fair scheduler gives those u runnable processes C * u / (u + N)
                     cores (never more than u): the fair cores. 1.0 means the ingest lost
                     nothing beyond its fair share of the machine (a niced worker that starves
                     shows as more); target <= 1.3 (issue 18). Start-up counts in both runs.

Per-core figures compare CPU seconds (user + system, children included: `os.wait4` for the
ingest processes, `resource.getrusage` here), which survive a shared machine; wall seconds
are printed beside them. Each target is printed on one `RESULT` line: value, peer or floor,
ratio, target, met or missed.

Usage: .venv/bin/python bench/ingest_bench.py [--events N] [--out DIR] [--regenerate]
                                              [--load N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import resource
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
from eventscope.store import invocations as invocations_table  # noqa: E402
from eventscope.store import open_store  # noqa: E402
from installed import compile_sources, installed_env  # noqa: E402

SEED = 7
CHUNK = 50_000
TARGET_VS_PEER = 4.0  # events, one core, CPU seconds: ours >= 4x sqlite-utils at its best
TARGET_VS_FLOOR = 0.6  # events, one core, CPU seconds: ours >= 60 % of the parse+insert floor
TARGET_LOGS_PER_S = 120_000  # log records per wall second, default workers
TARGET_LOADED = 1.3  # loaded wall / idle CPU-normalised wall (see the docstring)
LOAD_SETTLE_S = 0.5  # the busy loops run this long before the loaded ingest starts
PEER_BATCH = 100_000


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
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=installed_env())
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
             table: str, workers: int | None) -> Run:
    """`eventscope ingest PATH --db sqlite:///DB [--workers N]`, timed, with CPU and RSS."""
    cores = "one core" if workers == 0 else "default workers"
    run = Run(f"eventscope ingest ({label}, {cores})", rows)
    if exe is None:
        run.note = "skipped: no eventscope executable"
        return run
    argv = [exe, "ingest", path, "--db", f"sqlite:///{db}"]
    if workers is not None:
        argv += ["--workers", str(workers)]
    if _timed_run(run, argv, out / f"ours-{label}-{'w0' if workers == 0 else 'wN'}.log"):
        run.note = f"{count_rows(db, table):,} {table} rows stored"
    return run


def _timed_run(run: Run, argv: list[str], log: Path) -> bool:
    """Time a command into `run`; False (and a note saying where to look) when it failed."""
    seconds, rss, cpu, status = timed_process(argv, log)
    if status != 0:
        run.note = f"failed (exit {status}), see {log}"
        return False
    run.seconds, run.peak_rss_mb, run.cpu_seconds = seconds, rss, cpu
    return True


def _in_process(run: Run, work: Any) -> None:
    """Run `work()` here, recording wall and CPU seconds (this process and its children)."""
    cpu_before, began = _cpu_now(), time.perf_counter()
    work()
    run.seconds = time.perf_counter() - began
    run.cpu_seconds = _cpu_now() - cpu_before


def _cpu_now() -> float:
    own, children = (resource.getrusage(resource.RUSAGE_SELF),
                     resource.getrusage(resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_sqlite_utils(path: str, db: Path, rows: int) -> Run:
    """The peer at its best: insert_all in one transaction, WAL, a large batch, orjson."""
    run = Run("sqlite-utils insert_all (events)", rows)
    try:
        import sqlite_utils
    except ImportError:
        run.note = "skipped: sqlite-utils not installed"
        return run

    def work() -> None:
        database = sqlite_utils.Database(fresh_db(db))
        database.enable_wal()
        database.execute("PRAGMA synchronous=NORMAL")
        with open(path, "rb") as handle, database.atomic():
            database["events"].insert_all((orjson.loads(line) for line in handle), pk="id",
                                          batch_size=PEER_BATCH)
        database.close()

    _in_process(run, work)
    run.note = (f"{count_rows(db, 'events'):,} rows stored; WAL, synchronous=NORMAL, "
                f"one transaction, batch_size={PEER_BATCH:,}")
    return run


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


def chunks(rows: Iterable[tuple[Any, ...]], size: int = CHUNK
           ) -> Iterator[list[tuple[Any, ...]]]:
    """Rows in lists of `size`, so a floor's memory stays flat."""
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def event_tuples(path: str) -> Iterator[tuple[Any, ...]]:
    """The events file's lines as rows of our `events` table."""
    with open(path, "rb") as handle:
        for line in handle:
            yield event_tuple(line.rstrip(b"\n"))


def run_floor(path: str, db: Path, rows: int) -> Run:
    """Parse (orjson) + sqlite3 executemany into eventscope's own events table, one
    transaction, one core: the same work as ours without anything else."""
    run = Run("parse + sqlite3 executemany floor", rows)
    stored = _executemany_floor(run, db, "INSERT", "events", _COLUMNS, event_tuples(path))
    run.note = f"{stored:,} rows stored; parse included"
    return run


def _executemany_floor(run: Run, db: Path, verb: str, table: str, columns: list[str],
                       rows: Iterable[tuple[Any, ...]]) -> int:
    """Time `rows` (produced as they are inserted: their parsing is timed too) going into
    `table` of a fresh store (`open_store`'s schema, keys, indexes and pragmas) by
    `executemany`, in chunks, one transaction; return the table's rows."""
    store = open_store(f"sqlite:///{fresh_db(db)}")
    raw = store.engine.raw_connection()  # a connection with the store's own pragmas
    conn: sqlite3.Connection = raw.driver_connection
    sql = (f"{verb} INTO {table} ({', '.join(columns)}) "
           f"VALUES ({', '.join('?' for _ in columns)})")

    def work() -> None:
        for chunk in chunks(rows):
            conn.executemany(sql, chunk)
            if not conn.in_transaction:  # sqlite3 opens one implicitly; commit() closes it
                raise RuntimeError("the floor must insert in a single transaction")
        conn.commit()

    _in_process(run, work)
    raw.close()
    store.engine.dispose()
    return count_rows(db, table)


# --------------------------------------------------------------------------- the logs floor
#
# The same work as a logs ingest, done plainly on one core: each CloudWatch Logs record parsed
# (orjson; the message too when it is JSON), the Lambda lines the bench data holds recognised
# by their first word, one invocation per START/platform.start of a log stream, finished by
# its REPORT/platform.report, and the rows `executemany`d into eventscope's own
# `invocations` table in one transaction. Left out, as the events floor leaves them out:
# rollups, redaction, quarantine, the outcome rules for shapes the bench data does not hold.

_INVOCATION_COLUMNS = [c.name for c in invocations_table.columns]
(_RID, _START, _CONSUMER, _GROUP, _STREAM, _EVENT, _OUTCOME, _END, _DURATION, _ERROR_TYPE,
 _ERROR_MESSAGE, _MEMORY, _COMPLETE, _FORMAT) = range(len(_INVOCATION_COLUMNS))
_STATUS = {"success": "ok", "error": "error", "failure": "error", "timeout": "timeout"}


def _draft(record: dict[str, Any], request_id: str, log_format: str) -> list[Any]:
    group = record["logGroupName"]
    return [request_id, record["timestamp"], group.rsplit("/", 1)[-1], group,
            record["logStreamName"], None, None, None, None, None, None, None, False,
            log_format]


def _finished(draft: list[Any], complete: bool = True) -> tuple[Any, ...]:
    """The row of an invocation: complete when its REPORT came, partial at the input's end."""
    draft[_OUTCOME] = draft[_OUTCOME] or "ok"
    draft[_COMPLETE] = complete
    return tuple(draft)


_Streams = dict[tuple[str, str], list[Any]]  # (log group, log stream): its open invocation


def _text_line(record: dict[str, Any], message: str, current: _Streams
               ) -> tuple[Any, ...] | None:
    """A text-format line into its stream's invocation; the row when it finishes one."""
    stream = (record["logGroupName"], record["logStreamName"])
    draft = current.get(stream)
    if message.startswith("START RequestId: "):
        current[stream] = _draft(record, message[17:].split(" ", 1)[0], "text")
    elif draft is None:
        return None
    elif message.startswith("END RequestId: "):
        draft[_END] = record["timestamp"]
    elif message.startswith("REPORT RequestId: "):
        fields = dict(part.split(": ", 1) for part in message.rstrip().split("\t") if ": " in part)
        draft[_DURATION] = float(fields["Duration"].split(" ")[0])
        draft[_MEMORY] = int(fields["Max Memory Used"].split(" ")[0])
        if "Status" in fields:
            draft[_OUTCOME] = _STATUS.get(fields["Status"], "error")
        del current[stream]
        return _finished(draft)
    elif message.startswith("[ERROR]"):
        draft[_OUTCOME] = draft[_OUTCOME] or "error"
        head = message.split("\n", 1)[0]
        if head.startswith("[ERROR]\t"):  # logged by the handler: [ERROR] time rid message
            _error(draft, None, head.split("\t", 3)[-1])
        else:  # unhandled: [ERROR] Type: message, then the traceback
            kind, _, text = head[8:].partition(": ")
            _error(draft, kind, text)
    elif " Task timed out after " in message:
        draft[_OUTCOME] = "timeout"
        _error(draft, "Sandbox.Timedout", message.split(" ", 2)[2].rstrip())
    return None


def _error(draft: list[Any], kind: str | None, text: str | None) -> None:
    """The first error message an invocation logs is kept, and its first known type."""
    draft[_ERROR_TYPE] = draft[_ERROR_TYPE] or kind
    draft[_ERROR_MESSAGE] = draft[_ERROR_MESSAGE] or text


def _json_line(record: dict[str, Any], body: dict[str, Any], current: _Streams
               ) -> tuple[Any, ...] | None:
    """A JSON-format line (platform record or an application's Powertools line)."""
    stream = (record["logGroupName"], record["logStreamName"])
    kind = body.get("type")
    if kind == "platform.start":
        current[stream] = _draft(record, body["record"]["requestId"], "json")
        return None
    draft = current.get(stream)
    if draft is None:
        return None
    if kind == "platform.runtimeDone":
        draft[_OUTCOME] = _STATUS.get(body["record"].get("status"), "error")
        _error(draft, body["record"].get("errorType"), None)
    elif kind == "platform.report":
        report = body["record"]
        metrics = report.get("metrics", {})
        draft[_END] = record["timestamp"]
        draft[_DURATION] = metrics.get("durationMs")
        draft[_MEMORY] = metrics.get("maxMemoryUsedMB")
        if "status" in report:
            draft[_OUTCOME] = _STATUS.get(report["status"], "error")
        _error(draft, report.get("errorType"), None)
        del current[stream]
        return _finished(draft)
    elif kind is None:  # the handler's own line: its event, or an error
        if (event_id := body.get("correlation_id")) is not None:
            draft[_EVENT] = event_id
        if body.get("level") == "ERROR":
            _error(draft, body.get("errorType"), body.get("errorMessage") or body.get("message"))
    return None


def invocation_rows(path: str) -> Iterator[tuple[Any, ...]]:
    """The logs file's invocations as rows of eventscope's `invocations` table."""
    current: _Streams = {}
    with open(path, "rb") as handle:
        for line in handle:
            record = orjson.loads(line)
            message = record["message"]
            if message.startswith("{"):
                row = _json_line(record, orjson.loads(message), current)
            else:
                row = _text_line(record, message, current)
            if row is not None:
                yield row
    for draft in current.values():  # their REPORT never came
        yield _finished(draft, complete=False)


def run_logs_floor(path: str, db: Path, records: int) -> Run:
    """Parse + assemble + sqlite3 executemany into eventscope's own invocations table, one
    transaction, one core: a logs ingest's work without anything else."""
    run = Run("logs: parse + assemble + executemany floor", records)
    stored = _executemany_floor(run, db, "INSERT OR REPLACE", "invocations",
                                _INVOCATION_COLUMNS, invocation_rows(path))
    run.note = f"{stored:,} invocations rows stored; parse included"
    return run


def rows_apart(ours: Path, floor: Path, table: str = "invocations") -> int:
    """Rows of `table` in one store and not the other (every column compared): 0 when the
    logs floor stored exactly what eventscope did."""
    with sqlite3.connect(ours) as conn:
        conn.execute("ATTACH DATABASE ? AS floor", (str(floor),))
        return sum(int(conn.execute(f"SELECT count(*) FROM (SELECT * FROM {a}.{table} "
                                    f"EXCEPT SELECT * FROM {b}.{table})").fetchone()[0])
                   for a, b in (("main", "floor"), ("floor", "main")))


# --------------------------------------------------------------------------- under load


def busy_loop() -> None:
    """A CPU hog: spins until terminated (by `loaded`, which started it)."""
    while True:
        pass


class loaded:
    """`with loaded(n):` runs n busy-loop processes for the block's duration (none for 0)."""

    def __init__(self, hogs: int) -> None:
        self.procs = [multiprocessing.get_context("spawn").Process(target=busy_loop, daemon=True)
                      for _ in range(hogs)]

    def __enter__(self) -> loaded:
        for proc in self.procs:
            proc.start()
        if self.procs:
            time.sleep(LOAD_SETTLE_S)
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.join()


def run_under_load(exe: str | None, data: Dataset, out: Path, hogs: int,
                   workers: int | None) -> list[Run]:
    """The parallel ingest (events, then logs, one store) beside `hogs` busy loops."""
    db = fresh_db(out / "ours-loaded.db")
    with loaded(hogs):
        runs = [run_ours(exe, data.events_path, db, data.events, "events", out, "events",
                         workers),
                run_ours(exe, data.logs_path, db, data.logs, "logs", out, "invocations",
                         workers)]
    for run in runs:
        run.name = run.name.replace("default workers", f"workers, {hogs} busy loops")
    return runs


def load_ratios(idle: list[Run], busy: list[Run], hogs: int,
                cores: int) -> tuple[float, float, float] | None:
    """(raw wall ratio, CPU ratio, normalised ratio) of the loaded runs against the idle
    ones (see the module docstring); None when a run failed."""
    idle_wall = sum(r.seconds or 0 for r in idle)
    idle_cpu = sum(r.cpu_seconds or 0 for r in idle)
    busy_wall = sum(r.seconds or 0 for r in busy)
    busy_cpu = sum(r.cpu_seconds or 0 for r in busy)
    if not (idle_wall and idle_cpu and busy_wall and busy_cpu):
        return None
    used = idle_cpu / idle_wall
    fair_cores = min(cores * used / (used + hogs), used)
    return busy_wall / idle_wall, busy_cpu / idle_cpu, busy_wall / (idle_cpu / fair_cores)


def load_result_line(busy: list[Run], ratios: tuple[float, float, float] | None,
                     hogs: int) -> str:
    """The loaded-vs-idle target on one line."""
    raw, cpu = (None, None) if ratios is None else ratios[:2]
    normalised = None if ratios is None else ratios[2]
    return result_line(
        f"ingest beside {hogs} busy loops (events + logs, default workers)",
        sum(r.seconds or 0 for r in busy), "wall seconds loaded",
        f"raw wall ratio {_fmt(raw, '.2f')}, CPU ratio {_fmt(cpu, '.2f')}", normalised,
        f"<= {TARGET_LOADED} of idle, CPU-normalised",
        None if normalised is None else normalised <= TARGET_LOADED)


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
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gib": round(ram_gib, 1), "load": load,
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform()}


def _fmt(value: float | None, pattern: str) -> str:
    return "—" if value is None else format(value, pattern)


def result_line(what: str, value: float | None, unit: str, against: str,
                ratio: float | None, target: str, met: bool | None) -> str:
    """One figure: value, what it is compared with, the ratio, the target, met or missed."""
    verdict = "n/a" if met is None else ("met" if met else "MISSED")
    return (f"RESULT {what}: {_fmt(value, ',.0f')} {unit}; {against}; "
            f"ratio {_fmt(ratio, '.2f')}; target {target}; {verdict}")


def _cores() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0))


def per_cpu(run: Run) -> float | None:
    return run.rows / run.cpu_seconds if run.cpu_seconds else None


def result_lines(one_events: Run, one_logs: Run, par_events: Run, par_logs: Run, peer: Run,
                 floor: Run, logs_floor: Run, cores: int) -> list[str]:
    """The targets, one line each (per-core ones in CPU seconds, one core vs one core)."""
    ours, peer_rate, floor_rate = per_cpu(one_events), per_cpu(peer), per_cpu(floor)
    ours_logs, logs_floor_rate = per_cpu(one_logs), per_cpu(logs_floor)
    vs_logs_floor = ours_logs / logs_floor_rate if ours_logs and logs_floor_rate else None
    # the logs target against the floor run on every core at once: how much of what plain
    # parsing, assembly and inserts could give on this machine the target asks for
    logs_bound = ""
    if logs_floor_rate:
        share = TARGET_LOGS_PER_S / (logs_floor_rate * cores)
        logs_bound = f"; {TARGET_LOGS_PER_S:,}/s is {share:.0%} of the floor on {cores} cores"
    vs_peer = ours / peer_rate if ours and peer_rate else None
    vs_floor = ours / floor_rate if ours and floor_rate else None
    logs = par_logs.rate
    # what the peer target asks, against the floor doing the same work plainly: above 100 %
    # it asks more than orjson.loads + executemany into the same table can give
    bound = (f"; {TARGET_VS_PEER:.0f}x it is {TARGET_VS_PEER * peer_rate / floor_rate:.0%} "
             "of the floor") if peer_rate and floor_rate else ""
    return [
        result_line("events vs sqlite-utils, one core", ours, "events per CPU second",
                    f"sqlite-utils at its best {_fmt(peer_rate, ',.0f')}/CPU s{bound}", vs_peer,
                    f">= {TARGET_VS_PEER:.0f}x", None if vs_peer is None
                    else vs_peer >= TARGET_VS_PEER),
        result_line("events vs parse+insert floor, one core", ours, "events per CPU second",
                    f"floor {_fmt(floor_rate, ',.0f')}/CPU s", vs_floor,
                    f">= {TARGET_VS_FLOOR:.0%}", None if vs_floor is None
                    else vs_floor >= TARGET_VS_FLOOR),
        result_line("log records, default workers", logs, "records per wall second",
                    f"one core: {_fmt(ours_logs, ',.0f')}/CPU s, "
                    f"{_fmt(one_logs.rate, ',.0f')}/wall s{logs_bound}", None,
                    f">= {TARGET_LOGS_PER_S:,}/s", None if logs is None
                    else logs >= TARGET_LOGS_PER_S),
        result_line("log records vs parse+assemble+insert floor, one core", ours_logs,
                    "records per CPU second", f"floor {_fmt(logs_floor_rate, ',.0f')}/CPU s",
                    vs_logs_floor, "none (for information: the issue sets no logs floor target)",
                    None),
        result_line("events, default workers (parallel, for information)", par_events.rate,
                    "events per wall second", f"sqlite-utils {_fmt(peer.rate, ',.0f')}/wall s",
                    par_events.rate / peer.rate if par_events.rate and peer.rate else None,
                    "none (uses more than one core)", None),
    ]


def report(host: dict[str, Any], data: Dataset, runs: list[Run], extra: list[str]) -> str:
    """The whole printed report."""
    lines = [
        f"machine : {host['nproc']} CPUs, {host['cpu']}, {host['ram_gib']} GiB RAM, "
        f"Python {host['python']}, SQLite {host['sqlite']}, load average before the run "
        f"{host['load']}",
        f"data    : {data.events:,} events (mean {data.event_bytes_mean:,.0f} B, "
        f"{data.detail_types} detail-types), {data.logs:,} log records "
        f"({data.logs / max(data.events, 1):.2f} per event), seed {data.seed}",
        f"          {data.events_path}",
        f"          {data.logs_path}",
        "",
        f"  {'what':<46} {'wall s':>8} {'rows/wall s':>12} {'CPU s':>7} {'rows/CPU s':>11} "
        f"{'peak RSS':>9}  note",
    ]
    for run in runs:
        rss = f"{run.peak_rss_mb:,.0f} MB" if run.peak_rss_mb else "—"
        lines.append(f"  {run.name:<46} {_fmt(run.seconds, '8.2f'):>8} "
                     f"{_fmt(run.rate, ',.0f'):>12} {_fmt(run.cpu_seconds, '7.1f'):>7} "
                     f"{_fmt(per_cpu(run), ',.0f'):>11} {rss:>9}  {run.note}")
    lines += ["", *result_lines(*runs[:7], cores=_cores()), *extra]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="bus events (default 1M)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--regenerate", action="store_true", help="regenerate the data files")
    parser.add_argument("--eventscope", help="path to the eventscope executable")
    parser.add_argument("--workers", type=int, default=None,
                        help="workers of the parallel runs (default: eventscope's own)")
    parser.add_argument("--load", type=int, default=0, metavar="N",
                        help="also run the parallel ingest beside N busy-loop processes and "
                             "print the loaded/idle ratio (default 0: not run)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Generate (or reuse) the files, run the measurements, print the report."""
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    data = ensure_dataset(args.out, args.events, args.seed, args.regenerate)
    print(f"data ready in {time.perf_counter() - began:.1f} s "
          f"(generation itself took {data.generate_seconds} s)", file=sys.stderr)
    host = machine()
    exe = find_eventscope(args.eventscope)
    compile_sources()  # as an install does: no run compiles eventscope's modules again
    one_db, par_db = fresh_db(args.out / "ours-one-core.db"), fresh_db(args.out / "ours.db")
    runs = [
        run_ours(exe, data.events_path, one_db, data.events, "events", args.out, "events", 0),
        run_ours(exe, data.logs_path, one_db, data.logs, "logs", args.out, "invocations", 0),
        run_ours(exe, data.events_path, par_db, data.events, "events", args.out, "events",
                 args.workers),
        run_ours(exe, data.logs_path, par_db, data.logs, "logs", args.out, "invocations",
                 args.workers),
        run_sqlite_utils(data.events_path, args.out / "sqlite-utils.db", data.events),
        run_floor(data.events_path, args.out / "floor.db", data.events),
        run_logs_floor(data.logs_path, args.out / "logs-floor.db", data.logs),
    ]
    if runs[1].seconds is not None and runs[6].seconds is not None:
        apart = rows_apart(one_db, args.out / "logs-floor.db")
        runs[6].note += ("; the same rows as ours" if apart == 0
                         else f"; {apart:,} rows differ from ours")
    extra: list[str] = []
    if args.load > 0:
        busy = run_under_load(exe, data, args.out, args.load, args.workers)
        ratios = load_ratios(runs[2:4], busy, args.load, _cores())
        runs += busy
        extra.append(load_result_line(busy, ratios, args.load))
    print(report(host, data, runs, extra))
    results = {"machine": host, "data": asdict(data),
               "runs": [asdict(r) | {"rate": r.rate, "per_cpu_second": per_cpu(r)}
                        for r in runs],
               "results": result_lines(*runs[:7], cores=_cores()) + extra}
    (args.out / "ingest-results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
