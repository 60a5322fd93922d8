"""The benches' shared store: the ingest bench's data set, ingested once, reused.

Owns building (once) and finding the SQLite store that the findings and dashboard benches
read: `ingest_bench.ensure_dataset` generates (or reuses) the ingest bench's files (N events
of ~1 KB over 30 detail-types, ~3.5 log records per event), and `eventscope ingest` reads
them into `store-N-S.db` beside them. A manifest records the data's fingerprint, so a store
built from other data is rebuilt, and an existing one is reused as it is (opening it with a
newer eventscope adds any new rollup tables).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest_bench  # noqa: E402  (the data set's one generator)


def ensure_store(out: Path, n_events: int, seed: int) -> tuple[str, dict[str, object]]:
    """(store URL, facts about it) for the ingest bench's (n_events, seed) data, ingesting
    the files into `out/store-N-S.db` unless a store of the same data is there."""
    out.mkdir(parents=True, exist_ok=True)
    data = ingest_bench.ensure_dataset(out, n_events, seed, regenerate=False)
    db = out / f"store-{n_events}-{seed}.db"
    manifest = out / f"store-{n_events}-{seed}.json"
    if not (db.exists() and manifest.exists()
            and json.loads(manifest.read_text()).get("simulator_sha") == data.simulator_sha):
        ingest_bench.fresh_db(db)
        exe = ingest_bench.find_eventscope(None) or "eventscope"
        began = time.perf_counter()
        for path in (data.events_path, data.logs_path):
            subprocess.run([exe, "ingest", path, "--db", f"sqlite:///{db}", "--json"],
                           check=True, stdout=subprocess.DEVNULL)
        manifest.write_text(json.dumps({"simulator_sha": data.simulator_sha,
                                        "ingest_seconds": round(time.perf_counter() - began)}))
    with sqlite3.connect(db) as conn:
        facts = {name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                 for name in ("events", "invocations")}
        facts["detail_types"] = conn.execute(
            "SELECT count(DISTINCT detail_type) FROM events").fetchone()[0]
        facts["functions"] = conn.execute(
            "SELECT count(DISTINCT consumer) FROM invocations").fetchone()[0]
    facts["log_records"] = data.logs
    facts["event_bytes_mean"] = round(data.event_bytes_mean)
    return f"sqlite:///{db}", facts


def machine_line() -> str:
    """CPU count and model, RAM, Python and SQLite versions, and the load average now."""
    host = ingest_bench.machine()
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() \
        else ["?"]
    return (f"machine: {host['nproc']} CPUs, {host['cpu']}, {host['ram_gib']} GiB RAM, "
            f"Python {host['python']}, SQLite {host['sqlite']}; load average "
            f"{' '.join(load)} at start")


def verdict_line(what: str, value: float | None, target: float, unit: str = "s",
                 note: str = "") -> str:
    """One figure: value, target, met or missed (and the ratio value / target)."""
    if value is None:  # the run timed out
        return f"{what:<52} {'—':>10}   target < {_fmt(target, unit)}   MISSED  {note}"
    met = "met" if value < target else "MISSED"
    return (f"{what:<52} {_fmt(value, unit):>10}   target < {_fmt(target, unit)}   "
            f"{met} ({value / target:.2f}x of target)  {note}").rstrip()


def _fmt(value: float, unit: str) -> str:
    return f"{value * 1000:.2f} ms" if unit == "ms" else f"{value:.3f} s"
