"""Prune bench: `eventscope.retention.prune` against one plain transaction doing the same.

Builds (or reuses) a SQLite store of N events spread evenly over the last 40 days, three
invocations each, payloads of ~1 KB, rollups refreshed; then, on two copies of it, applies
the default retention (payloads 7 days, raw rows 30, per-minute summaries 30, daily 400)
twice while a second connection writes one event every 10 ms:

- `prune`: `retention.prune` (5,000 rows per transaction);
- `floor`: the same deletions and payload clearing as one `DELETE`/`UPDATE` per table, in one
  transaction (the fastest way, and what locks a writer out for its whole length).

It prints wall seconds for each and their ratio, rows removed (equal in both, or the bench
says so), and the writer's longest wait for its commit during each: the figure batches are
for. Run it small to check it works: `python bench/prune_bench.py --events 10000`.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eventscope import retention  # noqa: E402
from eventscope.records import BusEvent, Invocation  # noqa: E402
from eventscope.store import open_store  # noqa: E402
from eventscope.tables import DAY_MS  # noqa: E402

DETAIL = '{"orderId":"o-%d","lines":[%s]}'


def build(path: Path, n_events: int, now_ms: int) -> None:
    """The store: N events over 40 days before `now_ms`, 3 invocations each."""
    if path.exists():
        return
    store = open_store(f"sqlite:///{path}")
    span = 40 * DAY_MS
    lines = ",".join(['{"sku":"A-1","qty":2,"price":12.5}'] * 28)  # ~1 KB
    for start in range(0, n_events, 5000):
        batch = range(start, min(start + 5000, n_events))
        times = {i: now_ms - span + i * span // n_events for i in batch}
        store.write_batch(
            events_=[BusEvent(id=f"e{i}", source="com.shop.orders", detail_type=f"T{i % 30}",
                              time_ms=times[i], detail=DETAIL % (i, lines), size_bytes=1100,
                              correlation_key=f"o-{i}") for i in batch],
            invocations_=[Invocation(request_id=f"r{i}-{k}", consumer=f"fn-{(i + k) % 12}",
                                     log_group="g", log_stream="s", start_ms=times[i] + 40 + k,
                                     outcome="ok", event_id=f"e{i}", end_ms=times[i] + 60 + k,
                                     duration_ms=20.0, complete=True)
                          for i in batch for k in range(3)])
    store.refresh_rollups()
    store.engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class Writer:
    """A second connection committing one event every 10 ms; its longest commit wait."""

    def __init__(self, path: Path, now_ms: int) -> None:
        self.path, self.now_ms = path, now_ms
        self.stop, self.longest, self.commits = threading.Event(), 0.0, 0
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=600)
        while not self.stop.is_set():
            began = time.perf_counter()
            conn.execute("INSERT INTO events (id, source, detail_type, time_ms, resources, detail, "
                         "size_bytes) VALUES (?, 's', 't', ?, '[]', '{}', 2)",
                         (f"w{self.commits}", self.now_ms))
            conn.commit()
            self.longest = max(self.longest, time.perf_counter() - began)
            self.commits += 1
            time.sleep(0.01)
        conn.close()

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


def floor(path: Path, now_ms: int) -> int:
    """The same deletions as `retention.prune`, one statement per table, one transaction."""
    cut = retention.horizons(retention.Policy(), now_ms)
    conn = sqlite3.connect(path, timeout=600, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    rows = 0
    for target in retention.TARGETS:
        rows += conn.execute(f"DELETE FROM {target.table.name} WHERE {target.column} < ?",
                             (cut[target.kind],)).rowcount
    rows += conn.execute("UPDATE events SET detail = 'null' WHERE time_ms >= ? AND time_ms < ? "
                         "AND detail <> 'null'", (cut["raw"], cut["payloads"])).rowcount
    conn.execute("COMMIT")
    conn.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    now = int(time.time() * 1000) // DAY_MS * DAY_MS + 12 * 3_600_000  # a fixed hour of today
    source = args.out / f"prune-{args.events}.db"
    build(source, args.events, now)
    figures = {}
    for name in ("prune", "floor"):
        copy = args.out / f"prune-{args.events}-{name}.db"
        shutil.copyfile(source, copy)
        with Writer(copy, now) as writer:
            began = time.perf_counter()
            if name == "prune":
                store = open_store(f"sqlite:///{copy}")
                removed = retention.prune(store, retention.Policy(), now).rows
                store.engine.dispose()
            else:
                removed = floor(copy, now)
            wall = time.perf_counter() - began
        figures[name] = (wall, removed, writer.longest, writer.commits)
        copy.unlink()
    (p_wall, p_rows, p_wait, p_commits), (f_wall, f_rows, f_wait, f_commits) = (
        figures["prune"], figures["floor"])
    print(f"store: {args.events} events over 40 days, {3 * args.events} invocations "
          f"({source.stat().st_size / 1e6:.0f} MB); default retention")
    print(f"prune: {p_wall:.2f} s, {p_rows} rows; writer's longest commit wait "
          f"{p_wait * 1000:.0f} ms over {p_commits} commits")
    print(f"floor: {f_wall:.2f} s, {f_rows} rows; writer's longest commit wait "
          f"{f_wait * 1000:.0f} ms over {f_commits} commits")
    if p_rows != f_rows:
        print(f"note: rows differ ({p_rows} vs {f_rows}): prune settles rollups first")
    print(f"RESULT prune/floor wall {p_wall / f_wall:.2f}x; writer's longest wait "
          f"{p_wait / max(f_wait, 1e-9):.2f}x the floor's")


if __name__ == "__main__":
    main()
